/** What every route of one emulator instance shares: its settings, stores, tokens, faults and counters. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Arrivals } from "./arrivals.js";
import { type Counters, newCounters } from "./counters.js";
import { Faults, parseFaultConfig } from "./faults.js";
import type { Profile, ResolvedOptions } from "./options.js";
import { newSettings, parseSettingsPatch, type Settings } from "./settings.js";
import { Store } from "./store.js";
import { Tokens } from "./tokens.js";

export class EmulatorContext {
  readonly store = new Store();
  readonly faults = new Faults();
  readonly tokens = new Tokens();
  /** Replaced on reset: read it through the context, never keep a reference. */
  counters: Counters = newCounters();
  /** The switchable receiver behaviour; kept across a reset (it is configuration, not state). */
  readonly settings: Settings;
  /** Present only with `recordArrivals` (benchmarks). */
  readonly arrivals: Arrivals | undefined;
  /** SDS ingestion operations by Operation-Id, oldest first, at most MAX_OPERATIONS. */
  readonly operations = new Map<string, Operation>();

  constructor(
    readonly opts: ResolvedOptions,
    /** The CA that signed the server certificate, when TLS is on. */
    readonly caPem: string | undefined,
  ) {
    if (opts.faults) this.faults.set(parseFaultConfig(opts.faults));
    this.settings = newSettings(opts.settings ? parseSettingsPatch(opts.settings) : {});
    this.arrivals = opts.recordArrivals ? new Arrivals() : undefined;
  }

  /** Records an SDS operation (answered 202 or an error), forgetting the oldest beyond the cap. */
  recordOperation(op: Operation): Operation {
    this.operations.set(op.operationId, op);
    if (this.operations.size > MAX_OPERATIONS) this.operations.delete(this.operations.keys().next().value!);
    return op;
  }

  /** Bumped by reset, so a request held by `asyncDelayMs` from before the reset is not applied after it. */
  generation = 0;

  /** Stores, counters and faults back to empty. Issued tokens stay valid (a client keeps its session). */
  reset(): void {
    this.generation++;
    this.store.reset();
    this.faults.clear();
    this.operations.clear();
    this.counters = newCounters();
    this.arrivals?.clear();
  }

  /** The document of `GET /_emulator/state`: counters, faults and what each receiver holds. */
  state(filter: StateFilter = {}) {
    const only = filter.scope?.toLowerCase();
    const scopes: Record<string, unknown> = {};
    for (const s of [this.store.pi, this.store.eds, ...this.store.adh.values()])
      if (!only || s.name === only || (only === "adh" && s.profile === "adh"))
        scopes[s.name] = s.snapshot({ values: filter.values ?? true, maxValues: filter.maxValues });
    return { counters: this.counters, faults: this.faults.get(), scopes };
  }

  /** Base URL the client used (or `publicUrl`), with the profile prefix it used, for links and discovery. */
  baseUrl(req: IncomingMessage, path: OmfPath): string {
    if (this.opts.publicUrl) return `${this.opts.publicUrl.replace(/\/+$/, "")}${path.prefix}`;
    const proto = this.caPem ? "https" : "http";
    return `${proto}://${req.headers.host ?? "localhost"}${path.prefix}`;
  }
}

export interface StateFilter {
  /** Include stored values (default true). */
  values?: boolean;
  /** At most this many values per container, the latest. */
  maxValues?: number;
  /** `pi`, `eds`, `adh` (every ADH namespace) or one `adh/{tenant}/{namespace}`. */
  scope?: string;
}

const MAX_OPERATIONS = 10_000;

/**
 * One OMF request to ADH or EDS as the receiver processed it. The notes document no status endpoint for an
 * Operation-Id, so this is the emulator's own view (`GET /_emulator/operations`); a client sees the outcome only
 * through the read-back paths.
 */
export interface Operation {
  operationId: string;
  scope: string;
  messageType: string;
  action: string;
  messages: number;
  /** HTTP status the request was answered with (202 also for one that fails later). */
  httpStatus: number;
  /** `Pending` while an `asyncDelayMs` fault holds it; `Failed` for a rejected request or an `asyncFailures` fault. */
  status: "Pending" | "Succeeded" | "Failed";
  reason?: string;
  receivedAt: string;
  completedAt?: string;
}

/** Which surface a request is for, as server.ts classified its path. */
export interface OmfPath {
  kind: "pi" | "sds" | "identity" | "edsinfo" | "notfound";
  profile?: Profile;
  /** Segments after /piwebapi, /identity, or /api/v1/tenants/{t}/namespaces/{n}, URL-decoded. */
  rest: string[];
  tenant?: string;
  namespace?: string;
  /** "/adh" or "/eds" when the client used a profile prefix, else "". */
  prefix: string;
  /** A POST of OMF messages (`…/omf`). */
  isOmf: boolean;
}

/** One request on its way through a route. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  path: OmfPath;
  /** The fault switch's `partialFailures` fired for this request. */
  failFirstMessage: boolean;
  /** SDS: the `asyncFailures` fault fired (answer 202, store nothing). */
  asyncFailure: boolean;
  /** SDS: the `asyncDelayMs` fault: apply the request this long after the 202. */
  asyncDelayMs: number;
  /** Records how many OMF messages the request carried, for the request log. */
  noteMessages(count: number): void;
}

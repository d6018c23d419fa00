/** What every route of one emulator instance shares: its settings, stores, tokens, faults and counters. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Counters, newCounters } from "./counters.js";
import { Faults, parseFaultConfig } from "./faults.js";
import type { Profile, ResolvedOptions } from "./options.js";
import { Store } from "./store.js";
import { Tokens } from "./tokens.js";

export class EmulatorContext {
  readonly store = new Store();
  readonly faults = new Faults();
  readonly tokens = new Tokens();
  /** Replaced on reset: read it through the context, never keep a reference. */
  counters: Counters = newCounters();

  constructor(
    readonly opts: ResolvedOptions,
    /** The CA that signed the server certificate, when TLS is on. */
    readonly caPem: string | undefined,
  ) {
    if (opts.faults) this.faults.set(parseFaultConfig(opts.faults));
  }

  /** Stores, counters and faults back to empty. Issued tokens stay valid (a client keeps its session). */
  reset(): void {
    this.store.reset();
    this.faults.clear();
    this.counters = newCounters();
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
  /** Records how many OMF messages the request carried, for the request log. */
  noteMessages(count: number): void;
}

/**
 * The OMF emulator's fault switch: the kit's HTTP faults (latency, status, drop, hang, partial body) plus what only
 * OMF has: a filter by request kind (`scope`) and receiver (`profile`), and `partialFailures`, which processes a
 * request but fails its first message the way each receiver reports a failed message.
 */
import {
  enumField,
  type HttpFaultConfig,
  type HttpFaultDecision,
  HttpFaultSwitch,
  intField,
  parseHttpFaultConfig,
} from "@meridian/emulator-kit";
import type { Profile } from "./profile.js";

export interface OmfFaultFields {
  /** `omf` (default): OMF POSTs only; `all`: also token, discovery and read-back requests. */
  scope?: "omf" | "all";
  /** Only this receiver; default all three. */
  profile?: Profile;
  /** Process the request but fail its first message (PI 409 in Messages[0], SDS 400), this many times. */
  partialFailures?: number;
  /**
   * ADH / EDS asynchronous ingestion: answer this many OMF requests 202 with an Operation-Id, then fail them later
   * (nothing stored; the operation is `Failed` in `/_emulator/operations`).
   */
  asyncFailures?: number;
  /** ADH / EDS: apply accepted OMF requests this long after the 202 (read-back lags; errors surface only later). */
  asyncDelayMs?: number;
}

/** The whole switch, as `POST /_emulator/faults`, `options.faults` and `OMF_EMULATOR_FAULTS` take it. */
export type FaultConfig = HttpFaultConfig & OmfFaultFields;

/** Validates untrusted fault settings; throws the kit's FaultConfigError naming the field. */
export function parseFaultConfig(input: unknown): FaultConfig {
  return parseHttpFaultConfig<OmfFaultFields>(input, {
    scope: enumField(["omf", "all"]),
    profile: enumField(["pi", "adh", "eds"]),
    partialFailures: intField(),
    asyncFailures: intField(),
    asyncDelayMs: intField(0, 600_000),
  });
}

export interface OmfFaultDecision {
  /** What the kit carries out on the request (`none` when only the OMF-level failure fires). */
  http: HttpFaultDecision;
  /** Fail message 0 of this OMF request. */
  failFirstMessage: boolean;
  /** SDS: answer 202, then fail the request later without storing anything. */
  asyncFailure: boolean;
  /** SDS: apply the request this many ms after answering 202 (0: at once). */
  asyncDelayMs: number;
}

const NONE: OmfFaultDecision = { http: { kind: "none", latencyMs: 0 }, failFirstMessage: false, asyncFailure: false, asyncDelayMs: 0 };

export class Faults {
  private readonly http = new HttpFaultSwitch();
  private omf: OmfFaultFields = {};

  get(): FaultConfig {
    return { ...this.http.get(), ...this.omf };
  }

  /** Merges `patch` into what is armed (fields given replace, others stay). */
  set(patch: FaultConfig): FaultConfig {
    const { scope, profile, partialFailures, asyncFailures, asyncDelayMs, ...http } = patch;
    this.http.set(http);
    if (scope !== undefined) this.omf.scope = scope;
    if (profile !== undefined) this.omf.profile = profile;
    if (partialFailures !== undefined) this.omf.partialFailures = partialFailures;
    if (asyncFailures !== undefined) this.omf.asyncFailures = asyncFailures;
    if (asyncDelayMs !== undefined) this.omf.asyncDelayMs = asyncDelayMs;
    return this.get();
  }

  clear(): void {
    this.http.clear();
    this.omf = {};
  }

  /** Takes one unit of whichever fault applies to this request. */
  decide(profile: Profile | undefined, isOmf: boolean, path: string): OmfFaultDecision {
    const o = this.omf;
    if (!this.http.active && !o.partialFailures && !o.asyncFailures && !o.asyncDelayMs) return NONE;
    if ((o.scope ?? "omf") === "omf" && !isOmf) return NONE;
    if (o.profile && o.profile !== profile) return NONE;
    const http = this.http.decide(path);
    const d: OmfFaultDecision = { http, failFirstMessage: false, asyncFailure: false, asyncDelayMs: 0 };
    if (http.kind !== "none" || !isOmf) return d;
    const sds = profile === "adh" || profile === "eds";
    if (sds && o.asyncFailures) {
      d.asyncFailure = true;
      if (--o.asyncFailures === 0) delete o.asyncFailures;
    } else if (o.partialFailures) {
      d.failFirstMessage = true;
      if (--o.partialFailures === 0) delete o.partialFailures;
    }
    if (sds && o.asyncDelayMs) d.asyncDelayMs = o.asyncDelayMs;
    return d;
  }
}

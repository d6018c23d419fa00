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
}

/** The whole switch, as `POST /_emulator/faults`, `options.faults` and `OMF_EMULATOR_FAULTS` take it. */
export type FaultConfig = HttpFaultConfig & OmfFaultFields;

/** Validates untrusted fault settings; throws the kit's FaultConfigError naming the field. */
export function parseFaultConfig(input: unknown): FaultConfig {
  return parseHttpFaultConfig<OmfFaultFields>(input, {
    scope: enumField(["omf", "all"]),
    profile: enumField(["pi", "adh", "eds"]),
    partialFailures: intField(),
  });
}

export interface OmfFaultDecision {
  /** What the kit carries out on the request (`none` when only the OMF-level failure fires). */
  http: HttpFaultDecision;
  /** Fail message 0 of this OMF request. */
  failFirstMessage: boolean;
}

const NONE: OmfFaultDecision = { http: { kind: "none", latencyMs: 0 }, failFirstMessage: false };

export class Faults {
  private readonly http = new HttpFaultSwitch();
  private omf: OmfFaultFields = {};

  get(): FaultConfig {
    return { ...this.http.get(), ...this.omf };
  }

  /** Merges `patch` into what is armed (fields given replace, others stay). */
  set(patch: FaultConfig): FaultConfig {
    const { scope, profile, partialFailures, ...http } = patch;
    this.http.set(http);
    if (scope !== undefined) this.omf.scope = scope;
    if (profile !== undefined) this.omf.profile = profile;
    if (partialFailures !== undefined) this.omf.partialFailures = partialFailures;
    return this.get();
  }

  clear(): void {
    this.http.clear();
    this.omf = {};
  }

  /** Takes one unit of whichever fault applies to this request. */
  decide(profile: Profile | undefined, isOmf: boolean, path: string): OmfFaultDecision {
    if (!this.http.active && !this.omf.partialFailures) return NONE;
    if ((this.omf.scope ?? "omf") === "omf" && !isOmf) return NONE;
    if (this.omf.profile && this.omf.profile !== profile) return NONE;
    const http = this.http.decide(path);
    if (http.kind === "none" && isOmf && this.omf.partialFailures) {
      this.omf.partialFailures--;
      if (this.omf.partialFailures === 0) delete this.omf.partialFailures;
      return { http, failFirstMessage: true };
    }
    return { http, failFirstMessage: false };
  }
}

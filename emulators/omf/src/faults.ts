import { z } from "zod";

/**
 * The fault switch. Every field is optional; a count left out means "until cleared".
 * Faults apply to OMF POSTs only unless `scope` is "all" (then also token, discovery and read-back requests),
 * and to every profile unless `profile` names one.
 */
export const FaultConfigSchema = z
  .object({
    /** Delay before answering. */
    latencyMs: z.number().int().min(0).optional(),
    latencyCount: z.number().int().min(0).optional(),
    /** Answer this status instead of processing (e.g. 500, 503, 504, 429). */
    status: z.number().int().min(400).max(599).optional(),
    count: z.number().int().min(0).optional(),
    /** Sent as `Retry-After` (seconds) with the injected status. */
    retryAfterSeconds: z.number().int().min(0).optional(),
    /** Body for the injected status; default the profile's error body. */
    body: z.unknown().optional(),
    /** Read the request, then destroy the socket without answering, this many times. */
    dropConnections: z.number().int().min(0).optional(),
    /** Hold the request without answering for hangMs, then destroy the socket. */
    hangMs: z.number().int().min(0).optional(),
    hangCount: z.number().int().min(0).optional(),
    /** Process the request but fail its first message (PI 409 in Messages[0], SDS 400), this many times. */
    partialFailures: z.number().int().min(0).optional(),
    scope: z.enum(["omf", "all"]).optional(),
    profile: z.enum(["pi", "adh", "eds"]).optional(),
  })
  .strict();

export type FaultConfig = z.infer<typeof FaultConfigSchema>;

export type FaultDecision =
  | { kind: "none"; latencyMs: number }
  | { kind: "drop"; latencyMs: number }
  | { kind: "hang"; latencyMs: number; hangMs: number }
  | { kind: "status"; latencyMs: number; status: number; retryAfterSeconds?: number; body?: unknown }
  | { kind: "partial"; latencyMs: number };

export class Faults {
  private config: FaultConfig = {};

  get(): FaultConfig {
    return { ...this.config };
  }

  /** Merges `patch` into the current faults (fields given replace, others stay). */
  set(patch: FaultConfig): FaultConfig {
    this.config = { ...this.config, ...patch };
    return this.get();
  }

  clear(): void {
    this.config = {};
  }

  get active(): boolean {
    return Object.keys(this.config).some((k) => k !== "scope" && k !== "profile");
  }

  /** Takes one unit of whichever fault applies to this request. */
  decide(profile: string | undefined, isOmf: boolean): FaultDecision {
    const c = this.config;
    if (!this.active) return { kind: "none", latencyMs: 0 };
    if ((c.scope ?? "omf") === "omf" && !isOmf) return { kind: "none", latencyMs: 0 };
    if (c.profile && c.profile !== profile) return { kind: "none", latencyMs: 0 };
    let latencyMs = 0;
    if (c.latencyMs && this.take("latencyCount")) latencyMs = c.latencyMs;
    if (c.latencyCount === 0) {
      delete c.latencyMs;
      delete c.latencyCount;
    }
    if (c.dropConnections) {
      c.dropConnections--;
      if (c.dropConnections === 0) delete c.dropConnections;
      return { kind: "drop", latencyMs };
    }
    if (c.hangMs !== undefined && this.take("hangCount")) {
      const hangMs = c.hangMs;
      if (c.hangCount === 0) {
        delete c.hangMs;
        delete c.hangCount;
      }
      return { kind: "hang", latencyMs, hangMs };
    }
    if (c.status !== undefined && this.take("count")) {
      const d: FaultDecision = { kind: "status", latencyMs, status: c.status, retryAfterSeconds: c.retryAfterSeconds, body: c.body };
      if (c.count === 0) {
        delete c.status;
        delete c.count;
        delete c.retryAfterSeconds;
        delete c.body;
      }
      return d;
    }
    if (isOmf && c.partialFailures) {
      c.partialFailures--;
      if (c.partialFailures === 0) delete c.partialFailures;
      return { kind: "partial", latencyMs };
    }
    return { kind: "none", latencyMs };
  }

  /** Decrements a counter if present; true when the fault fires (no counter = unlimited). */
  private take(counter: "latencyCount" | "hangCount" | "count"): boolean {
    const n = this.config[counter];
    if (n === undefined) return true;
    if (n <= 0) return false;
    this.config[counter] = n - 1;
    return true;
  }
}

/**
 * Faults a test arms to exercise a client's error paths. Counted faults disarm themselves when their count reaches 0.
 */
import { z } from "zod";

const count = z.number().int().min(1).max(1_000_000);

export const FaultConfigSchema = z
  .object({
    /** DPS answers 429 with this retry-after to the next `count` register or poll requests (MQTT and HTTPS). */
    dpsThrottle: z.object({ count, retryAfterSeconds: z.number().int().min(0).max(3600) }).strict(),
    /** DPS answers the next `count` register requests with status "failed". */
    dpsFailed: z
      .object({
        count,
        errorCode: z.number().int().min(100000).max(599999).default(400209),
        errorMessage: z.string().max(1024).default("registration failed (fault injected)"),
      })
      .strict(),
    /** The next N hub CONNECTs get CONNACK 3 (server unavailable), as when the hub throttles connections. */
    connackServerUnavailable: count,
    /** Telemetry is recorded but never acknowledged (no PUBACK) while set. */
    dropPubacks: z.boolean(),
    /** Telemetry PUBACKs go out this late while set. */
    delayPubackMs: z.number().int().min(0).max(600_000),
    /** The next N twin requests (GET or reported PATCH) get no answer at all. */
    dropTwinResponses: count,
    /** The next N twin requests are answered 429. */
    twinThrottle: count,
  })
  .partial()
  .strict();

export type FaultConfig = z.input<typeof FaultConfigSchema>;
type Armed = z.output<typeof FaultConfigSchema>;

export class FaultConfigError extends Error {
  override name = "FaultConfigError";
}

export function parseFaultConfig(input: unknown): Armed {
  const r = FaultConfigSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new FaultConfigError(`fault ${issue.path.join(".") || "config"}: ${issue.message}`);
  }
  return r.data;
}

export class Faults {
  private armed: Armed = {};

  /** Merges into what is armed; throws FaultConfigError naming the field that is wrong. */
  set(input: unknown): void {
    this.armed = { ...this.armed, ...parseFaultConfig(input) };
  }

  clear(): void {
    this.armed = {};
  }

  list(): Armed {
    return structuredClone(this.armed);
  }

  /** Takes one unit of a counted fault; undefined when it is not armed. */
  takeDpsThrottle(): number | undefined {
    const f = this.armed.dpsThrottle;
    if (!f) return undefined;
    if (--f.count <= 0) delete this.armed.dpsThrottle;
    return f.retryAfterSeconds;
  }

  takeDpsFailed(): { errorCode: number; errorMessage: string } | undefined {
    const f = this.armed.dpsFailed;
    if (!f) return undefined;
    if (--f.count <= 0) delete this.armed.dpsFailed;
    return { errorCode: f.errorCode, errorMessage: f.errorMessage };
  }

  take(name: "connackServerUnavailable" | "dropTwinResponses" | "twinThrottle"): boolean {
    const n = this.armed[name];
    if (n === undefined) return false;
    if (n <= 1) delete this.armed[name];
    else this.armed[name] = n - 1;
    return true;
  }

  get dropPubacks(): boolean {
    return this.armed.dropPubacks === true;
  }

  get delayPubackMs(): number {
    return this.armed.delayPubackMs ?? 0;
  }
}

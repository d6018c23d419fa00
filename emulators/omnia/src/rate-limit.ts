/**
 * The gateway's rate limit (introduced with v1.7.5): at most `requests` calls per `perSeconds` window; past it 429
 * with `Retry-After` (seconds to the window's end), as API Management's rate-limit policy answers. Off by default.
 */
import { ApiError } from "./errors.js";

export interface RateLimit {
  requests: number;
  perSeconds: number;
}

export function parseRateLimit(input: unknown): RateLimit {
  const r = input as Partial<RateLimit> | null;
  const ok = (v: unknown, max: number) => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= max;
  if (!r || typeof r !== "object" || !ok(r.requests, 1_000_000) || !ok(r.perSeconds, 86_400))
    throw new Error("rate limit: requests (1..1000000) and perSeconds (1..86400) are whole numbers");
  return { requests: r.requests!, perSeconds: r.perSeconds! };
}

export class RateLimiter {
  private windowStart = 0;
  private used = 0;

  constructor(public limit: RateLimit | undefined) {}

  /** Takes one call; throws the 429 when the window is used up. */
  take(now = Date.now()): void {
    if (!this.limit) return;
    const span = this.limit.perSeconds * 1000;
    if (now - this.windowStart >= span) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.limit.requests) {
      const wait = Math.max(1, Math.ceil((this.windowStart + span - now) / 1000));
      throw new ApiError(429, `Rate limit is exceeded. Try again in ${wait} seconds.`, { "Retry-After": String(wait) });
    }
    this.used++;
  }

  set(limit: RateLimit | undefined): void {
    this.limit = limit;
    this.windowStart = 0;
    this.used = 0;
  }
}

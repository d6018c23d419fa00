/**
 * One retry policy for the whole project, so that every client (HTTP to a platform, TCP
 * reconnects, bus redelivery) backs off the same way and is tuned in one place.
 */
export interface BackoffPolicy {
  /** Delay before the first retry, in ms. */
  initialMs: number;
  /** Upper bound of any single delay, in ms. */
  maxMs: number;
  /** Growth factor per attempt. */
  multiplier: number;
  /** 0 = no jitter, 1 = full jitter (delay drawn uniformly from [0, computed]). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 30_000, multiplier: 2, jitter: 0.5 };

/** Delay before retry number `attempt` (1-based). `random` is injectable for tests. */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  const raw = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** (n - 1));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(raw * (1 - jitter) + raw * jitter * random());
}

/**
 * Parses an HTTP Retry-After header (delta-seconds or HTTP-date) into ms from `now`.
 * Returns undefined when absent or unparseable, so callers fall back to their backoff.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Whether trying again can help, read from the error itself: `retryable === true`. A property rather than a base
 * class, so that each platform client keeps one error root of its own and still tells every caller (this retry
 * loop, the bus consumer, a pipeline) which of its errors are transient.
 */
export function isRetryable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { retryable?: unknown }).retryable === true;
}

/** The error's own hint of when to try again (`retryAfterMs`, e.g. from Retry-After), or undefined to use backoff. */
export function retryAfterOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const ms = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** The shape `isRetryable` and `retryAfterOf` read; platform errors declare it as properties of their own root. */
export interface RetryHint {
  readonly retryable: boolean;
  readonly retryAfterMs?: number | undefined;
}

/**
 * A transient error for code that has no error root of its own to put the property on (a pipeline's "endpoint not
 * there yet"); platform clients set `retryable` / `retryAfterMs` on their own errors instead.
 */
export class RetryableError extends Error implements RetryHint {
  readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RetryableError";
  }
}

export interface RetryOptions {
  policy?: BackoffPolicy;
  /** Total tries including the first; Infinity retries until the signal aborts. */
  maxAttempts?: number;
  signal?: AbortSignal;
  /** Decides whether an error is worth another try. Default: `isRetryable` (the error says `retryable: true`). */
  isRetryable?: (err: unknown) => boolean;
  /** `delayMs` is the error's `retryAfterMs` when it has one, else the policy's backoff. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Runs `fn` until it succeeds, a non-retryable error is thrown, attempts run out or the signal aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy = options.policy ?? DEFAULT_BACKOFF;
  const maxAttempts = options.maxAttempts ?? 5;
  const shouldRetry = options.isRetryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= maxAttempts || !shouldRetry(err)) throw err;
      const delay = retryAfterOf(err) ?? backoffDelay(attempt, policy);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

/** Resolves after `ms`, rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

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

/**
 * The longest wait a server's Retry-After is followed for. A platform may ask for hours (or, by mistake, decades); the
 * wait becomes a NATS redelivery delay, and one longer than the stream's age limit lets the message expire unseen,
 * with no dead letter and no log. A few minutes keeps a throttling platform at bay without risking the data.
 */
export const MAX_RETRY_AFTER_MS = 300_000;

/** The largest delay setTimeout honours (a signed 32-bit count of ms); a longer one fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer delay setTimeout takes as meant: NaN and negatives are 0, anything over MAX_TIMER_MS is MAX_TIMER_MS. */
function timerMs(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  return Math.min(MAX_TIMER_MS, ms);
}

/** Delay before retry number `attempt` (1-based). `random` is injectable for tests. Never more than MAX_TIMER_MS. */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random = Math.random): number {
  const n = Number.isNaN(attempt) ? 1 : Math.max(1, Math.floor(attempt));
  const raw = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** (n - 1));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return timerMs(Math.round(raw * (1 - jitter) + raw * jitter * random()));
}

/** A Retry-After as read, and the wait to use for it. */
export interface RetryAfter {
  /** The wait to use: what the server asked for, at most the cap. */
  ms: number;
  /** What the server asked for; far beyond the cap (or Infinity) when the header was absurd. */
  requestedMs: number;
  /** `requestedMs > ms`: the server's wish was cut to the cap, which the caller's log should say. */
  clamped: boolean;
}

function checkCap(maxMs: number): number {
  if (!(maxMs >= 0 && maxMs <= MAX_TIMER_MS)) throw new RangeError(`maxMs must be between 0 and ${MAX_TIMER_MS}, got ${maxMs}`);
  return maxMs;
}

/**
 * Reads an HTTP Retry-After header (delta-seconds or HTTP-date) as ms from `now`, cut to `maxMs` (default
 * MAX_RETRY_AFTER_MS, at most MAX_TIMER_MS). Undefined when absent or unparseable, so callers fall back to their backoff.
 */
export function readRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
  maxMs: number = MAX_RETRY_AFTER_MS,
): RetryAfter | undefined {
  const cap = checkCap(maxMs);
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  let requestedMs: number;
  if (/^\d+$/.test(trimmed)) requestedMs = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    requestedMs = Math.max(0, at - now);
  }
  const ms = Math.min(requestedMs, cap);
  return { ms, requestedMs, clamped: requestedMs > ms };
}

/** `readRetryAfter(...)?.ms`: the wait in ms, never more than `maxMs`; undefined when absent or unparseable. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
  maxMs: number = MAX_RETRY_AFTER_MS,
): number | undefined {
  return readRetryAfter(value, now, maxMs)?.ms;
}

/**
 * Whether trying again can help, read from the error itself: `retryable === true`. A property rather than a base
 * class, so that each platform client keeps one error root of its own and still tells every caller (this retry
 * loop, the bus consumer, a pipeline) which of its errors are transient.
 */
export function isRetryable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { retryable?: unknown }).retryable === true;
}

/**
 * The error's own hint of when to try again (`retryAfterMs`, e.g. from Retry-After) and what the server asked for
 * (`retryAfterRequestedMs` when the platform client already cut it), cut to `maxMs` (default MAX_RETRY_AFTER_MS);
 * undefined when the error has no usable hint, so the caller uses its backoff.
 */
export function retryHintOf(err: unknown, maxMs: number = MAX_RETRY_AFTER_MS): RetryAfter | undefined {
  const cap = checkCap(maxMs);
  if (typeof err !== "object" || err === null) return undefined;
  const { retryAfterMs: hint, retryAfterRequestedMs: asked } = err as { retryAfterMs?: unknown; retryAfterRequestedMs?: unknown };
  if (typeof hint !== "number" || !(hint >= 0)) return undefined;
  const requestedMs = typeof asked === "number" && asked > hint ? asked : hint;
  const ms = Math.min(hint, cap);
  return { ms, requestedMs, clamped: requestedMs > ms };
}

/** `retryHintOf(err, maxMs)?.ms`: when to try again per the error, never later than `maxMs`; undefined to use backoff. */
export function retryAfterOf(err: unknown, maxMs: number = MAX_RETRY_AFTER_MS): number | undefined {
  return retryHintOf(err, maxMs)?.ms;
}

/** The shape `isRetryable` and `retryAfterOf` read; platform errors declare it as properties of their own root. */
export interface RetryHint {
  readonly retryable: boolean;
  /** The wait to use, already cut to the cap by the client that read the Retry-After. */
  readonly retryAfterMs?: number | undefined;
  /** What the server asked for, when that was more than `retryAfterMs` (so a log can show both). */
  readonly retryAfterRequestedMs?: number | undefined;
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

/** Resolves after `ms` (at most MAX_TIMER_MS), rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, timerMs(ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The wait between two polls: `wait(ms)` ends after `ms` (at most MAX_TIMER_MS) or at `wake()`, whichever is first. */
class Pause {
  private wakeUp: (() => void) | undefined;

  async wait(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timerMs(ms));
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wakeUp = undefined;
  }

  /** Ends the wait in progress; with none, does nothing (the poll it would start is running). */
  wake(): void {
    this.wakeUp?.();
  }
}

export interface PollLoopOptions {
  /** One poll. A failure goes to onError (unless the loop is stopping) and the next poll comes after the interval. */
  poll(signal: AbortSignal): Promise<void>;
  /** The wait after each poll, asked each time: a changed setting applies from the next wait. */
  intervalMs(): number;
  onError(err: unknown): void;
}

/**
 * A poller's life: poll, wait the interval, poll again, until stop(). wake() ends the wait in progress (a changed
 * setting applies at once); stop() aborts the poll in flight through its signal and resolves once the loop is over.
 */
export class PollLoop {
  private readonly abort = new AbortController();
  private readonly pause = new Pause();
  private running: Promise<void> | undefined;

  constructor(private readonly o: PollLoopOptions) {}

  /** Aborted at stop(): what a poll made outside the loop should stop on too. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  start(): void {
    this.running ??= this.loop(this.abort.signal);
  }

  wake(): void {
    this.pause.wake();
  }

  async stop(reason: Error = new Error("stopped")): Promise<void> {
    this.abort.abort(reason);
    this.pause.wake();
    await this.running;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.o.poll(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.o.onError(err);
      }
      if (signal.aborted) break;
      await this.pause.wait(this.o.intervalMs());
    }
  }
}

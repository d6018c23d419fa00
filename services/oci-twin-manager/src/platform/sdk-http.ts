import { AsyncLocalStorage } from "node:async_hooks";
import { networkErrorCode, readCappedBytes } from "@meridian/http";
import { parseRetryAfter } from "@meridian/retry";
import * as common from "oci-common";
import { type Agent, fetch } from "undici";

/**
 * What one SDK call learnt on the wire beyond what its OciError carries: the last Retry-After (the SDK drops
 * headers of error answers) and the last network failure (the SDK keeps only `code` and `message`, and fetch's
 * message is "fetch failed" with the socket's code two causes down). Kept per call in an AsyncLocalStorage, which
 * follows the SDK's retry loop through its awaits.
 */
export interface CallContext {
  retryAfterMs?: number;
  networkCode?: string;
  timedOut?: boolean;
  attempts: number;
}

export const callContext = new AsyncLocalStorage<CallContext>();

/** Runs one SDK call with a fresh CallContext, handing the context to `onError` when it fails. */
export async function withCallContext<T>(call: () => Promise<T>, onError: (err: unknown, ctx: CallContext) => never): Promise<T> {
  const ctx: CallContext = { attempts: 0 };
  try {
    return await callContext.run(ctx, call);
  } catch (err) {
    return onError(err, ctx);
  }
}

/** A network failure as the SDK's retrier sees it: `code` set, so that its lastKnownError says what happened. */
class TransportError extends Error {
  readonly code: string;
  /** Read by the SDK's retrier: false for what another attempt cannot fix. */
  readonly shouldBeRetried: boolean;
  constructor(message: string, code: string, shouldBeRetried: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.shouldBeRetried = shouldBeRetried;
  }
}

/**
 * The SDK's HttpClient, over undici instead of the global fetch: the CA is the agent's (the SDK's `httpOptions` only
 * reach fetch when its circuit breaker is off, and then as fetch's second argument), each attempt has a timeout (the
 * SDK has none), and bodies are read with a byte cap. Requests are signed by the SDK's own signer.
 */
export class UndiciHttpClient implements common.HttpClient {
  readonly #signer: common.RequestSigner;

  constructor(
    provider: common.AuthenticationDetailsProvider,
    private readonly agent: Agent,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {
    this.#signer = new common.DefaultRequestSigner(provider);
  }

  async send(req: common.HttpRequest, forceExcludeBody = false): Promise<Response> {
    const ctx = callContext.getStore();
    if (ctx) ctx.attempts++;
    if (req.body !== undefined && req.body !== null && typeof req.body !== "string") {
      // Every IoT operation this client uses has a JSON body, which the SDK serialises to a string.
      throw new TransportError("request body is not a string", "UnsupportedBody", false);
    }
    const body = typeof req.body === "string" && req.body.length > 0 ? req.body : undefined;
    await this.#signer.signHttpRequest(
      { method: req.method, headers: req.headers, uri: req.uri, ...(body === undefined ? {} : { body }) },
      forceExcludeBody,
    );
    const headers: Record<string, string> = {};
    req.headers.forEach((value, name) => {
      // fetch sets host from the URL; the signed value is the same.
      if (name !== "host") headers[name] = value;
    });
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(req.uri, {
        method: req.method,
        headers,
        // forceExcludeBody leaves the body out of the signature only; it is still sent (as the SDK's own client does).
        ...(body === undefined ? {} : { body }),
        signal: timeout,
        redirect: "manual",
        dispatcher: this.agent,
      });
    } catch (err) {
      const code = timeout.aborted ? "Timeout" : (networkErrorCode(err) ?? "NetworkError");
      if (ctx) {
        ctx.networkCode = code;
        ctx.timedOut = timeout.aborted;
      }
      throw new TransportError(timeout.aborted ? `no answer within ${this.timeoutMs} ms` : `${code}`, code, true, err);
    }
    if (ctx) {
      ctx.networkCode = undefined;
      ctx.timedOut = false;
      ctx.retryAfterMs = res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers.get("retry-after")) : undefined;
    }
    let bytes: Uint8Array | undefined;
    try {
      bytes = await readCappedBytes(res, this.maxBytes);
    } catch (err) {
      const code = timeout.aborted ? "Timeout" : (networkErrorCode(err) ?? "NetworkError");
      if (ctx) ctx.networkCode = code;
      throw new TransportError(`answer cut short: ${code}`, code, true, err);
    }
    if (bytes === undefined) {
      throw new TransportError(`answer over ${this.maxBytes} bytes (HTTP ${res.status}); not read`, "ResponseTooLarge", false);
    }
    const responseHeaders = new Headers();
    res.headers.forEach((value, name) => {
      responseHeaders.append(name, value);
    });
    const empty = res.status === 204 || res.status === 205 || res.status === 304;
    return new Response(empty ? null : bytes, { status: res.status, statusText: res.statusText, headers: responseHeaders });
  }
}

/** Exponential backoff with jitter (seconds, as the SDK counts), following a Retry-After up to the bound. */
class BoundedDelay implements common.DelayStrategy {
  constructor(private readonly maxDelayMs: number) {}
  delay(context: { readonly attemptCount: number }): number {
    const retryAfterMs = callContext.getStore()?.retryAfterMs;
    const backoffMs = Math.min(1000 * 2 ** context.attemptCount, this.maxDelayMs);
    const ms = retryAfterMs === undefined ? backoffMs * (0.5 + Math.random() / 2) : Math.min(retryAfterMs, this.maxDelayMs);
    return ms / 1000;
  }
}

/**
 * Attempts in all and a total time. A MaxAttemptsTerminationStrategy, so that the SDK still marks retried requests
 * with opc-client-retries.
 */
class BoundedTermination extends common.MaxAttemptsTerminationStrategy {
  constructor(
    maxAttempts: number,
    private readonly maxTotalMs: number,
  ) {
    super(maxAttempts);
  }
  override shouldTerminate(context: { readonly startTime: Date; readonly attemptCount: number }): boolean {
    return super.shouldTerminate(context) || Date.now() - context.startTime.getTime() >= this.maxTotalMs;
  }
}

/**
 * The SDK's default retry condition (409 IncorrectState, 429 TooManyRequests, 500/502/503/504, network failures)
 * with our bounds on attempts and time.
 */
export function boundedRetryConfiguration(maxAttempts: number, maxDelayMs: number, maxTotalMs: number): common.RetryConfiguration {
  return {
    terminationStrategy: new BoundedTermination(maxAttempts, maxTotalMs),
    delayStrategy: new BoundedDelay(maxDelayMs),
    retryCondition: common.OciSdkDefaultRetryConfiguration.retryCondition,
  };
}

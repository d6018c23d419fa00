import { rootCertificates } from "node:tls";
import { networkErrorCode } from "@meridian/http";
import { parseRetryAfter } from "@meridian/retry";
import { Agent, type Dispatcher } from "undici";
import { MAX_ERROR_BODY_BYTES } from "./config.js";
import {
  OciConflictError,
  OciError,
  type OciErrorDetails,
  OciInvalidArgumentError,
  OciNotAuthenticatedError,
  OciNotFoundError,
  OciThrottledError,
  OciUnavailableError,
} from "./errors.js";

/**
 * The connection pool for one of OCI's surfaces. `caPem` is trusted beside the system's roots (Node's `ca` replaces
 * them, so both are given), so that a TLS proxy or an emulator works without losing the public CAs.
 */
export function createAgent(caPem: string | undefined, connections?: number): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    ...(connections === undefined ? {} : { connections }),
    ...(caPem === undefined ? {} : { connect: { ca: [...rootCertificates, caPem] } }),
  });
}

export interface Exchange {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  agent: Agent;
  signal?: AbortSignal;
  /** `POST token`, `GET rawData`: what the error messages name (never a secret, never a query). */
  what: string;
}

/** The headers of an answer, read by name (lower case). */
export interface AnswerHeaders {
  get(name: string): string | null;
}

export interface ExchangeResult {
  status: number;
  headers: AnswerHeaders;
  text: string;
}

const utf8 = new TextDecoder();

class RawHeaders implements AnswerHeaders {
  constructor(private readonly raw: Record<string, string | string[] | undefined>) {}
  get(name: string): string | null {
    const v = this.raw[name];
    return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
  }
}

/**
 * The body as UTF-8 text (a leading BOM dropped, as TextDecoder does), or undefined once it is over `maxBytes` (then not read further and
 * its connection closed). Content-Length says so in advance; a body that lies about it is still cut while read.
 */
/** Stops reading a body: its connection is closed. Destroyed unread, undici's body emits an abort error nobody waits for. */
function discard(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => {});
  body.destroy();
}

async function readBody(body: Dispatcher.ResponseData["body"], headers: AnswerHeaders, maxBytes: number): Promise<string | undefined> {
  const declared = Number(headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    discard(body);
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      discard(body);
      return undefined;
    }
    chunks.push(chunk);
  }
  if (size === 0) return "";
  return utf8.decode(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
}

/**
 * One HTTP exchange with a per-request timeout and a bounded body. A timeout or a connection failure is an
 * OciUnavailableError (OCI may or may not have done it); the caller's own abort is rethrown as its reason.
 * undici's request() rather than fetch(): no WHATWG Request / Response / Headers / web stream per exchange, which was
 * about a third of the route sink's CPU at one device post per event (bench:oci). As fetch with redirect "manual", a
 * 3xx is returned as it is; no Accept-Encoding is sent, so an answer comes uncompressed.
 */
export async function exchange(req: Exchange): Promise<ExchangeResult> {
  if (req.signal?.aborted) throw req.signal.reason;
  // A timer cleared when the exchange ends, not AbortSignal.timeout: that one (and the request it would abort) stays
  // alive for the whole timeout, ~80 MiB of heap at 1500 device posts/s with the default 30 s (bench:oci). The caller's
  // signal is followed by a listener removed at the end, not AbortSignal.any, which ties a signal to the caller's for
  // as long as the caller's lives (the route sink's: the route's life).
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new DOMException(`no answer within ${req.timeoutMs} ms`, "TimeoutError")), req.timeoutMs);
  const outer = req.signal;
  const onAbort = outer ? () => timeout.abort(outer.reason) : undefined;
  if (outer && onAbort) outer.addEventListener("abort", onAbort, { once: true });
  try {
    const url = new URL(req.url);
    const res = await req.agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: req.method,
      headers: req.headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      signal: timeout.signal,
    });
    const headers = new RawHeaders(res.headers);
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const limit = ok ? req.maxBytes : MAX_ERROR_BODY_BYTES;
    const text = await readBody(res.body, headers, limit);
    if (text === undefined) {
      if (ok) {
        throw new OciError(`${req.what}: answer over ${limit} bytes (HTTP ${res.statusCode}); not read`, {
          status: res.statusCode,
          code: "ResponseTooLarge",
        });
      }
      return { status: res.statusCode, headers, text: "" };
    }
    return { status: res.statusCode, headers, text };
  } catch (err) {
    if (err instanceof OciError) throw err;
    if (outer?.aborted) throw outer.reason;
    if (timeout.signal.aborted) {
      throw new OciUnavailableError(`${req.what}: no answer within ${req.timeoutMs} ms`, { code: "Timeout", cause: err });
    }
    const code = networkErrorCode(err);
    throw new OciUnavailableError(`${req.what}: ${code ?? (err instanceof Error ? err.message : "network error")}`, {
      code: code ?? "NetworkError",
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    if (outer && onAbort) outer.removeEventListener("abort", onAbort);
  }
}

/** `{code, message}` (OCI, ORDS) or `{error, error_description}` (OAuth) from an error body; the text when neither. */
export function errorBody(text: string): { code?: string; message?: string } {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (body !== null && typeof body === "object") {
      const code = typeof body.code === "string" ? body.code : typeof body.error === "string" ? body.error : undefined;
      const message =
        typeof body.message === "string"
          ? body.message
          : typeof body.error_description === "string"
            ? body.error_description
            : typeof body.title === "string"
              ? body.title
              : undefined;
      return { ...(code === undefined ? {} : { code }), ...(message === undefined ? {} : { message }) };
    }
  } catch {
    // not JSON: the text itself, cut short
  }
  const trimmed = text.trim().slice(0, 300);
  return trimmed ? { message: trimmed } : {};
}

/**
 * The input field an OCI 400 names, when it names one: `spec.contents[2].schema: ...`, `Invalid parameter 'limit'`,
 * `field "externalKey" ...`. Undefined when the message names none (the caller then says `request`).
 */
export function fieldOf(message: string | undefined): string | undefined {
  if (!message) return undefined;
  // a.b, a[2], a["@context"]: the paths OCI's and the DTDL validator's messages use.
  const path = '([A-Za-z_$][\\w$]*(?:\\[\\d+\\]|\\["[^"\\]]+"\\]|\\.[A-Za-z_$@][\\w$@]*)*)';
  const leading = new RegExp(`^${path}\\s*:\\s`).exec(message);
  if (leading?.[1] && /[.[]|^[a-z]/.test(leading[1])) return leading[1];
  const keyword = "\\b(?:field|parameter|property|attribute)s?";
  const quotedAfter = new RegExp(`${keyword}\\s*:?\\s*['"\`]${path}['"\`]`, "i").exec(message);
  if (quotedAfter?.[1]) return quotedAfter[1];
  const colonAfter = new RegExp(`${keyword}\\s*:\\s*${path}`, "i").exec(message);
  if (colonAfter?.[1]) return colonAfter[1];
  const quoted = new RegExp(`['"\`]${path}['"\`]`).exec(message);
  if (quoted?.[1] && /[.[]|[a-z][A-Z]/.test(quoted[1])) return quoted[1];
  return undefined;
}

export interface StatusContext {
  /** What was asked for (an OCID, `rawData/12`), for OciNotFoundError. */
  resource: string;
  /** `GET rawData`, for the messages. */
  what: string;
  /** The field a 400 falls back to when OCI's message names none. */
  field?: string;
}

/** The error class for an HTTP status OCI (or ORDS, or the identity domain) answered with. */
export function errorForStatus(
  status: number,
  body: { code?: string; message?: string },
  ctx: StatusContext,
  extra: { requestId?: string; retryAfterMs?: number } = {},
): OciError {
  const details: OciErrorDetails = {
    status,
    ...(body.code === undefined ? {} : { code: body.code }),
    ...(extra.requestId === undefined ? {} : { requestId: extra.requestId }),
  };
  const said = body.message ?? body.code ?? `HTTP ${status}`;
  const message = `${ctx.what}: ${said} (HTTP ${status}${body.code ? ` ${body.code}` : ""}${extra.requestId ? `, opc-request-id ${extra.requestId}` : ""})`;
  if (status === 400 || status === 413 || status === 422) {
    return new OciInvalidArgumentError(fieldOf(body.message) ?? ctx.field ?? "request", `${said} (${ctx.what}, HTTP ${status})`, details);
  }
  if (status === 401 || status === 403) return new OciNotAuthenticatedError(message, details);
  if (status === 404) return new OciNotFoundError(ctx.resource, message, details);
  if (status === 409) return new OciConflictError(message, details);
  if (status === 412) return new OciConflictError(message, { ...details, code: "NoEtagMatch" });
  if (status === 429) {
    const retryAfterMs = extra.retryAfterMs;
    return new OciThrottledError(message, { ...details, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
  }
  if (status >= 500 || status === 408) return new OciUnavailableError(message, details);
  return new OciError(message, details);
}

/** Retry-After of an answer (seconds or a date), capped as @meridian/retry caps it. */
export function retryAfterFrom(headers: AnswerHeaders): { retryAfterMs?: number } {
  const ms = parseRetryAfter(headers.get("retry-after"));
  return ms === undefined ? {} : { retryAfterMs: ms };
}

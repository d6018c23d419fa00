import { readRetryAfter } from "@meridian/retry";
import {
  OmfAuthError,
  OmfBadRequestError,
  OmfConflictError,
  type OmfError,
  OmfNotFoundError,
  OmfPayloadTooLargeError,
  OmfServerError,
  OmfThrottledError,
} from "./errors.js";
import type { OmfResult, OmfResultMessage, OmfSeverity } from "./types.js";

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Key lookup ignoring case and `-`/`_` (PI writes PascalCase; casing across versions is not documented). */
function pick(obj: Json, ...names: string[]): unknown {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const wanted = new Set(names.map(norm));
  for (const [k, v] of Object.entries(obj)) if (wanted.has(norm(k))) return v;
  return undefined;
}

function str(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

function num(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

const SEVERITIES: readonly OmfSeverity[] = ["critical", "error", "warning", "info", "debug"];

function severity(value: unknown, fallback: OmfSeverity): OmfSeverity {
  const s = str(value)?.toLowerCase();
  if (s === "information") return "info";
  return SEVERITIES.find((x) => x === s) ?? fallback;
}

function parameters(value: unknown): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (Array.isArray(value)) {
    // PI: [{Name, Value}]
    for (const p of value) {
      if (!isObject(p)) continue;
      const name = str(pick(p, "Name"));
      if (name !== undefined) out[name] = str(pick(p, "Value")) ?? JSON.stringify(pick(p, "Value") ?? null);
    }
  } else if (isObject(value)) {
    // CDS: {name: value}
    for (const [k, v] of Object.entries(value)) out[k] = str(v) ?? JSON.stringify(v);
  } else {
    return undefined;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function stripUndefined<T extends object>(obj: T): T {
  for (const k of Object.keys(obj) as (keyof T)[]) if (obj[k] === undefined) delete obj[k];
  return obj;
}

/** PI event: `{EventInfo|Event: {Message, Reason, Suggestions, EventCode, Severity, Parameters}, ExceptionInfo, Severity, InnerEvents}`. */
function parsePiEvent(ev: Json, index: number | null | undefined, status: number | undefined, fallback: OmfSeverity): OmfResultMessage {
  // The notes show both `EventInfo` and `Event` as the key of the event details (unverified which one PI sends).
  const info = pick(ev, "EventInfo", "Event");
  const details: Json = isObject(info) ? info : ev;
  const exceptionRaw = pick(ev, "ExceptionInfo");
  const suggestionsRaw = pick(details, "Suggestions");
  const suggestions = Array.isArray(suggestionsRaw) ? suggestionsRaw.map((s) => str(s) ?? JSON.stringify(s)) : undefined;
  const innerRaw = pick(ev, "InnerEvents");
  const inner = Array.isArray(innerRaw) ? innerRaw.filter(isObject).map((e) => parsePiEvent(e, index, status, fallback)) : undefined;
  const exception = isObject(exceptionRaw)
    ? { type: str(pick(exceptionRaw, "Type")), message: str(pick(exceptionRaw, "Message")) }
    : undefined;
  return stripUndefined({
    index,
    status,
    severity: severity(pick(ev, "Severity") ?? pick(details, "Severity"), fallback),
    message: str(pick(details, "Message")) ?? exception?.message ?? "",
    reason: str(pick(details, "Reason")),
    resolution: suggestions && suggestions.length > 0 ? suggestions.join(" ") : undefined,
    suggestions: suggestions && suggestions.length > 0 ? suggestions : undefined,
    eventCode: num(pick(details, "EventCode")),
    parameters: parameters(pick(details, "Parameters")),
    exception: exception ? stripUndefined(exception) : undefined,
    innerEvents: inner && inner.length > 0 ? inner : undefined,
  });
}

/** PI Web API: `{OperationId, Messages: [{MessageIndex, Events: [...], Status: {Code, HighestSeverity}}]}`. */
function parsePiMessages(messages: unknown[], httpFallback: OmfSeverity): OmfResultMessage[] {
  const out: OmfResultMessage[] = [];
  for (const m of messages) {
    if (!isObject(m)) continue;
    const rawIndex = pick(m, "MessageIndex");
    const index = rawIndex === null ? null : num(rawIndex);
    const statusObj = pick(m, "Status");
    const status = isObject(statusObj) ? num(pick(statusObj, "Code")) : undefined;
    const highest = isObject(statusObj) ? pick(statusObj, "HighestSeverity") : undefined;
    const fallback = severity(highest, status !== undefined ? (status >= 400 ? "error" : "info") : httpFallback);
    const events = pick(m, "Events");
    const parsed = Array.isArray(events) ? events.filter(isObject).map((e) => parsePiEvent(e, index, status, fallback)) : [];
    if (parsed.length === 0) {
      parsed.push(stripUndefined({ index, status, severity: fallback, message: status !== undefined ? `status ${status}` : "" }));
    }
    out.push(...parsed);
  }
  return out;
}

/** CDS/ADH/EDS: `{OperationId, Error, Reason, Resolution, Parameters, ChildErrors?}`. */
function parseCloudError(body: Json, fallback: OmfSeverity): OmfResultMessage {
  const childrenRaw = pick(body, "ChildErrors");
  const children = Array.isArray(childrenRaw) ? childrenRaw.filter(isObject).map((c) => parseCloudError(c, fallback)) : undefined;
  return stripUndefined({
    severity: fallback,
    message: str(pick(body, "Error")) ?? str(pick(body, "Message")) ?? "",
    reason: str(pick(body, "Reason")),
    resolution: str(pick(body, "Resolution")),
    parameters: parameters(pick(body, "Parameters")),
    innerEvents: children && children.length > 0 ? children : undefined,
  });
}

export type HeaderSource = Headers | Readonly<Record<string, string | string[] | undefined>>;

function header(headers: HeaderSource | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() === lower) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/**
 * Parses any OMF endpoint reply into one shape:
 * PI's per-message report, the cloud's `Operation-Id` / error body, PI's 413 `{"Errors": [...]}`, or plain text.
 */
export function parseOmfResponse(status: number, headers: HeaderSource | undefined, bodyText: string, now: number = Date.now()): OmfResult {
  const httpOk = status >= 200 && status < 300;
  const fallback: OmfSeverity = httpOk ? "info" : "error";
  let messages: OmfResultMessage[] = [];
  let operationId: string | undefined;
  const text = bodyText.trim();
  let body: unknown;
  if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
      messages.push({ severity: fallback, message: text.slice(0, 2000) });
    }
  }
  if (isObject(body)) {
    operationId = str(pick(body, "OperationId", "Operation-Id"));
    const piMessages = pick(body, "Messages");
    const errors = pick(body, "Errors");
    if (Array.isArray(piMessages)) {
      messages = parsePiMessages(piMessages, fallback);
    } else if (Array.isArray(errors)) {
      messages = errors.map((e) => ({ severity: fallback, message: str(e) ?? JSON.stringify(e) }));
    } else if (pick(body, "Error") !== undefined || pick(body, "Message") !== undefined) {
      messages = [parseCloudError(body, fallback)];
    }
  } else if (Array.isArray(body)) {
    // Not documented; tolerate a bare array of PI-style message reports.
    messages = parsePiMessages(body, fallback);
  }
  const failedStatuses = messages.map((m) => m.status ?? 0).filter((s) => s >= 400);
  const partial = httpOk && failedStatuses.length > 0;
  const requestId = operationId ?? header(headers, "operation-id") ?? header(headers, "request-id") ?? header(headers, "x-request-id");
  const retryAfter = readRetryAfter(header(headers, "retry-after"), now);
  return stripUndefined({
    ok: httpOk && !partial,
    status,
    partial,
    messages,
    operationId,
    requestId,
    retryAfterMs: retryAfter?.ms,
    retryAfterRequestedMs: retryAfter?.clamped ? retryAfter.requestedMs : undefined,
  });
}

/** The status the result should be judged by: the HTTP status, or the worst per-message status under a 2xx. */
export function effectiveStatus(result: OmfResult): number {
  if (!result.partial) return result.status;
  return Math.max(...result.messages.map((m) => m.status ?? 0));
}

const REDEFINITION = /redefinition of the type|already exists, but (it )?does not match|overlaps with/i;
const NOT_DEFINED = /container is not defined|container not found|type not found|could not find the type|unable to find the type/i;

function summary(result: OmfResult): string {
  const first = result.messages.find((m) => m.severity === "error" || m.severity === "critical") ?? result.messages[0];
  if (first === undefined) return "";
  const idx = first.index === undefined ? "" : first.index === null ? " [request]" : ` [message ${first.index}]`;
  const reason = first.reason ? ` (${first.reason})` : "";
  return `:${idx} ${first.message}${reason}`.slice(0, 500);
}

/**
 * Maps a failed result to the error class the pipeline acts on; undefined when the result is ok.
 * A 2xx with failing per-message statuses is classified by its worst message status.
 */
export function classifyResult(result: OmfResult, endpoint?: string): OmfError | undefined {
  if (result.ok) return undefined;
  const status = effectiveStatus(result);
  // `status` on the error is the status it was classified by (HTTP, or the worst message's under a partial 2xx).
  const details = { endpoint, status, result };
  const where = endpoint ? `OMF endpoint ${endpoint}` : "OMF endpoint";
  const text = result.messages.map((m) => `${m.message} ${m.reason ?? ""}`).join(" ");
  const msg = `${where}: HTTP ${result.status}${result.partial ? ` (message status ${status})` : ""}${summary(result)}`;
  if (status === 401 || status === 403) return new OmfAuthError(msg, details);
  if (status === 409) return new OmfConflictError(msg, details);
  if (status === 413) return new OmfPayloadTooLargeError(msg, details);
  if (status === 429) return new OmfThrottledError(msg, result.retryAfterMs, details);
  if (status === 503 && result.retryAfterMs !== undefined) return new OmfThrottledError(msg, result.retryAfterMs, details);
  if (status === 408) return new OmfServerError(msg, details);
  if (status === 501) return new OmfBadRequestError(msg, details);
  if (status >= 500) return new OmfServerError(msg, { ...details, retryAfterMs: result.retryAfterMs });
  if (status === 404) return new OmfNotFoundError(msg, details);
  // SDS (ADH/EDS) reports a conflicting redefinition as 400, not 409.
  if (status === 400 && REDEFINITION.test(text)) return new OmfConflictError(msg, details);
  if (status === 400 && NOT_DEFINED.test(text)) return new OmfNotFoundError(msg, details);
  return new OmfBadRequestError(msg, details);
}

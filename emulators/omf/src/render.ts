import { OmfFailure } from "./errors.js";
import type { Profile } from "./options.js";
import type { MessageResult } from "./process.js";

export type EventKey = "EventInfo" | "Event";

function piEvent(key: EventKey, severity: string, message: string, f?: OmfFailure) {
  return {
    [key]: {
      Message: message,
      Reason: f?.detail.reason ?? null,
      Suggestions: f?.detail.suggestions ?? (f?.detail.resolution ? [f.detail.resolution] : []),
      EventCode: f?.detail.eventCode ?? null,
      Severity: severity,
      Parameters: Object.entries(f?.detail.parameters ?? {}).map(([Name, Value]) => ({ Name, Value })),
    },
    ExceptionInfo: null,
    Severity: severity,
    InnerEvents: [],
  };
}

/** PI Web API per-message response shell: `{OperationId, Messages[{MessageIndex, Events, Status{Code, HighestSeverity}}]}`. */
export function piMessages(
  operationId: string,
  results: (Pick<MessageResult, "status" | "failure" | "warnings"> & { index: number | null })[],
  key: EventKey,
) {
  return {
    OperationId: operationId,
    Messages: results.map((r) => {
      const events = r.warnings.map((w) => piEvent(key, "Warning", w));
      if (r.failure) events.push(piEvent(key, r.failure.detail.severity ?? "Error", r.failure.message, r.failure));
      return {
        MessageIndex: r.index,
        Events: events,
        Status: {
          Code: r.status,
          HighestSeverity: r.failure ? (r.failure.detail.severity ?? "Error") : r.warnings.length ? "Warning" : "Info",
        },
      };
    }),
  };
}

/** Overall PI HTTP status: the worst failing message, else 202 if any message was accepted for (data) processing, 201 if anything was created, else 200. */
export function piOverallStatus(results: MessageResult[]): number {
  let worst = 0;
  let best = 200;
  for (const r of results) {
    if (r.failure) worst = Math.max(worst, r.status);
    else if (r.status === 202 || (r.status === 201 && best !== 202)) best = r.status;
  }
  return worst || best;
}

/** CDS/SDS `ErrorResponseBody`. */
export function sdsError(operationId: string, f: OmfFailure, messageIndex?: number | null) {
  const parameters: Record<string, string> = { ...(f.detail.parameters ?? {}) };
  if (messageIndex !== undefined && messageIndex !== null) parameters.MessageIndex = String(messageIndex);
  if (f.detail.eventCode !== undefined) parameters.EventCode = String(f.detail.eventCode);
  return {
    OperationId: operationId,
    Error: f.detail.error ?? f.message,
    Reason: f.detail.reason ?? f.message,
    Resolution: f.detail.resolution ?? "Correct the request and resend it.",
    Parameters: parameters,
  };
}

/** Body of a status injected by the fault switch, in the receiver's own error shape (PI `Errors`, else SDS). */
export function injectedFaultBody(profile: Profile | undefined, status: number, operationId: string) {
  const text = `${status === 429 ? "Too many requests" : "Service unavailable"} (injected fault ${status})`;
  if (profile === "pi") return { Errors: [text] };
  return sdsError(operationId, new OmfFailure(status, text, { resolution: "Retry later, honouring Retry-After if present." }));
}

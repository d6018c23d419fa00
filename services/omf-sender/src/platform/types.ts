// The parsed reply of an endpoint, in one shape for every backend; errors.ts carries it without importing the parser.

export type OmfSeverity = "critical" | "error" | "warning" | "info" | "debug";

/** One event/error of a response, whichever backend shape it came from. */
export interface OmfResultMessage {
  /** PI: index of the object in the request array; null ⇒ the whole request; undefined ⇒ not reported (cloud). */
  index?: number | null;
  /** PI: per-message status code (allows partial success). */
  status?: number;
  severity: OmfSeverity;
  message: string;
  reason?: string;
  resolution?: string;
  suggestions?: string[];
  eventCode?: number;
  parameters?: Record<string, string>;
  exception?: { type?: string; message?: string };
  innerEvents?: OmfResultMessage[];
}

export interface OmfResult {
  /** 2xx and no per-message status ≥ 400. */
  ok: boolean;
  status: number;
  /** 2xx overall but at least one message failed (PI per-message status, or 207). */
  partial: boolean;
  messages: OmfResultMessage[];
  /** PI `OperationId`, CDS `Operation-Id` / `OperationId`. */
  operationId?: string;
  /** operationId, else a request-id response header. */
  requestId?: string;
  /** Retry-After in ms, at most `MAX_RETRY_AFTER_MS` (`@meridian/retry`). */
  retryAfterMs?: number;
  /** A 409 to a create taken as success (SendOptions.conflictIsSuccess): the object exists already. */
  alreadyExists?: boolean;
  /** What Retry-After asked for, only when it was more than the cap. */
  retryAfterRequestedMs?: number;
}

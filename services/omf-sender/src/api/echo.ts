import { create } from "@bufbuild/protobuf";
import { type EndpointResult, EndpointResultSchema, OmfEventSchema } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { CredentialsError, EndpointPolicyError } from "../pipeline/endpoints.js";
import {
  OmfAuthError,
  OmfBadRequestError,
  type OmfClient,
  OmfConflictError,
  OmfError,
  OmfInvalidMessageError,
  OmfNotFoundError,
  OmfPayloadTooLargeError,
  type OmfResult,
  type OmfResultMessage,
  OmfServerError,
  OmfThrottledError,
  OmfTlsError,
} from "../platform/index.js";

/**
 * What CheckEndpoint, SendOmf and GetEndpointStatus hand back of an endpoint's answer. The endpoint is somewhere the
 * caller chose, so its reply is theirs to read only in part: a few hundred characters per endpoint in all (the error
 * first, then the events in order, the rest counted as omitted), credentials redacted (a reply that echoes the request's
 * Authorization header or the password gives back neither), stack-trace lines and control characters dropped. Errors
 * omf-sender did not expect are not echoed at all: "internal error", and the details go to the log.
 */

/** The characters of text one endpoint's result may carry, error and events together. */
export const MAX_ECHO_CHARS = 400;
/** Of which the error text at most. */
const MAX_ERROR_CHARS = 240;
const MAX_EVENTS = 20;
const MAX_PARAMETERS = 8;
const REDACTED = "[redacted]";

export type Redact = (text: string) => string;

/** The credentials of a client, as they may appear in a reply: the secret itself and PI's Basic token. */
function credentialsOf(client: OmfClient | undefined): string[] {
  if (!client) return [];
  const c = client.config;
  if (c.kind === "pi") {
    const pw = c.password.reveal();
    return [pw, Buffer.from(`${c.username}:${pw}`, "utf8").toString("base64")];
  }
  if (c.kind === "adh") return [c.clientSecret.reveal()];
  return [];
}

export function redactor(client?: OmfClient): Redact {
  // Short secrets would redact ordinary words too; the Basic token of a short password still goes (it is long).
  const secrets = credentialsOf(client).filter((s) => s.length >= 4);
  return (text) => {
    let t = text;
    for (const s of secrets) t = t.replaceAll(s, REDACTED);
    return (
      t
        .replace(/\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+/gi, `$1 ${REDACTED}`)
        // A stack trace's frames ("\n    at fn (/app/dist/x.js:1:2)") say where Meridian's code lives.
        .replace(/\r?\n\s*at\s[^\n]*/g, "")
        .replace(/[\u0000-\u001f\u007f]+/g, " ")
    );
  };
}

/** Hands out what is left of one result's characters. */
class Budget {
  omitted = 0;
  constructor(
    private left: number,
    private readonly redact: Redact,
  ) {}

  get exhausted(): boolean {
    return this.left <= 0;
  }

  take(text: string | undefined, max = Number.POSITIVE_INFINITY): string {
    if (!text) return "";
    const clean = this.redact(text);
    const room = Math.max(0, Math.min(max, this.left));
    if (room === 0) return "";
    const out = clean.length <= room ? clean : `${clean.slice(0, room - 1)}…`;
    this.left -= out.length;
    return out;
  }
}

/** One text, capped and redacted (a CheckEndpoint error, a status's last error). */
export function echoText(text: string, redact: Redact, max = MAX_ECHO_CHARS): string {
  return new Budget(max, redact).take(text, max);
}

/** The error class when a send failed, as EndpointResult.error_kind names it. */
export function errorKind(err: unknown): string {
  if (err instanceof OmfInvalidMessageError) return "invalid_message";
  if (err instanceof OmfNotFoundError) return "not_found";
  if (err instanceof OmfBadRequestError) return "bad_request";
  if (err instanceof OmfConflictError) return "conflict";
  if (err instanceof OmfPayloadTooLargeError) return "payload_too_large";
  if (err instanceof OmfThrottledError) return "throttled";
  if (err instanceof OmfServerError) return "unavailable";
  if (err instanceof OmfAuthError) return "unauthenticated";
  if (err instanceof OmfTlsError) return "tls";
  return "internal";
}

/**
 * The text of an error that may be echoed: the OMF client's own errors and the endpoint checks say what happened in
 * the caller's terms; anything else is omf-sender's business ("internal error"; the caller logs it).
 */
export function echoableMessage(err: unknown): string | undefined {
  if (err instanceof OmfError || err instanceof CredentialsError || err instanceof EndpointPolicyError) return err.message;
  return undefined;
}

function toEvent(m: OmfResultMessage, budget: Budget) {
  const parameters: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.parameters ?? {}).slice(0, MAX_PARAMETERS)) {
    if (budget.exhausted) break;
    parameters[budget.take(k, 64)] = budget.take(v, 120);
  }
  return create(OmfEventSchema, {
    index: m.index ?? -1,
    status: m.status ?? 0,
    severity: m.severity,
    message: budget.take(m.message, 240),
    reason: budget.take(m.reason, 160),
    resolution: budget.take(m.resolution, 160),
    eventCode: m.eventCode ?? 0,
    parameters,
  });
}

function events(messages: readonly OmfResultMessage[], budget: Budget) {
  const out = [];
  for (const m of messages) {
    if (budget.exhausted || out.length >= MAX_EVENTS) budget.omitted++;
    else out.push(toEvent(m, budget));
  }
  return out;
}

export function okResult(id: string, results: OmfResult[], redact: Redact): EndpointResult {
  const budget = new Budget(MAX_ECHO_CHARS, redact);
  const evs = events(
    results.flatMap((r) => r.messages),
    budget,
  );
  return create(EndpointResultSchema, {
    endpointId: id,
    ok: true,
    httpStatus: results.at(-1)?.status ?? 0,
    requests: results.length,
    events: evs,
    eventsOmitted: budget.omitted,
    alreadyExists: results.some((r) => r.alreadyExists === true),
  });
}

export function errorResult(id: string, err: unknown, redact: Redact): EndpointResult {
  const budget = new Budget(MAX_ECHO_CHARS, redact);
  const e = err as { status?: number; result?: OmfResult };
  const error = budget.take(echoableMessage(err) ?? "internal error (omf-sender's log has the details)", MAX_ERROR_CHARS);
  const evs = err instanceof OmfError ? events(e.result?.messages ?? [], budget) : [];
  return create(EndpointResultSchema, {
    endpointId: id,
    ok: false,
    httpStatus: e.status ?? 0,
    errorKind: errorKind(err),
    error,
    events: evs,
    eventsOmitted: budget.omitted,
  });
}

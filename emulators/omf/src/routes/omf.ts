/**
 * OMF ingress, the same for the three receivers: size limits, the OMF headers (codes 2001–2007), gzip, JSON, then
 * the messages through process.ts, answered in the receiver's own shape (PI per-message results, SDS first error).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { readBody, sendJson } from "@meridian/emulator-kit";
import type { EmulatorContext, Exchange, Operation } from "../context.js";
import { badRequest, OmfFailure } from "../errors.js";
import type { Profile } from "../options.js";
import { type Action, type MessageResult, type MessageType, type OmfRequest, processMessages } from "../process.js";
import { piMessages, piOverallStatus, sdsError } from "../render.js";
import { omfVersionsOf } from "../settings.js";
import type { Scope } from "../store.js";

const gunzipAsync = promisify(gunzip);

const OMF_HEADERS = ["messagetype", "messageformat", "omfversion", "action", "compression", "producertoken"] as const;
const HEADER_CODES = { messagetype: 2005, messageformat: 2006, omfversion: 2007, action: 2003, compression: 2004 } as const;

export async function omfIngress(ctx: EmulatorContext, x: Exchange, profile: Profile, scope: Scope): Promise<void> {
  const { req, res } = x;
  const c = ctx.counters;
  c.omfRequests++;
  c.byProfile[profile].omfRequests++;
  const opId = randomUUID();
  const limit = ctx.opts.maxBodyBytes[profile];
  const body = await readBody(req, limit);
  c.bytesReceived += body.size;
  const receivedAt = new Date().toISOString();
  let op: { messageType: string; action: string; messages: number } = { messageType: "", action: "", messages: 0 };
  const record = (httpStatus: number, status: Operation["status"], reason?: string) =>
    ctx.recordOperation({
      operationId: opId,
      scope: scope.name,
      ...op,
      httpStatus,
      status,
      reason,
      receivedAt,
      completedAt: status === "Pending" ? undefined : new Date().toISOString(),
    });
  const reject = (status: number, f: OmfFailure, headers: Record<string, string> = {}) => {
    c.rejectedRequests++;
    if (profile !== "pi") record(status, "Failed", f.message);
    if (profile === "pi")
      return sendJson(res, status, piMessages(opId, [{ index: null, status, failure: f, warnings: [] }], ctx.opts.piEventKey), headers);
    return sendJson(res, status, sdsError(opId, f), { "Operation-Id": opId, ...headers });
  };
  if (body.tooLarge) {
    c.rejectedRequests++;
    const msg = `Request content exceeds the maximum allowed length ${limit}`;
    if (profile === "pi") return sendJson(res, 413, { Errors: [msg] }, { Connection: "close" });
    return sendJson(res, 413, sdsError(opId, new OmfFailure(413, msg, { error: "Payload Too Large" })), {
      "Operation-Id": opId,
      Connection: "close",
    });
  }
  let headers: OmfRequest & { gzip: boolean };
  try {
    headers = omfHeaders(req, omfVersionsOf(ctx.settings, profile));
    op = { messageType: headers.messageType, action: headers.action, messages: 0 };
    if (profile === "eds" && headers.action === "update")
      throw badRequest("The action 'Update' is not supported for OMF messages", { eventCode: 2003, error: "Action not supported" });
    if (headers.action === "update" && headers.messageType === "data" && headers.version < "1.2")
      throw badRequest(`The 'update' action on data messages requires OMF 1.2 (request omfversion ${headers.version}).`, {
        eventCode: 2003,
      });
  } catch (err) {
    if (err instanceof OmfFailure) return reject(err.status, err);
    throw err;
  }
  let raw = body.buf;
  if (headers.gzip) {
    try {
      raw = await gunzipAsync(raw, { maxOutputLength: ctx.opts.maxInflatedBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
        return reject(413, new OmfFailure(413, `Inflated request content exceeds the maximum allowed length ${ctx.opts.maxInflatedBytes}`));
      }
      return reject(400, badRequest(`The message body could not be decompressed: ${(err as Error).message}`, { eventCode: 3001 }));
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    return reject(400, badRequest(`The message body could not be parsed as JSON: ${(err as Error).message}`, { eventCode: 3002 }));
  }
  if (!Array.isArray(parsed)) return reject(400, badRequest("The message body must be a JSON array of OMF messages.", { eventCode: 3002 }));
  x.noteMessages(parsed.length);
  op.messages = parsed.length;
  const messages = parsed;
  const apply = () =>
    processMessages(scope, headers, messages, {
      strict: ctx.settings.strict,
      createMode: ctx.settings.createMode[profile],
      piUpdate: ctx.settings.piUpdate,
      piPointNames: ctx.settings.piPointNames,
      sdsConflictStatus: ctx.settings.sdsConflictStatus,
      stopOnError: profile !== "pi",
      failFirst: x.failFirstMessage,
      ...(ctx.arrivals ? { onValues: (id: string, keys: string[]) => ctx.arrivals!.record(id, keys) } : {}),
    });
  if (x.failFirstMessage) c.faults.partial++;
  if (x.asyncFailure) {
    // Accepted now, failed later: nothing is stored and the client is not told (ADH has no status path in the notes).
    c.faults.asyncFailure++;
    c.acceptedRequests++;
    record(202, "Failed", "Injected asynchronous failure (emulator fault switch): the message was accepted but not stored.");
    return sendJson(res, 202, { "Operation-Id": opId }, { "Operation-Id": opId });
  }
  if (x.asyncDelayMs > 0) {
    c.faults.asyncDelay++;
    c.acceptedRequests++;
    const pending = record(202, "Pending");
    const generation = ctx.generation;
    setTimeout(() => {
      if (ctx.generation !== generation) return;
      const failed = tally(apply()).failed;
      pending.status = failed ? "Failed" : "Succeeded";
      pending.reason = failed?.failure?.message;
      pending.completedAt = new Date().toISOString();
    }, x.asyncDelayMs).unref();
    return sendJson(res, 202, { "Operation-Id": opId }, { "Operation-Id": opId });
  }
  const results = apply();
  const { failed } = tally(results);
  if (failed) c.rejectedRequests++;
  else c.acceptedRequests++;
  if (profile === "pi") return sendJson(res, piOverallStatus(results), piMessages(opId, results, ctx.opts.piEventKey));
  if (failed) {
    record(failed.status, "Failed", failed.failure!.message);
    return sendJson(res, failed.status, sdsError(opId, failed.failure!, failed.index), { "Operation-Id": opId });
  }
  record(202, "Succeeded");
  return sendJson(res, 202, { "Operation-Id": opId }, { "Operation-Id": opId });

  /** Counts the messages and values of processed results; the first failure, if any. */
  function tally(rs: MessageResult[]): { failed?: MessageResult } {
    let first: MessageResult | undefined;
    let values = 0;
    for (const r of rs) {
      values += r.values;
      if (r.failure) {
        first ??= r;
        c.rejectedMessages++;
        c.byProfile[profile].rejectedMessages++;
      } else {
        c.acceptedMessages++;
        c.byProfile[profile].acceptedMessages++;
      }
    }
    c.valuesWritten += values;
    c.byProfile[profile].valuesWritten += values;
    return { failed: first };
  }
}

/** Validates the OMF headers. Names and values are case-insensitive; a repeated or comma-joined header is 2002. */
function omfHeaders(req: IncomingMessage, versions: readonly string[]): OmfRequest & { gzip: boolean } {
  const seen = new Map<string, string[]>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if ((OMF_HEADERS as readonly string[]).includes(name)) {
      const list = seen.get(name) ?? [];
      list.push(req.rawHeaders[i + 1]!.trim());
      seen.set(name, list);
    }
  }
  for (const [name, values] of seen) {
    if (values.length > 1 || (name !== "producertoken" && values[0]!.includes(",")))
      throw badRequest(`The OMF header '${name}' was specified more than once.`, { eventCode: 2002, parameters: { Header: name } });
  }
  for (const name of ["messagetype", "messageformat", "omfversion"] as const)
    if (!seen.has(name) || seen.get(name)![0] === "")
      throw badRequest(`The required OMF header '${name}' is missing.`, { eventCode: 2001, parameters: { Header: name } });
  const get = (n: string) => seen.get(n)?.[0]?.toLowerCase();
  const invalid = (n: keyof typeof HEADER_CODES, allowed: string) =>
    badRequest(`The value '${seen.get(n)![0]}' of the OMF header '${n}' is not valid; expected ${allowed}.`, {
      eventCode: HEADER_CODES[n],
      parameters: { Header: n, Value: seen.get(n)![0]! },
    });
  const messageType = get("messagetype")!;
  if (!["type", "container", "data"].includes(messageType)) throw invalid("messagetype", "type, container or data");
  if (get("messageformat") !== "json") throw invalid("messageformat", "json");
  const version = get("omfversion")!;
  if (!versions.includes(version)) throw invalid("omfversion", versions.join(", "));
  const action = get("action") ?? "create";
  if (!["create", "update", "delete"].includes(action)) throw invalid("action", "create, update or delete");
  const compression = get("compression");
  if (compression !== undefined && compression !== "gzip") throw invalid("compression", "gzip");
  return { messageType: messageType as MessageType, action: action as Action, version, gzip: compression === "gzip" };
}

/** What the two monitor APIs (`/ws/Monitor` XML and `/ws/v1/monitors` JSON) share: their context and answers. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { BodyTooLargeError, readBody, send } from "@meridian/emulator-kit";
import type { Logger } from "pino";
import { xmlEscape } from "../events.js";
import { type Monitor, type MonitorStore, ValidationError } from "../monitors.js";
import type { PushEngine } from "../push/engine.js";
import type { User } from "../users.js";

export interface RestContext {
  store: MonitorStore;
  engine: PushEngine;
  log: Logger;
  /** PushOptions.v1AckOption: whether the v1 API knows `ack_option`. */
  v1AckOption: "stored" | "unknown";
}

const BODY_LIMIT = 1 << 20;

export const XML_PROLOG = '<?xml version="1.0" encoding="ISO-8859-1"?>';

export async function readText(req: IncomingMessage): Promise<string> {
  const body = await readBody(req, BODY_LIMIT);
  if (body.tooLarge) throw new BodyTooLargeError(BODY_LIMIT);
  return body.buf.toString("utf8");
}

/** The body as JSON; ValidationError (field `body`) when it is not. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req);
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError("body", "must be JSON");
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(body), "application/json", headers);
}

export function sendXml(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  send(res, status, body, "text/xml", headers);
}

export function sendXmlError(res: ServerResponse, status: number, message: string): void {
  sendXml(res, status, `${XML_PROLOG}\n<result>\n  <error>${xmlEscape(message)}</error>\n</result>\n`);
}

export function intParam(v: string | null, field: string, fallback: number): number {
  if (v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(field, `must be a non-negative integer, got '${v}'`);
  return n;
}

/** The monitor if it exists and belongs to the user's customer; another customer's monitor is "not found". */
export function owned(store: MonitorStore, user: User, id: number): Monitor | undefined {
  const m = store.get(id);
  return m && m.cstId === user.cstId ? m : undefined;
}

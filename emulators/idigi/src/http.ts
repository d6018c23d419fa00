/**
 * The HTTP side: the legacy `/ws/Monitor` XML API (§1), the v1 `/ws/v1/monitors` JSON API (§4), and
 * the emulator's own admin API under `/_emulator/`. Basic auth on every `/ws/` call.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { XMLParser } from "fast-xml-parser";
import type { Logger } from "pino";
import { xmlEscape } from "./events.js";
import { FaultError, type FaultSet, parseFault } from "./faults.js";
import {
  inputFromV1,
  inputFromXmlFields,
  type Monitor,
  type MonitorStore,
  matchesCondition,
  parseCondition,
  toV1,
  toXmlItem,
  V1_NAMES,
  ValidationError,
  XML_NAMES,
} from "./monitors.js";
import { type EmitRequest, type PushEngine, UnknownMonitorError, type User } from "./push.js";

export interface HttpContext {
  store: MonitorStore;
  engine: PushEngine;
  faults: FaultSet;
  users: User[];
  caPem: () => string | undefined;
  log: Logger;
  /** Called by POST /_emulator/reset after the engine and store are cleared. */
  onReset?: () => void;
  /** Extra info for GET /_emulator/state. */
  info: () => Record<string, unknown>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const xmlParser = new XMLParser({ parseTagValue: false, trimValues: true, ignoreAttributes: true, processEntities: true });

async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new HttpError(413, "body too large");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(body), "application/json", headers);
}

const XML_PROLOG = '<?xml version="1.0" encoding="ISO-8859-1"?>';

function sendXmlError(res: ServerResponse, status: number, message: string): void {
  send(res, status, `${XML_PROLOG}\n<result>\n  <error>${xmlEscape(message)}</error>\n</result>\n`, "text/xml");
}

function authenticate(req: IncomingMessage, users: User[]): User | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i < 0) return undefined;
  const username = decoded.slice(0, i);
  const password = decoded.slice(i + 1);
  return users.find((u) => u.username === username && u.password === password);
}

function parseMonitorXml(body: string): Record<string, string | undefined> {
  let doc: Record<string, unknown>;
  try {
    doc = xmlParser.parse(body) as Record<string, unknown>;
  } catch (err) {
    throw new ValidationError("Monitor", `not well-formed XML: ${(err as Error).message}`);
  }
  const root = doc.Monitor;
  if (root === undefined) throw new ValidationError("Monitor", "the root element must be <Monitor>");
  if (root === "" || root === null) return {};
  if (typeof root !== "object") throw new ValidationError("Monitor", "must hold one child element per field");
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
    if (Array.isArray(v)) throw new ValidationError(k, "appears more than once");
    if (v !== null && typeof v === "object") throw new ValidationError(k, "must hold text only");
    out[k] = v === null || v === undefined ? "" : String(v);
  }
  return out;
}

function listEnvelope(items: Record<string, string>[], start: number, size: number, total: number) {
  return {
    resultTotalRows: String(total),
    requestedStartRow: String(start),
    resultSize: String(items.length),
    requestedSize: String(size),
    remainingSize: String(Math.max(0, total - start - items.length)),
    items,
  };
}

function listXml(env: ReturnType<typeof listEnvelope>): string {
  const attrs = `resultTotalRows="${env.resultTotalRows}" requestedStartRow="${env.requestedStartRow}" resultSize="${env.resultSize}" requestedSize="${env.requestedSize}" remainingSize="${env.remainingSize}"`;
  const items = env.items
    .map(
      (it) =>
        `  <Monitor>\n${Object.entries(it)
          .map(([k, v]) => `    <${k}>${xmlEscape(v)}</${k}>`)
          .join("\n")}\n  </Monitor>\n`,
    )
    .join("");
  return `${XML_PROLOG}\n<result ${attrs}>\n${items}</result>\n`;
}

function wantsJson(req: IncomingMessage, suffix: string | undefined): boolean {
  if (suffix === ".json") return true;
  if (suffix === ".xml") return false;
  return /json/i.test(req.headers.accept ?? "");
}

function intParam(v: string | null, field: string, fallback: number): number {
  if (v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(field, `must be a non-negative integer, got '${v}'`);
  return n;
}

export function createHandler(ctx: HttpContext) {
  const { store, engine, faults, log } = ctx;

  const owned = (user: User, id: number): Monitor | undefined => {
    const m = store.get(id);
    return m && m.cstId === user.cstId ? m : undefined;
  };

  async function legacy(req: IncomingMessage, res: ServerResponse, url: URL, user: User): Promise<void> {
    // /ws/Monitor, /ws/Monitor/.json, /ws/Monitor.json, /ws/Monitor/{id}, /ws/Monitor/{id}.json
    const m = /^\/ws\/Monitor(?:\/?(\.json|\.xml))?(?:\/(\d+)(\.json|\.xml)?)?\/?$/.exec(url.pathname);
    if (!m) return sendXmlError(res, 404, `no such resource ${url.pathname}`);
    const suffix = m[1] ?? m[3];
    const id = m[2] !== undefined ? Number(m[2]) : undefined;
    const method = req.method ?? "GET";
    if (id === undefined) {
      if (method === "POST") {
        const input = inputFromXmlFields(parseMonitorXml(await readBody(req)));
        const mon = store.create(user.username, user.cstId, input, XML_NAMES);
        engine.monitorCreated(mon);
        log.info({ monitorId: mon.id, topics: mon.topics, user: user.username }, "monitor created (ws/Monitor)");
        const loc = `Monitor/${mon.id}`;
        return send(res, 201, `${XML_PROLOG}\n<result>\n  <location>${loc}</location>\n</result>\n`, "text/xml", { Location: loc });
      }
      if (method === "GET") {
        const cond = url.searchParams.get("condition");
        const terms = cond ? parseCondition(cond) : [];
        const start = intParam(url.searchParams.get("start"), "start", 0);
        const size = intParam(url.searchParams.get("size"), "size", 1000);
        const all = store
          .all()
          .filter((x) => x.cstId === user.cstId)
          .map(toXmlItem)
          .filter((it) => matchesCondition(it, terms));
        const env = listEnvelope(all.slice(start, start + size), start, size, all.length);
        return wantsJson(req, suffix) ? sendJson(res, 200, env) : send(res, 200, listXml(env), "text/xml");
      }
      return sendXmlError(res, 405, `${method} not allowed on /ws/Monitor`);
    }
    const mon = owned(user, id);
    if (!mon)
      return wantsJson(req, suffix)
        ? sendJson(res, 404, { error: `monitor ${id} not found` })
        : sendXmlError(res, 404, `monitor ${id} not found`);
    if (method === "GET") {
      const env = listEnvelope([toXmlItem(mon)], 0, 1000, 1);
      return wantsJson(req, suffix) ? sendJson(res, 200, env) : send(res, 200, listXml(env), "text/xml");
    }
    if (method === "PUT") {
      const input = inputFromXmlFields(parseMonitorXml(await readBody(req)));
      const updated = store.update(id, input, XML_NAMES)!;
      engine.monitorReset(updated);
      log.info({ monitorId: id }, "monitor updated (state reset)");
      const loc = `Monitor/${id}`;
      return send(res, 200, `${XML_PROLOG}\n<result>\n  <location>${loc}</location>\n</result>\n`, "text/xml", { Location: loc });
    }
    if (method === "DELETE") {
      engine.monitorDeleted(id);
      store.delete(id);
      log.info({ monitorId: id }, "monitor deleted (ws/Monitor)");
      return send(res, 200, `${XML_PROLOG}\n<result>\n  <message>Monitor/${id} deleted</message>\n</result>\n`, "text/xml");
    }
    return sendXmlError(res, 405, `${method} not allowed on /ws/Monitor/${id}`);
  }

  async function v1(req: IncomingMessage, res: ServerResponse, url: URL, user: User): Promise<void> {
    const m = /^\/ws\/v1\/monitors\/inventory(?:\/(\d+))?(\/reset)?\/?$/.exec(url.pathname);
    if (!m) return sendJson(res, 404, { error_status: 404, error_message: `no such resource ${url.pathname}` });
    const id = m[1] !== undefined ? Number(m[1]) : undefined;
    const method = req.method ?? "GET";
    if (id === undefined) {
      if (m[2]) return sendJson(res, 404, { error_status: 404, error_message: "reset needs a monitor id" });
      if (method === "POST") {
        let body: unknown;
        try {
          body = JSON.parse(await readBody(req));
        } catch {
          throw new ValidationError("body", "must be JSON");
        }
        if (!body || typeof body !== "object" || Array.isArray(body)) throw new ValidationError("body", "must be a JSON object");
        const mon = store.create(user.username, user.cstId, inputFromV1(body as Record<string, unknown>), V1_NAMES);
        engine.monitorCreated(mon);
        log.info({ monitorId: mon.id, topics: mon.topics, user: user.username }, "monitor created (v1)");
        return sendJson(res, 201, toV1(mon), { Location: `/ws/v1/monitors/inventory/${mon.id}` });
      }
      if (method === "GET") {
        const size = intParam(url.searchParams.get("size"), "size", 1000);
        const cursor = intParam(url.searchParams.get("cursor"), "cursor", 0);
        const all = store.all().filter((x) => x.cstId === user.cstId);
        const page = all.slice(cursor, cursor + size);
        const out: Record<string, unknown> = { count: page.length, size, list: page.map(toV1) };
        if (cursor + size < all.length) {
          out.cursor = String(cursor + size);
          out.next_uri = `/ws/v1/monitors/inventory?size=${size}&cursor=${cursor + size}`;
        }
        return sendJson(res, 200, out);
      }
      return sendJson(res, 405, { error_status: 405, error_message: `${method} not allowed` });
    }
    const mon = owned(user, id);
    if (!mon) return sendJson(res, 404, { error_status: 404, error_message: `monitor ${id} not found` });
    if (m[2]) {
      if (method !== "POST") return sendJson(res, 405, { error_status: 405, error_message: "reset takes POST" });
      engine.monitorReset(mon);
      log.info({ monitorId: id }, "monitor reset (v1)");
      return sendJson(res, 200, toV1(mon));
    }
    if (method === "GET") return sendJson(res, 200, toV1(mon));
    if (method === "PUT") {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        throw new ValidationError("body", "must be JSON");
      }
      const updated = store.update(id, inputFromV1(body as Record<string, unknown>), V1_NAMES)!;
      engine.monitorReset(updated);
      return sendJson(res, 200, toV1(updated));
    }
    if (method === "DELETE") {
      engine.monitorDeleted(id);
      store.delete(id);
      log.info({ monitorId: id }, "monitor deleted (v1)");
      res.writeHead(204);
      res.end();
      return;
    }
    return sendJson(res, 405, { error_status: 405, error_message: `${method} not allowed` });
  }

  async function admin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const p = url.pathname.replace(/\/$/, "");
    const method = req.method ?? "GET";
    const jsonBody = async (): Promise<Record<string, unknown>> => {
      const text = await readBody(req);
      if (!text.trim()) return {};
      try {
        const b = JSON.parse(text);
        if (!b || typeof b !== "object" || Array.isArray(b)) throw new Error("not an object");
        return b as Record<string, unknown>;
      } catch {
        throw new ValidationError("body", "must be a JSON object");
      }
    };
    if (p === "/_emulator/ca.pem" && method === "GET") {
      const pem = ctx.caPem();
      if (!pem) return sendJson(res, 404, { error: "TLS is off" });
      return send(res, 200, pem, "application/x-pem-file");
    }
    if (p === "/_emulator/state" && method === "GET") {
      return sendJson(res, 200, { ...ctx.info(), ...engine.state(), faults: faults.list() });
    }
    if (p === "/_emulator/emit" && method === "POST") {
      const b = await jsonBody();
      const count = b.count ?? 1;
      // Events are materialised at once (about 150 bytes each until sent): cap one call at 2 million.
      if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > 2_000_000)
        throw new ValidationError("count", "must be an integer in 0..2000000");
      const er: EmitRequest = { count };
      if (b.monitorId !== undefined) {
        if (typeof b.monitorId !== "number" && typeof b.monitorId !== "string") throw new ValidationError("monitorId", "must be a number");
        er.monitorId = Number(b.monitorId);
      }
      for (const k of ["topic", "device", "operation"] as const) {
        if (b[k] !== undefined) {
          if (typeof b[k] !== "string") throw new ValidationError(k, "must be a string");
          er[k] = b[k] as string;
        }
      }
      if (b.record !== undefined) {
        if (!b.record || typeof b.record !== "object") throw new ValidationError("record", "must be an object");
        er.record = b.record as Record<string, unknown>;
      }
      return sendJson(res, 200, engine.emit(er));
    }
    if (p === "/_emulator/faults") {
      if (method === "POST") {
        const spec = parseFault(await jsonBody());
        if (spec.type === "stall") {
          const monitors = engine.stall(spec.ms, spec.monitorId);
          return sendJson(res, 200, { fault: spec, applied: monitors });
        }
        return sendJson(res, 200, faults.add(spec));
      }
      if (method === "DELETE") {
        faults.clear();
        engine.clearStalls();
        return sendJson(res, 200, { cleared: true });
      }
      if (method === "GET") return sendJson(res, 200, faults.list());
    }
    const dis = /^\/_emulator\/monitors\/(\d+)\/disable$/.exec(p);
    if (dis && method === "POST") {
      const id = Number(dis[1]);
      if (!engine.disable(id)) return sendJson(res, 404, { error: `monitor ${id} not found` });
      return sendJson(res, 200, { id, status: "DISABLED" });
    }
    if (p === "/_emulator/reset" && method === "POST") {
      engine.reset();
      faults.clear();
      store.clear();
      ctx.onReset?.();
      return sendJson(res, 200, { reset: true });
    }
    return sendJson(res, 404, { error: `no such admin route ${method} ${p}` });
  }

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    const isV1 = url.pathname.startsWith("/ws/v1/");
    try {
      if (url.pathname.startsWith("/_emulator/")) return await admin(req, res, url);
      if (url.pathname.startsWith("/ws/")) {
        const user = authenticate(req, ctx.users);
        if (!user) {
          const headers = { "WWW-Authenticate": 'Basic realm="iDigi"' };
          if (isV1) return sendJson(res, 401, { error_status: 401, error_message: "Unauthorized" }, headers);
          return send(res, 401, `${XML_PROLOG}\n<result>\n  <error>Unauthorized</error>\n</result>\n`, "text/xml", headers);
        }
        if (isV1) return await v1(req, res, url, user);
        if (/^\/ws\/Monitor(\/|\.|$)/.test(url.pathname)) return await legacy(req, res, url, user);
      }
      return sendJson(res, 404, { error: `no such resource ${url.pathname}` });
    } catch (err) {
      if (err instanceof ValidationError || err instanceof FaultError) {
        if (isV1 || url.pathname.startsWith("/_emulator/"))
          return sendJson(res, 400, { error_status: 400, error_message: err.message, field: err.field });
        return sendXmlError(res, 400, err.message);
      }
      if (err instanceof UnknownMonitorError) return sendJson(res, 404, { error: err.message });
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
      log.error({ err }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    }
  };
}

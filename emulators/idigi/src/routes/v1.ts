/** The v1 `/ws/v1/monitors/inventory` API (protocol notes §4): JSON in and out, the same store as `/ws/Monitor`. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { inputFromV1, type Monitor, type MonitorInput, toV1 as toV1Shape, V1_NAMES, ValidationError } from "../monitors.js";
import type { User } from "../users.js";
import { intParam, owned, type RestContext, readJson, sendJson } from "./rest.js";

export async function v1Monitors(ctx: RestContext, req: IncomingMessage, res: ServerResponse, url: URL, user: User): Promise<void> {
  const { store, engine, log } = ctx;
  // ack_option is no field of the notes' v1 list ([I]): with `unknown` it is ignored on input and never listed.
  const known = ctx.v1AckOption === "stored";
  const toV1 = (m: Monitor): Record<string, unknown> => {
    const o = toV1Shape(m);
    if (!known) delete o.ack_option;
    return o;
  };
  const inputFrom = (body: Record<string, unknown>): MonitorInput => {
    const input = inputFromV1(body);
    if (!known) delete input.ackOption;
    return input;
  };
  const m = /^\/ws\/v1\/monitors\/inventory(?:\/(\d+))?(\/reset)?\/?$/.exec(url.pathname);
  if (!m) return sendJson(res, 404, { error_status: 404, error_message: `no such resource ${url.pathname}` });
  const id = m[1] !== undefined ? Number(m[1]) : undefined;
  const method = req.method ?? "GET";
  if (id === undefined) {
    if (m[2]) return sendJson(res, 404, { error_status: 404, error_message: "reset needs a monitor id" });
    if (method === "POST") {
      const body = await readJson(req);
      if (!body || typeof body !== "object" || Array.isArray(body)) throw new ValidationError("body", "must be a JSON object");
      const mon = store.create(user.username, user.cstId, inputFrom(body as Record<string, unknown>), V1_NAMES);
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
  const mon = owned(store, user, id);
  if (!mon) return sendJson(res, 404, { error_status: 404, error_message: `monitor ${id} not found` });
  if (m[2]) {
    if (method !== "POST") return sendJson(res, 405, { error_status: 405, error_message: "reset takes POST" });
    engine.monitorReset(mon);
    log.info({ monitorId: id }, "monitor reset (v1)");
    return sendJson(res, 200, toV1(mon));
  }
  if (method === "GET") return sendJson(res, 200, toV1(mon));
  if (method === "PUT") {
    const body = await readJson(req);
    const updated = store.update(id, inputFrom(body as Record<string, unknown>), V1_NAMES)!;
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

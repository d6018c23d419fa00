/** The legacy `/ws/Monitor` API (protocol notes §1): XML in, XML or the all-strings JSON envelope out. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { XMLParser } from "fast-xml-parser";
import { xmlEscape } from "../events.js";
import { inputFromXmlFields, matchesCondition, parseCondition, toXmlItem, ValidationError, XML_NAMES } from "../monitors.js";
import type { User } from "../users.js";
import { intParam, owned, type RestContext, readText, sendJson, sendXml, sendXmlError, XML_PROLOG } from "./rest.js";

const xmlParser = new XMLParser({ parseTagValue: false, trimValues: true, ignoreAttributes: true, processEntities: true });

export async function legacyMonitors(ctx: RestContext, req: IncomingMessage, res: ServerResponse, url: URL, user: User): Promise<void> {
  const { store, engine, log } = ctx;
  // /ws/Monitor, /ws/Monitor/.json, /ws/Monitor.json, /ws/Monitor/{id}, /ws/Monitor/{id}.json
  const m = /^\/ws\/Monitor(?:\/?(\.json|\.xml))?(?:\/(\d+)(\.json|\.xml)?)?\/?$/.exec(url.pathname);
  if (!m) return sendXmlError(res, 404, `no such resource ${url.pathname}`);
  const suffix = m[1] ?? m[3];
  const id = m[2] !== undefined ? Number(m[2]) : undefined;
  const method = req.method ?? "GET";
  if (id === undefined) {
    if (method === "POST") {
      const input = inputFromXmlFields(parseMonitorXml(await readText(req)));
      const mon = store.create(user.username, user.cstId, input, XML_NAMES);
      engine.monitorCreated(mon);
      log.info({ monitorId: mon.id, topics: mon.topics, user: user.username }, "monitor created (ws/Monitor)");
      const loc = `Monitor/${mon.id}`;
      return sendXml(res, 201, `${XML_PROLOG}\n<result>\n  <location>${loc}</location>\n</result>\n`, { Location: loc });
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
      return wantsJson(req, suffix) ? sendJson(res, 200, env) : sendXml(res, 200, listXml(env));
    }
    return sendXmlError(res, 405, `${method} not allowed on /ws/Monitor`);
  }
  const mon = owned(store, user, id);
  if (!mon)
    return wantsJson(req, suffix)
      ? sendJson(res, 404, { error: `monitor ${id} not found` })
      : sendXmlError(res, 404, `monitor ${id} not found`);
  if (method === "GET") {
    const env = listEnvelope([toXmlItem(mon)], 0, 1000, 1);
    return wantsJson(req, suffix) ? sendJson(res, 200, env) : sendXml(res, 200, listXml(env));
  }
  if (method === "PUT") {
    const input = inputFromXmlFields(parseMonitorXml(await readText(req)));
    const updated = store.update(id, input, XML_NAMES)!;
    engine.monitorReset(updated);
    log.info({ monitorId: id }, "monitor updated (state reset)");
    const loc = `Monitor/${id}`;
    return sendXml(res, 200, `${XML_PROLOG}\n<result>\n  <location>${loc}</location>\n</result>\n`, { Location: loc });
  }
  if (method === "DELETE") {
    engine.monitorDeleted(id);
    store.delete(id);
    log.info({ monitorId: id }, "monitor deleted (ws/Monitor)");
    return sendXml(res, 200, `${XML_PROLOG}\n<result>\n  <message>Monitor/${id} deleted</message>\n</result>\n`);
  }
  return sendXmlError(res, 405, `${method} not allowed on /ws/Monitor/${id}`);
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

/** `.json` / `.xml` on the path decide; otherwise the Accept header. */
function wantsJson(req: IncomingMessage, suffix: string | undefined): boolean {
  if (suffix === ".json") return true;
  if (suffix === ".xml") return false;
  return /json/i.test(req.headers.accept ?? "");
}

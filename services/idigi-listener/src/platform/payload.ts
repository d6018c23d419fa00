import { XMLParser } from "fast-xml-parser";
import { IdigiPayloadError } from "./errors.js";
import type { PayloadFormat } from "./frames.js";

/**
 * One event of a push block, normalised across the JSON and XML formats (shared/protocols/idigi.md §1.8).
 *
 * Quirks handled:
 * - `Document.Msg` is an object for one event and an array for several (JSON); any number of `<Msg>` in XML.
 * - topic/operation/timestamp/replay/group are properties in JSON but attributes in XML.
 * - `operation` is upper case in JSON and lower case in the XML docs: normalised to upper case.
 * - `replay` is the string `"true"` on the wire (boolean tolerated): normalised to a boolean, absent when not replayed.
 * - The record sits under exactly one key named after the resource type (`DeviceCore`, `DataPoint`, …): that key
 *   becomes `resource` and its value `data`. When there is no such single key, `resource` falls back to the
 *   topic's second segment and `data` holds the remaining fields.
 * - An empty or null `Document` (the HTTP keepalive seen in Digi's Azure sample) yields no events.
 * - XML leaf values are strings (XML has no types); JSON keeps its numbers and booleans.
 */
export interface PushEvent {
  /** `<cstId>/<Resource>/<key…>`, as sent (segments may be URL-encoded; see `splitTopic`). */
  topic: string;
  /** Upper case: `CREATE`, `UPDATE`, `DELETE`, `INSERTION`, … */
  operation: string;
  /** ISO-8601 as sent (server time, `…Z`). */
  timestamp: string;
  /** Resource type: the record's key, or the topic's second segment. */
  resource: string;
  group?: string;
  /** True when the server replays a missed event (auto-replay / persistent monitors). */
  replay?: boolean;
  data: Record<string, unknown>;
}

const ENVELOPE_KEYS = new Set(["topic", "operation", "timestamp", "group", "replay"]);

/** Parses a (decompressed) payload by the frame's format byte into events. Throws `IdigiPayloadError`. */
export function parsePayload(payload: Buffer | string, format: PayloadFormat): PushEvent[] {
  let text = typeof payload === "string" ? payload : payload.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return format === "json" ? parseJsonPayload(text) : parseXmlPayload(text);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseJsonPayload(text: string): PushEvent[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new IdigiPayloadError("bad_json", "payload is not valid JSON", { cause: err });
  }
  if (!isRecord(doc) || !("Document" in doc)) throw new IdigiPayloadError("bad_envelope", "JSON payload has no Document");
  return messagesFromDocument(doc["Document"], false);
}

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "",
  attributesGroupName: "$attrs",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  isArray: (_name, jpath) => jpath === "Document.Msg" || jpath === "Msg",
});

function parseXmlPayload(text: string): PushEvent[] {
  let doc: Record<string, unknown>;
  try {
    doc = xmlParser.parse(text, true) as Record<string, unknown>;
  } catch (err) {
    throw new IdigiPayloadError("bad_xml", "payload is not well-formed XML", { cause: err });
  }
  // A TCP block wraps its Msgs in <Document>; the event-payload doc page shows a bare <Msg>. Accept both.
  if ("Document" in doc) return messagesFromDocument(doc["Document"], true);
  if ("Msg" in doc) return messagesFromDocument({ Msg: doc["Msg"] }, true);
  throw new IdigiPayloadError("bad_envelope", "XML payload has neither <Document> nor <Msg>");
}

function messagesFromDocument(document: unknown, xml: boolean): PushEvent[] {
  if (document === null || document === undefined || document === "") return [];
  if (!isRecord(document)) throw new IdigiPayloadError("bad_envelope", "Document is not an object");
  const msg = document["Msg"];
  if (msg === undefined || msg === null) return [];
  const list = Array.isArray(msg) ? msg : [msg];
  return list.map((m, i) => toEvent(m, i, xml));
}

function toEvent(raw: unknown, index: number, xml: boolean): PushEvent {
  if (!isRecord(raw)) throw new IdigiPayloadError("bad_envelope", `Document.Msg[${index}] is not an object`);
  let fields: Record<string, unknown> = raw;
  if (xml) {
    const { $attrs, ...children } = raw;
    fields = { ...(isRecord($attrs) ? $attrs : {}), ...children };
  }
  const str = (key: string): string | undefined => {
    const v = fields[key];
    if (v === undefined || v === null) return undefined;
    return typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
  };
  const topic = str("topic");
  const operation = str("operation");
  const timestamp = str("timestamp");
  if (!topic) throw new IdigiPayloadError("bad_envelope", `Document.Msg[${index}].topic is missing`);
  if (!operation) throw new IdigiPayloadError("bad_envelope", `Document.Msg[${index}].operation is missing`);
  if (!timestamp) throw new IdigiPayloadError("bad_envelope", `Document.Msg[${index}].timestamp is missing`);

  const rest = Object.entries(fields).filter(([k]) => !ENVELOPE_KEYS.has(k));
  let resource: string;
  let data: Record<string, unknown>;
  const only = rest.length === 1 ? rest[0]! : undefined;
  if (only && isRecord(only[1])) {
    resource = only[0];
    data = only[1];
  } else if (only && xml && only[1] === "") {
    // <DeviceCore/> (an empty element) parses to "".
    resource = only[0];
    data = {};
  } else {
    resource = splitTopic(topic).resource;
    data = Object.fromEntries(rest);
  }

  const event: PushEvent = { topic, operation: operation.toUpperCase(), timestamp, resource, data };
  const group = str("group");
  if (group !== undefined) event.group = group;
  const replay = fields["replay"];
  if (replay === true || (typeof replay === "string" && replay.toLowerCase() === "true")) event.replay = true;
  return event;
}

export interface TopicParts {
  customerId: string;
  /** `topic.split('/')[1]`, the "simplifiedTopic" Digi's consumers use. */
  resource: string;
  /** The remaining segments, URL-decoded (e.g. `aggregate-throttle%2F<devId>` → `aggregate-throttle/<devId>`). */
  key: string[];
}

/** Splits an event topic `<cstId>/<Resource>/<key…>`; segments are URL-decoded when they decode cleanly. */
export function splitTopic(topic: string): TopicParts {
  const [customerId = "", resource = "", ...key] = topic.split("/");
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return { customerId, resource, key: key.map(decode) };
}

/** Where each `<Msg>` element of an XML block starts and ends, in document order; undefined when unsure. */
function xmlMsgSpans(text: string): Array<[number, number]> | undefined {
  const spans: Array<[number, number]> = [];
  const tag = /<(\/?)Msg(?=[\s>/])[^>]*?(\/?)>/g;
  let depth = 0;
  let start = 0;
  for (let m = tag.exec(text); m; m = tag.exec(text)) {
    const closing = m[1] === "/";
    const selfClosing = m[2] === "/";
    if (!closing && depth === 0) start = m.index;
    if (closing) depth--;
    else if (!selfClosing) depth++;
    if (depth < 0) return undefined;
    if (depth === 0) spans.push([start, m.index + m[0].length]);
  }
  return depth === 0 ? spans : undefined;
}

/**
 * Each Msg of a (decoded, inflated) block as a document of its own, as the seed's callback receives a block of one
 * Msg: a block holding one Msg is returned as it came, byte for byte (the seed's default batch size is 1). From a block
 * of several, an XML Msg is its own text inside `<Document>` (after the block's `<?xml …?>` prolog, if any) and a JSON
 * Msg is `{"Document":{"Msg":…}}` re-serialised: same keys, order and values, though numbers and escapes may be
 * spelled otherwise. Undefined when the block cannot be split (it then parses to no events either).
 */
export function msgDocuments(payload: Buffer | string, format: PayloadFormat, count: number): string[] | undefined {
  let text = typeof payload === "string" ? payload : payload.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (count === 1) return [text];
  if (format === "json") {
    try {
      const msg = (JSON.parse(text) as { Document?: { Msg?: unknown } }).Document?.Msg;
      const list = Array.isArray(msg) ? msg : msg === undefined || msg === null ? [] : [msg];
      return list.length === count ? list.map((m) => `{"Document":{"Msg":${JSON.stringify(m)}}}`) : undefined;
    } catch {
      return undefined;
    }
  }
  const spans = xmlMsgSpans(text);
  if (!spans || spans.length !== count) return undefined;
  const prolog = /^\s*<\?xml[^?]*\?>/.exec(text)?.[0].trim() ?? "";
  return spans.map(([a, b]) => `${prolog}<Document>${text.slice(a, b)}</Document>`);
}

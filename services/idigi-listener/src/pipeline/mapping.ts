import crypto from "node:crypto";
import { protoInt64 } from "@bufbuild/protobuf";
import { type Timestamp, timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, type Point, type RawPayload, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type PayloadFormat, type PushEvent, splitTopic } from "../platform/index.js";

/**
 * Pushed iDigi events → `meridian.telemetry.v1.TelemetryEvent`s.
 *
 * - DataPoint / DataStream records become typed points: one event per data point (a Msg holding a list of
 *   records gives one event per record), device = the stream id's first segment (`<deviceId>/<stream…>`), point
 *   name = the rest (`value` for a stream id without '/'), unit from `streamUnits` / `units`, observed time from
 *   the data point's own timestamp (epoch ms or ISO), falling back to the Msg timestamp.
 * - Every other resource (DeviceCore, FileData, Alarm, devices, …) becomes one event without points whose
 *   attributes are the record flattened to dot paths; device = `devConnectwareId` when the record has one,
 *   else the topic key.
 * - Envelope facts are attributes under `idigi.` (topic, operation, resource, group). The replay flag is not:
 *   a replayed event must be the same event as the original.
 */

/** Where a value's type comes from when the record declares none: numbers are doubles, so a stream keeps one type. */
const INTEGER_TYPES = new Set(["INTEGER", "LONG", "INT", "SHORT"]);
const FLOAT_TYPES = new Set(["FLOAT", "DOUBLE"]);
const STRING_TYPES = new Set(["STRING", "JSON", "GEOJSON", "BINARY"]);
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Attribute values longer than this are left out (named in `idigi.omitted`); the raw payload keeps them. */
export const MAX_ATTRIBUTE_LENGTH = 1024;
const MAX_ATTRIBUTES = 256;

export interface MapOptions {
  /** When the listener received the block (default now). */
  receivedTime?: Timestamp;
  /**
   * Attach each event's Msg as the platform sent it (`msgDocuments`: one document per Msg, by the index of the
   * PushEvent) as the raw payload, `application/json` or `application/xml` by the block's format.
   */
  raw?: { documents: readonly string[]; format: PayloadFormat };
}

/*
 * The messages below are built as plain objects in protobuf-es's shape rather than through create(): create() walks
 * the schema field by field, and with timestampFromMs (create() again) it took a tenth of the listener's CPU per event.
 * mapping.test.ts holds every event made here equal to what protobuf-es reads back from its encoding.
 */

/** timestampFromMs of @bufbuild/protobuf/wkt, without create(). */
function timestampOfMs(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { $typeName: "google.protobuf.Timestamp", seconds: protoInt64.parse(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

function telemetryEvent(
  id: string,
  connection: string,
  device: string,
  observedTime: Timestamp,
  receivedTime: Timestamp,
  points: Point[],
  attributes: Record<string, string>,
  raw: RawPayload | undefined,
): TelemetryEvent {
  return {
    $typeName: "meridian.telemetry.v1.TelemetryEvent",
    id,
    source: { $typeName: "meridian.telemetry.v1.Source", platform: Platform.IDIGI, connection, device },
    observedTime,
    receivedTime,
    points,
    attributes,
    raw,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted at every level: the same content always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = "{";
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    // Leaves inline: this runs for every field of every pushed record (event ids are digests of it).
    const t = typeof v;
    const json =
      t === "string"
        ? JSON.stringify(v)
        : t === "boolean" || v === null || (t === "number" && Number.isFinite(v))
          ? String(v)
          : canonicalJson(v);
    out += `${first ? "" : ","}${quotedKey(k)}:${json}`;
    first = false;
  }
  return `${out}}`;
}

/** Record keys come from a few schemas: their JSON spelling is kept (up to a bound, as keys are the platform's). */
const quotedKeys = new Map<string, string>();
function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size < 4096) quotedKeys.set(k, q);
  }
  return q;
}

// crypto.hash (Node ≥ 20.12) is a one-shot digest without a Hash object per call: ids are computed per event.
const oneShot = (crypto as unknown as { hash?: (alg: string, data: string, enc: "hex") => string }).hash;

function sha(text: string): string {
  return (oneShot ? oneShot("sha256", text, "hex") : crypto.createHash("sha256").update(text).digest("hex")).slice(0, 32);
}

/**
 * The event id, from content only: monitor id, topic, operation, the Msg timestamp and a digest of the record
 * (plus the position of the record inside the Msg when it holds a list). Never from the block id or the
 * position in the block: block ids restart at 0 on every connection and a replay may group events into other
 * blocks, so such ids would collide (and the bus would drop new data as duplicates) or differ on replay.
 */
export function eventId(monitorId: string, e: PushEvent, position?: number): string {
  const digest = sha(`${e.topic}\n${e.operation}\n${e.timestamp}\n${canonicalJson(e.data)}`);
  return `idigi:${monitorId}:${digest}${position === undefined ? "" : `:${position}`}`;
}

/** The bus message id of a batch: a digest of its event ids, so the same events published again are one message. */
export function batchIdFor(monitorId: string, events: readonly TelemetryEvent[]): string {
  return `idigi:${monitorId}:b:${sha(events.map((e) => e.id).join("\n"))}`;
}

function toMs(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "") {
    const t = v.trim();
    if (/^\d+$/.test(t)) return Number(t);
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  return undefined;
}

function text(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return undefined;
}

/** A record's value as a typed point value; the declared data type wins when there is one. */
export function typedValue(raw: unknown, dataType?: string): Point["value"] | undefined {
  if (raw === undefined || raw === null) return undefined;
  const dt = dataType?.trim().toUpperCase();
  if (dt && INTEGER_TYPES.has(dt)) {
    const s = typeof raw === "number" && Number.isInteger(raw) ? String(raw) : typeof raw === "string" ? raw.trim() : "";
    if (/^[+-]?\d+$/.test(s)) {
      const n = BigInt(s);
      if (n >= INT64_MIN && n <= INT64_MAX) return { case: "intValue", value: n };
    }
  }
  if (dt && STRING_TYPES.has(dt)) return { case: "stringValue", value: typeof raw === "string" ? raw : canonicalJson(raw) };
  if (typeof raw === "boolean") return { case: "boolValue", value: raw };
  if (typeof raw === "number")
    return Number.isFinite(raw) ? { case: "doubleValue", value: raw } : { case: "stringValue", value: String(raw) };
  if (typeof raw === "string") {
    const t = raw.trim();
    if (NUMERIC.test(t)) {
      const n = Number(t);
      if (Number.isFinite(n)) return { case: "doubleValue", value: n };
    }
    if (!dt || !FLOAT_TYPES.has(dt)) {
      if (t.toLowerCase() === "true") return { case: "boolValue", value: true };
      if (t.toLowerCase() === "false") return { case: "boolValue", value: false };
    }
    return { case: "stringValue", value: raw };
  }
  return { case: "stringValue", value: canonicalJson(raw) };
}

/** Flattens a record to `a.b[0].c` → string attributes; over-long values are left out and named. */
export function flattenAttributes(record: Record<string, unknown>, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  const omitted: string[] = [];
  let count = 0;
  const walk = (v: unknown, path: string) => {
    if (count >= MAX_ATTRIBUTES) {
      omitted.push(path);
      return;
    }
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) walk(x, `${path}[${i}]`);
    } else if (isRecord(v)) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    else {
      const s = v === null || v === undefined ? "" : (text(v) ?? canonicalJson(v));
      if (s.length > MAX_ATTRIBUTE_LENGTH) omitted.push(path);
      else {
        out[path] = s;
        count++;
      }
    }
  };
  walk(record, prefix);
  if (omitted.length > 0) out["idigi.omitted"] = omitted.slice(0, 20).join(",");
  return out;
}

function envelopeAttributes(e: PushEvent): Record<string, string> {
  const a: Record<string, string> = { "idigi.topic": e.topic, "idigi.operation": e.operation, "idigi.resource": e.resource };
  if (e.group !== undefined) a["idigi.group"] = e.group;
  return a;
}

/** `<device>/<stream…>` → device and point name; a stream id without '/' is its own device with point `value`. */
export function splitStreamId(streamId: string): { device: string; name: string } {
  const i = streamId.indexOf("/");
  if (i <= 0 || i === streamId.length - 1) return { device: streamId, name: "value" };
  return { device: streamId.slice(0, i), name: streamId.slice(i + 1) };
}

function topicKey(e: PushEvent): string {
  return splitTopic(e.topic).key.join("/");
}

function deviceOf(e: PushEvent): string {
  const d = e.data;
  const cw = text(d["devConnectwareId"]);
  if (cw) return cw;
  if (e.resource === "devices" && text(d["id"])) return text(d["id"])!;
  if (e.resource === "DeviceCore" && isRecord(d["id"]) && text(d["id"]["devId"])) return text(d["id"]["devId"])!;
  return topicKey(e) || e.resource || "unknown";
}

/** The records of a Msg: a list when the resource key holds an array (or repeated XML elements), else the one record. */
function recordsOf(e: PushEvent): Array<Record<string, unknown>> | undefined {
  const inner = e.data[e.resource];
  if (Array.isArray(inner) && Object.keys(e.data).length === 1) return inner.filter(isRecord);
  return undefined;
}

interface StreamValue {
  streamId: string;
  value: unknown;
  dataType: string | undefined;
  unit: string | undefined;
  timestamp: unknown;
  attributes: Record<string, string>;
}

function dataPointValue(e: PushEvent, r: Record<string, unknown>): StreamValue {
  const attributes: Record<string, string> = {};
  for (const [k, name] of [
    ["id", "idigi.data_point_id"],
    ["description", "idigi.description"],
    ["quality", "idigi.quality"],
    ["serverTimestamp", "idigi.server_timestamp"],
    ["location", "idigi.location"],
  ] as const) {
    const v = r[k];
    const s = v === undefined || v === null ? undefined : (text(v) ?? canonicalJson(v));
    if (s) attributes[name] = s;
  }
  return {
    streamId: text(r["streamId"]) || topicKey(e),
    value: r["data"],
    dataType: text(r["streamType"]) ?? text(r["dataType"]),
    unit: text(r["streamUnits"]) ?? text(r["units"]),
    timestamp: r["timestamp"],
    attributes,
  };
}

function dataStreamValue(e: PushEvent, r: Record<string, unknown>): StreamValue {
  const cv = isRecord(r["currentValue"]) ? r["currentValue"] : {};
  const attributes: Record<string, string> = {};
  for (const [v, name] of [
    [r["description"], "idigi.description"],
    [r["dataType"], "idigi.data_type"],
    [cv["id"], "idigi.data_point_id"],
    [cv["quality"], "idigi.quality"],
  ] as const) {
    const s = text(v);
    if (s) attributes[name] = s;
  }
  return {
    streamId: text(r["streamId"]) || topicKey(e),
    value: cv["data"],
    dataType: text(r["dataType"]),
    unit: text(r["units"]),
    timestamp: cv["timestamp"],
    attributes,
  };
}

/** Maps the events of one pushed block. Throws nothing for odd records: what is not a value becomes attributes. */
export function toTelemetryEvents(monitorId: string, events: readonly PushEvent[], options: MapOptions = {}): TelemetryEvent[] {
  const receivedTime = options.receivedTime ?? timestampNow();
  const out: TelemetryEvent[] = [];
  const contentType = options.raw?.format === "xml" ? "application/xml" : "application/json";
  for (const [index, e] of events.entries()) {
    const msgMs = toMs(e.timestamp);
    const msgTime = msgMs === undefined ? receivedTime : timestampOfMs(msgMs);
    const document = options.raw?.documents[index];
    const raw: RawPayload | undefined =
      document === undefined
        ? undefined
        : { $typeName: "meridian.telemetry.v1.RawPayload", data: Buffer.from(document, "utf8"), contentType };
    if (e.resource === "DataPoint" || e.resource === "DataStream") {
      const list = recordsOf(e);
      const records = list ?? [e.data];
      records.forEach((r, i) => {
        const sv = e.resource === "DataPoint" ? dataPointValue(e, r) : dataStreamValue(e, r);
        const { device, name } = splitStreamId(sv.streamId || e.resource);
        const value = typedValue(sv.value, sv.dataType);
        const ms = toMs(sv.timestamp);
        const points: Point[] = value ? [{ $typeName: "meridian.telemetry.v1.Point", name, value, unit: sv.unit ?? "", quality: 0 }] : [];
        out.push(
          telemetryEvent(
            eventId(monitorId, e, list ? i : undefined),
            monitorId,
            device || "unknown",
            ms === undefined ? msgTime : timestampOfMs(ms),
            receivedTime,
            points,
            Object.assign(envelopeAttributes(e), sv.attributes, { "idigi.stream_id": sv.streamId }),
            raw,
          ),
        );
      });
      continue;
    }
    out.push(
      telemetryEvent(
        eventId(monitorId, e),
        monitorId,
        deviceOf(e),
        msgTime,
        receivedTime,
        [],
        Object.assign(flattenAttributes(e.data), envelopeAttributes(e)),
        raw,
      ),
    );
  }
  return out;
}

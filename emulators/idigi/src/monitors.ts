/**
 * The one monitor store behind both REST forms (`/ws/Monitor` XML and `/ws/v1/monitors` JSON), with
 * the field dictionary, defaults and normalisation of protocol notes §1.4 and §4.
 */

export type TransportType = "tcp" | "http" | "polling";
export type FormatType = "json" | "xml";
export type CompressionType = "none" | "zlib";
export type AckOption = "explicit" | "off";
export type MonitorStatus = "CONNECTING" | "ACTIVE" | "INACTIVE" | "SUSPENDED" | "DISABLED";

export interface Monitor {
  id: number;
  cstId: number;
  /** The user that created it; ConnectRequests must come from a user of the same customer. */
  owner: string;
  topics: string[];
  transport: TransportType;
  format: FormatType;
  batchSize: number;
  /** Seconds. */
  batchDuration: number;
  compression: CompressionType;
  ackOption: AckOption;
  /** `monAutoReplayOnConnect` in the XML API, `persistent` in v1. */
  autoReplay: boolean;
  description?: string;
  transportUrl?: string;
  transportToken?: string;
  transportMethod?: string;
  transportHeaders?: string[];
  connectTimeout?: number;
  responseTimeout?: number;
  schemaType?: string;
  schema?: string;
  status: MonitorStatus;
  lastConnect?: string;
  lastSent?: string;
  lastSentUuid?: string;
  createdAt: string;
}

export class ValidationError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "ValidationError";
  }
}

export const DEFAULTS = {
  batchSize: 100,
  batchDuration: 10,
  compression: "none" as CompressionType,
  ackOption: "off" as AckOption,
  autoReplay: false,
};

export type MonitorInput = Partial<Omit<Monitor, "id" | "cstId" | "owner" | "status" | "createdAt">>;

function oneOf<T extends string>(field: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (!(allowed as readonly string[]).includes(s)) throw new ValidationError(field, `must be one of ${allowed.join(", ")}, got '${v}'`);
  return s as T;
}

function nonNegInt(field: string, v: string | number | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = typeof v === "number" ? v : Number(String(v).trim());
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(field, `must be a non-negative integer, got '${v}'`);
  return n;
}

function bool(field: string, v: string | boolean | undefined): boolean | undefined {
  if (v === undefined || v === "") return undefined;
  if (typeof v === "boolean") return v;
  const s = v.trim().toLowerCase();
  if (s === "true") return true;
  if (s === "false") return false;
  throw new ValidationError(field, `must be true or false, got '${v}'`);
}

function compression(field: string, v: string | undefined): CompressionType | undefined {
  // gzip is accepted for backward compatibility and is really zlib deflate (§1.4): store it as zlib.
  const c = oneOf(field, v, ["none", "zlib", "gzip"] as const);
  return c === "gzip" ? "zlib" : c;
}

function topicList(v: string): string[] {
  // Split on commas that are not inside an operation filter: `FileDataCore[C,U],DeviceCore`.
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of v) {
    if (ch === "[") depth++;
    if (ch === "]") depth = Math.max(0, depth - 1);
    if (ch === "," && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Fields of a `<Monitor>` document (children in any order, text only) → input. */
export function inputFromXmlFields(f: Record<string, string | undefined>): MonitorInput {
  const input: MonitorInput = {};
  if (f.monTopic !== undefined) input.topics = topicList(f.monTopic);
  const transport = oneOf("monTransportType", f.monTransportType, ["tcp", "http", "polling"] as const);
  if (transport) input.transport = transport;
  const format = oneOf("monFormatType", f.monFormatType, ["json", "xml"] as const);
  if (format) input.format = format;
  const bs = nonNegInt("monBatchSize", f.monBatchSize);
  if (bs !== undefined) input.batchSize = bs;
  const bd = nonNegInt("monBatchDuration", f.monBatchDuration);
  if (bd !== undefined) input.batchDuration = bd;
  const c = compression("monCompression", f.monCompression);
  if (c) input.compression = c;
  const ack = oneOf("monAckOption", f.monAckOption, ["explicit", "off"] as const);
  if (ack) input.ackOption = ack;
  const replay = bool("monAutoReplayOnConnect", f.monAutoReplayOnConnect);
  if (replay !== undefined) input.autoReplay = replay;
  if (f.monDescription !== undefined) input.description = f.monDescription;
  if (f.monTransportUrl !== undefined) input.transportUrl = f.monTransportUrl;
  if (f.monTransportToken !== undefined) input.transportToken = f.monTransportToken;
  const method = oneOf("monTransportMethod", f.monTransportMethod, ["put", "post"] as const);
  if (method) input.transportMethod = method.toUpperCase();
  if (f.monTransportHeaders !== undefined)
    input.transportHeaders = f.monTransportHeaders
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean);
  const ct = nonNegInt("monConnectTimeout", f.monConnectTimeout);
  if (ct !== undefined) input.connectTimeout = ct;
  const rt = nonNegInt("monResponseTimeout", f.monResponseTimeout);
  if (rt !== undefined) input.responseTimeout = rt;
  return input;
}

/** A v1 JSON body (§4) → input. */
export function inputFromV1(b: Record<string, unknown>): MonitorInput {
  const input: MonitorInput = {};
  const str = (k: string): string | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new ValidationError(k, "must be a string");
    return v;
  };
  if (b.topics !== undefined) {
    if (!Array.isArray(b.topics) || b.topics.some((t) => typeof t !== "string"))
      throw new ValidationError("topics", "must be an array of strings");
    input.topics = (b.topics as string[]).map((t) => t.trim()).filter(Boolean);
  }
  const transport = oneOf("type", str("type"), ["tcp", "http", "polling"] as const);
  if (transport) input.transport = transport;
  const format = oneOf("format", str("format"), ["json", "xml"] as const);
  if (format) input.format = format;
  const bs = nonNegInt("batch_size", b.batch_size as number | undefined);
  if (bs !== undefined) input.batchSize = bs;
  const bd = nonNegInt("batch_duration", b.batch_duration as number | undefined);
  if (bd !== undefined) input.batchDuration = bd;
  const c = compression("compression", str("compression"));
  if (c) input.compression = c;
  const ack = oneOf("ack_option", str("ack_option"), ["explicit", "off"] as const);
  if (ack) input.ackOption = ack;
  const p = bool("persistent", b.persistent as boolean | string | undefined);
  if (p !== undefined) input.autoReplay = p;
  const d = str("description");
  if (d !== undefined) input.description = d;
  const url = str("url");
  if (url !== undefined) input.transportUrl = url;
  const token = str("auth_token");
  if (token !== undefined) input.transportToken = token;
  const method = oneOf("method", str("method"), ["put", "post"] as const);
  if (method) input.transportMethod = method.toUpperCase();
  if (b.headers !== undefined) {
    if (!Array.isArray(b.headers) || b.headers.some((h) => typeof h !== "string"))
      throw new ValidationError("headers", "must be an array of 'Name: value' strings");
    input.transportHeaders = b.headers as string[];
  }
  const ct = nonNegInt("connect_timeout", b.connect_timeout as number | undefined);
  if (ct !== undefined) input.connectTimeout = ct;
  const rt = nonNegInt("response_timeout", b.response_timeout as number | undefined);
  if (rt !== undefined) input.responseTimeout = rt;
  const st = str("schema_type");
  if (st !== undefined) input.schemaType = st;
  const sc = str("schema");
  if (sc !== undefined) input.schema = sc;
  return input;
}

function validateComplete(m: Monitor, names: { topics: string; transport: string; batchSize: string }): void {
  if (m.topics.length === 0) throw new ValidationError(names.topics, "is required");
  if (!m.transport) throw new ValidationError(names.transport, "is required");
  if (m.batchSize < 1) throw new ValidationError(names.batchSize, "must be at least 1");
}

export const XML_NAMES = { topics: "monTopic", transport: "monTransportType", batchSize: "monBatchSize" };
export const V1_NAMES = { topics: "topics", transport: "type", batchSize: "batch_size" };

export class MonitorStore {
  private readonly monitors = new Map<number, Monitor>();
  private nextId: number;

  constructor(private readonly firstId = 1001) {
    this.nextId = firstId;
  }

  create(owner: string, cstId: number, input: MonitorInput, names = XML_NAMES): Monitor {
    const m: Monitor = {
      id: 0,
      cstId,
      owner,
      topics: input.topics ?? [],
      transport: input.transport as TransportType,
      format: input.format ?? "json",
      batchSize: input.batchSize ?? DEFAULTS.batchSize,
      batchDuration: input.batchDuration ?? DEFAULTS.batchDuration,
      compression: input.compression ?? DEFAULTS.compression,
      ackOption: input.ackOption ?? DEFAULTS.ackOption,
      autoReplay: input.autoReplay ?? DEFAULTS.autoReplay,
      status: "INACTIVE",
      createdAt: new Date().toISOString(),
    };
    for (const k of [
      "description",
      "transportUrl",
      "transportToken",
      "transportMethod",
      "transportHeaders",
      "connectTimeout",
      "responseTimeout",
      "schemaType",
      "schema",
    ] as const) {
      if (input[k] !== undefined) (m as unknown as Record<string, unknown>)[k] = input[k];
    }
    if (m.transport === "http" && !m.transportMethod) m.transportMethod = "PUT";
    validateComplete(m, names);
    m.id = this.nextId++;
    this.monitors.set(m.id, m);
    return m;
  }

  /** Applies an update (PUT); the caller resets the runtime state. */
  update(id: number, input: MonitorInput, names = XML_NAMES): Monitor | undefined {
    const m = this.monitors.get(id);
    if (!m) return undefined;
    const next = { ...m, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as Monitor;
    validateComplete(next, names);
    Object.assign(m, next);
    return m;
  }

  get(id: number): Monitor | undefined {
    return this.monitors.get(id);
  }

  delete(id: number): boolean {
    return this.monitors.delete(id);
  }

  all(): Monitor[] {
    return [...this.monitors.values()];
  }

  clear(): void {
    this.monitors.clear();
    this.nextId = this.firstId;
  }
}

/** The legacy item shape (§1.6): every value a string. */
export function toXmlItem(m: Monitor): Record<string, string> {
  const item: Record<string, string> = {
    monId: String(m.id),
    cstId: String(m.cstId),
    monTopic: m.topics.join(","),
    monTransportType: m.transport,
    monFormatType: m.format,
    monBatchSize: String(m.batchSize),
    monCompression: m.compression,
    monStatus: m.status,
    monBatchDuration: String(m.batchDuration),
    monAckOption: m.ackOption,
    monAutoReplayOnConnect: String(m.autoReplay),
  };
  if (m.description !== undefined) item.monDescription = m.description;
  if (m.transport === "http") {
    if (m.transportUrl !== undefined) item.monTransportUrl = m.transportUrl;
    if (m.transportMethod !== undefined) item.monTransportMethod = m.transportMethod;
    if (m.transportHeaders !== undefined) item.monTransportHeaders = m.transportHeaders.join("\n");
    item.monConnectTimeout = String(m.connectTimeout ?? 0);
    item.monResponseTimeout = String(m.responseTimeout ?? 0);
  }
  if (m.lastConnect) item.monLastConnect = m.lastConnect;
  if (m.lastSent) item.monLastSent = m.lastSent;
  if (m.lastSentUuid) item.monLastSentUuid = m.lastSentUuid;
  return item;
}

/** The v1 shape (§4): snake_case, numbers as numbers, lower-case status, header names only. */
export function toV1(m: Monitor): Record<string, unknown> {
  const o: Record<string, unknown> = {
    id: m.id,
    customer_id: m.cstId,
    type: m.transport,
    topics: m.topics,
    format: m.format,
    compression: m.compression,
    batch_size: m.batchSize,
    batch_duration: m.batchDuration,
    persistent: m.autoReplay,
    ack_option: m.ackOption,
    status: m.status.toLowerCase(),
    created: m.createdAt,
  };
  if (m.description !== undefined) o.description = m.description;
  if (m.transport === "http") {
    if (m.transportUrl !== undefined) o.url = m.transportUrl;
    if (m.transportMethod !== undefined) o.method = m.transportMethod;
    if (m.transportHeaders !== undefined) o.headers = m.transportHeaders.map((h) => h.split(":")[0]!.trim());
    o.connect_timeout = m.connectTimeout ?? 0;
    o.response_timeout = m.responseTimeout ?? 0;
  }
  if (m.schemaType !== undefined) o.schema_type = m.schemaType;
  if (m.schema !== undefined) o.schema = m.schema;
  if (m.lastConnect) o.last_connect = m.lastConnect;
  if (m.lastSent) o.last_sent = m.lastSent;
  if (m.lastSentUuid) o.last_sent_uuid = m.lastSentUuid;
  return o;
}

/**
 * The legacy `condition` query: `field='value'` terms joined with `and` (case-insensitive), compared
 * with the string-valued item. Throws ValidationError on anything else.
 */
export function parseCondition(cond: string): Array<[string, string]> {
  const terms = cond.split(/\s+and\s+/i);
  return terms.map((t) => {
    const m = /^\s*(\w+)\s*=\s*'([^']*)'\s*$/.exec(t);
    if (!m) throw new ValidationError("condition", `cannot parse term '${t.trim()}' (expected field='value' [and ...])`);
    return [m[1]!, m[2]!];
  });
}

export function matchesCondition(item: Record<string, string>, terms: Array<[string, string]>): boolean {
  return terms.every(([k, v]) => (k === "monTopic" ? item.monTopic === v : item[k] === v));
}

/** A parsed subscription: `Resource[ops]/path/with/*`. */
export interface Subscription {
  resource: string;
  ops?: Set<string>;
  path?: string[];
}

export function parseSubscription(topic: string): Subscription {
  const m = /^([^[/]+)(?:\[([^\]]*)\])?(?:\/(.*))?$/.exec(topic.trim());
  if (!m) return { resource: topic.trim() };
  const sub: Subscription = { resource: m[1]! };
  if (m[2]) sub.ops = new Set(m[2].split(",").map((s) => s.trim().toUpperCase().slice(0, 1)));
  if (m[3]) sub.path = m[3].split("/");
  return sub;
}

/**
 * Whether an event (resource, operation, key path after the resource in its topic) matches one
 * subscription. Operation filter letters are C/U/D; INSERTION counts as C. Path: `*` matches one
 * segment; a shorter filter matches as a prefix. (Combining rules are [I] in the notes.)
 */
export function subscriptionMatches(sub: Subscription, resource: string, operation: string, keyPath: string[]): boolean {
  if (sub.resource.toLowerCase() !== resource.toLowerCase()) return false;
  if (sub.ops) {
    const letter = operation.toUpperCase() === "INSERTION" ? "C" : operation.toUpperCase().slice(0, 1);
    if (!sub.ops.has(letter)) return false;
  }
  if (sub.path) {
    for (let i = 0; i < sub.path.length; i++) {
      const want = sub.path[i]!;
      const got = keyPath[i];
      if (got === undefined) return false;
      if (want !== "*" && want !== got) return false;
    }
  }
  return true;
}

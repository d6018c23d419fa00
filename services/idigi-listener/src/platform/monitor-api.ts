import { readCapped } from "@meridian/http";
import { readRetryAfter, retry } from "@meridian/retry";
import { XMLParser } from "fast-xml-parser";
import { type MonitorApiConfig, type MonitorApiOptions, validateMonitorApiOptions } from "./config.js";
import {
  echoText,
  IdigiAuthError,
  IdigiBadRequestError,
  IdigiConfigError,
  type IdigiError,
  IdigiNetworkError,
  IdigiNotFoundError,
  IdigiResponseTooLargeError,
  IdigiServerError,
  IdigiUnexpectedResponseError,
} from "./errors.js";

/**
 * Monitor REST clients: the legacy XML `/ws/Monitor` API and Remote Manager's v1 JSON `/ws/v1/monitors` API,
 * behind one `MonitorApi` interface (shared/protocols/idigi.md §1 and §4).
 */

export type MonitorTransport = "tcp" | "http" | "polling";
export type MonitorFormat = "json" | "xml";
/** `gzip` is accepted on create for backward compatibility; it is really zlib, and is read back as `zlib`. */
export type MonitorCompression = "none" | "zlib" | "gzip";
export type MonitorAckOption = "explicit" | "off";
/** Upper case as in the legacy API (v1's lower-case statuses are upper-cased). Unknown values pass through. */
export type MonitorStatus = "CONNECTING" | "ACTIVE" | "INACTIVE" | "SUSPENDED" | "DISABLED" | (string & {});

export interface MonitorSpec {
  /** Subscriptions such as `DeviceCore`, `FileDataCore[C,U]`, `DataPoint/dev1/*`. */
  topics: string[];
  transport?: MonitorTransport;
  format?: MonitorFormat;
  /** Upper bound on messages per batch (server default 100). */
  batchSize?: number;
  /** Upper bound, in seconds, to hold a batch (server default 10). */
  batchDurationSec?: number;
  compression?: MonitorCompression;
  /** TCP only. `explicit` makes the server wait for our acks; use it with `PushSession` (it never auto-acks). */
  ackOption?: MonitorAckOption;
  /** Replay missed events on connect (`monAutoReplayOnConnect`; `persistent` in v1). */
  autoReplayOnConnect?: boolean;
  description?: string;
}

export interface Monitor {
  /** Decimal id, a string as the API returns it. */
  id: string;
  customerId?: string;
  topics: string[];
  transport?: MonitorTransport | (string & {});
  format?: MonitorFormat | (string & {});
  batchSize?: number;
  batchDurationSec?: number;
  /** `gzip` is normalised to `zlib`. */
  compression?: "none" | "zlib" | (string & {});
  ackOption?: MonitorAckOption | (string & {});
  autoReplayOnConnect?: boolean;
  status?: MonitorStatus;
  description?: string;
  lastConnect?: string;
  lastSent?: string;
  lastSentUuid?: string;
  /** The record as the server sent it (all strings in the legacy API). */
  raw: Record<string, unknown>;
}

export interface MonitorFilter {
  /** Exact `monTopic` match (the comma-joined list), as the seed client uses it. */
  topics?: string[];
  transport?: MonitorTransport;
}

/** One retry of an idempotent call, as `onRetry` listeners see it (the client itself has no logger). */
export interface MonitorApiRetry {
  method: string;
  /** The path, without the query. */
  path: string;
  /** The attempt that failed, 1-based. */
  attempt: number;
  /** The wait before the next attempt: the error's Retry-After (at most MAX_RETRY_AFTER_MS), else the backoff. */
  delayMs: number;
  error: IdigiError;
}

export interface MonitorApi {
  /** Creates a monitor. The legacy API answers with an id only; the result is then built from `spec` + id. */
  create(spec: MonitorSpec): Promise<Monitor>;
  /** Every monitor matching `filter` (all pages). */
  list(filter?: MonitorFilter): Promise<Monitor[]>;
  /** One monitor; `IdigiNotFoundError` when it does not exist. */
  get(id: string | number): Promise<Monitor>;
  /** Deletes a monitor; `IdigiNotFoundError` when it does not exist. */
  delete(id: string | number): Promise<void>;
  /** Calls `listener` before each retry of an idempotent call; returns what removes it. */
  onRetry?(listener: (retry: MonitorApiRetry) => void): () => void;
  /**
   * Whether the API documents the ack option it is sent: the legacy API's monAckOption is [D]; the v1 API's
   * `ack_option` is in no field list of the notes ([I]), so what a v1 monitor does is only known from reading it back.
   */
  readonly ackOptionDocumented?: boolean;
}

const MAX_PAGES = 10_000;

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", parseTagValue: false, trimValues: true });

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[ch]!);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkId(id: string | number): string {
  const s = String(id);
  if (!/^\d{1,10}$/.test(s)) throw new IdigiConfigError("id", "must be a decimal integer");
  return s;
}

/**
 * Splits a `monTopic` list on the commas that separate topics, not the ones inside an operation filter:
 * `DeviceCore[U],FileDataCore[C,U]` → `DeviceCore[U]`, `FileDataCore[C,U]`. ([I]: the notes show both the
 * comma-joined list and bracketed filters with commas, but no example combining them.)
 */
export function splitTopicList(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of list) {
    if (ch === "[") depth++;
    else if (ch === "]") depth = Math.max(0, depth - 1);
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

function checkSpec(spec: MonitorSpec): void {
  if (!Array.isArray(spec.topics) || spec.topics.length === 0) throw new IdigiConfigError("topics", "at least one topic is required");
  spec.topics.forEach((t, i) => {
    if (typeof t !== "string" || t.trim() === "" || splitTopicList(t).length !== 1) {
      throw new IdigiConfigError(`topics[${i}]`, "must be one non-empty topic (commas only inside [C,U,D] filters)");
    }
  });
  for (const k of ["batchSize", "batchDurationSec"] as const) {
    const v = spec[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new IdigiConfigError(k, "must be a non-negative integer");
  }
}

/**
 * The message of an error body (XML `<error>`/`<message>`/`<desc>`, JSON `error_message`/`message`/`error`/`errors`,
 * or plain text), as `echoText` makes it fit to repeat. A markup body without such an element (a proxy's HTML page,
 * say) gives nothing: its text would be layout and server banners, not what was wrong with the request.
 */
function serverMessage(body: string): string {
  const text = body.trim();
  if (!text) return "";
  let msg: string | undefined;
  if (text.startsWith("{")) {
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      for (const k of ["error_message", "message", "error", "errors"]) {
        const v = j[k];
        if (typeof v === "string") msg = v;
        else if (Array.isArray(v)) msg = v.map((e) => (typeof e === "string" ? e : JSON.stringify(e))).join("; ");
        if (msg) break;
      }
    } catch {
      /* not JSON after all: read as plain text */
    }
    msg ??= text;
  } else if (text.startsWith("<")) {
    const m = /<(error|message|desc)[^>]*>([\s\S]*?)<\/\1>/i.exec(text);
    msg = m?.[2] ? m[2].replace(/<[^>]+>/g, " ") : "";
  } else msg = text;
  return echoText(msg);
}

/** Shared HTTP plumbing: Basic auth, timeouts, bounded bodies, error mapping, retries for idempotent calls. */
class HttpCore {
  readonly #auth: string;
  readonly #retryListeners = new Set<(retry: MonitorApiRetry) => void>();
  constructor(readonly config: MonitorApiConfig) {
    this.#auth = `Basic ${Buffer.from(`${config.username}:${config.password}`, "utf8").toString("base64")}`;
  }

  onRetry(listener: (retry: MonitorApiRetry) => void): () => void {
    this.#retryListeners.add(listener);
    return () => this.#retryListeners.delete(listener);
  }

  async request(
    method: "GET" | "POST" | "DELETE",
    path: string,
    opts: { body?: string; contentType?: string; accept?: string; what: string },
  ): Promise<{ status: number; headers: Headers; text: string }> {
    const idempotent = method !== "POST";
    return retry(() => this.once(method, path, opts), {
      maxAttempts: idempotent ? this.config.maxAttempts : 1,
      ...(this.config.backoff ? { policy: this.config.backoff } : {}),
      onRetry: (error, attempt, delayMs) => {
        const notice = { method, path: path.split("?")[0]!, attempt, delayMs, error: error as IdigiError };
        for (const listener of this.#retryListeners) listener(notice);
      },
    });
  }

  private async once(
    method: string,
    path: string,
    opts: { body?: string; contentType?: string; accept?: string; what: string },
  ): Promise<{ status: number; headers: Headers; text: string }> {
    const url = new URL(path, this.config.baseUrl);
    const headers: Record<string, string> = { Authorization: this.#auth, Accept: opts.accept ?? "application/json" };
    if (opts.contentType) headers["Content-Type"] = opts.contentType;
    let res: Response;
    let text: string | undefined;
    try {
      res = await this.config.fetch(url, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      text = await readCapped(res, this.config.maxResponseBytes);
    } catch (err) {
      const reason = err instanceof Error && err.name === "TimeoutError" ? "timed out" : "failed";
      throw new IdigiNetworkError(`${method} ${url.pathname} ${reason}`, { cause: err });
    }
    const { status } = res;
    if (text === undefined) throw new IdigiResponseTooLargeError(this.config.maxResponseBytes, status, `${method} ${url.pathname}`);
    if (status >= 200 && status < 300) return { status, headers: res.headers, text };
    const message = serverMessage(text);
    if (status === 401 || status === 403) throw new IdigiAuthError(status, message);
    if (status === 404) throw new IdigiNotFoundError(opts.what, status);
    if (status === 429 || status >= 500) {
      const wait = readRetryAfter(res.headers.get("retry-after"));
      throw new IdigiServerError(status, message, wait?.ms, wait?.clamped ? wait.requestedMs : undefined);
    }
    throw new IdigiBadRequestError(status, message);
  }
}

const num = (v: unknown): number | undefined => {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return undefined;
};
const text = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
const flag = (v: unknown): boolean | undefined => (v === true || v === "true" ? true : v === false || v === "false" ? false : undefined);
const normCompression = (v: string | undefined): string | undefined => (v?.toLowerCase() === "gzip" ? "zlib" : v?.toLowerCase());
function splitTopics(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  const s = text(v);
  return s ? splitTopicList(s) : [];
}
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Maps a legacy `/ws/Monitor` item (JSON with string values, or the same fields as XML elements) to a Monitor. */
export function monitorFromLegacy(item: Record<string, unknown>): Monitor {
  const id = text(item["monId"]);
  if (!id) throw new IdigiUnexpectedResponseError("monitor record has no monId");
  return compact({
    id,
    customerId: text(item["cstId"]),
    topics: splitTopics(item["monTopic"]),
    transport: text(item["monTransportType"]),
    format: text(item["monFormatType"]),
    batchSize: num(item["monBatchSize"]),
    batchDurationSec: num(item["monBatchDuration"]),
    compression: normCompression(text(item["monCompression"])),
    ackOption: text(item["monAckOption"]),
    autoReplayOnConnect: flag(item["monAutoReplayOnConnect"]),
    status: text(item["monStatus"])?.toUpperCase(),
    description: text(item["monDescription"]),
    lastConnect: text(item["monLastConnect"]),
    lastSent: text(item["monLastSent"]),
    lastSentUuid: text(item["monLastSentUuid"]),
    raw: item,
  });
}

/** Maps a v1 `/ws/v1/monitors/inventory` record to a Monitor. */
export function monitorFromV1(item: Record<string, unknown>): Monitor {
  const id = text(item["id"]);
  if (!id) throw new IdigiUnexpectedResponseError("monitor record has no id");
  return compact({
    id,
    customerId: text(item["customer_id"]),
    topics: splitTopics(item["topics"]),
    transport: text(item["type"]),
    format: text(item["format"]),
    batchSize: num(item["batch_size"]),
    batchDurationSec: num(item["batch_duration"]),
    compression: normCompression(text(item["compression"])),
    ackOption: text(item["ack_option"]),
    autoReplayOnConnect: flag(item["persistent"]),
    status: text(item["status"])?.toUpperCase(),
    description: text(item["description"]),
    lastConnect: text(item["last_connect"]),
    lastSent: text(item["last_sent"]),
    lastSentUuid: text(item["last_sent_uuid"]),
    raw: item,
  });
}

interface Page {
  items: Record<string, unknown>[];
  remaining: number | undefined;
}

/**
 * Reads a legacy list/get response. The notes show the JSON envelope (`resultSize`, `remainingSize`, `items`,
 * all strings); the same resource served as XML (`<result …><Monitor>…</Monitor></result>`) is read too, since
 * which one `/ws/Monitor/{id}` returns without `.json` is not pinned down by the notes.
 */
function parseLegacyPage(body: string): Page {
  const t = body.trim();
  if (t.startsWith("{")) {
    let j: unknown;
    try {
      j = JSON.parse(t);
    } catch {
      throw new IdigiUnexpectedResponseError("monitor list is not valid JSON");
    }
    if (!isRecord(j)) throw new IdigiUnexpectedResponseError("monitor list is not a JSON object");
    const items = j["items"];
    if (items !== undefined && !Array.isArray(items)) throw new IdigiUnexpectedResponseError("monitor list 'items' is not an array");
    return { items: (items ?? []).filter(isRecord), remaining: num(j["remainingSize"]) };
  }
  if (t.startsWith("<")) {
    let doc: Record<string, unknown>;
    try {
      doc = xml.parse(t) as Record<string, unknown>;
    } catch {
      // The parser's message quotes the body: not something to pass on.
      throw new IdigiUnexpectedResponseError("monitor list XML does not parse");
    }
    const result = doc["result"];
    if (!isRecord(result)) {
      if (isRecord(doc["Monitor"])) return { items: [doc["Monitor"]], remaining: 0 };
      throw new IdigiUnexpectedResponseError("monitor list XML has no <result>");
    }
    const mons = result["Monitor"];
    const items = (Array.isArray(mons) ? mons : mons === undefined ? [] : [mons]).filter(isRecord);
    return { items, remaining: num(result["@remainingSize"]) };
  }
  throw new IdigiUnexpectedResponseError("monitor list is neither JSON nor XML");
}

function quote(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

/** The legacy XML `/ws/Monitor` API (iDigi, Device Cloud, and still live on Remote Manager). */
export class LegacyMonitorApi implements MonitorApi {
  readonly ackOptionDocumented = true;
  private readonly http: HttpCore;
  constructor(options: MonitorApiOptions) {
    this.http = new HttpCore(validateMonitorApiOptions(options));
  }

  onRetry(listener: (retry: MonitorApiRetry) => void): () => void {
    return this.http.onRetry(listener);
  }

  /** The `<Monitor>` document POSTed on create (exported for tests; no XML declaration, like the seed). */
  static createBody(spec: MonitorSpec): string {
    const fields: Array<[string, string | number | boolean | undefined]> = [
      ["monTopic", spec.topics.join(",")],
      ["monTransportType", spec.transport ?? "tcp"],
      ["monFormatType", spec.format],
      ["monBatchSize", spec.batchSize],
      ["monBatchDuration", spec.batchDurationSec],
      ["monCompression", spec.compression],
      ["monAckOption", spec.ackOption],
      ["monAutoReplayOnConnect", spec.autoReplayOnConnect],
      ["monDescription", spec.description],
    ];
    const children = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`);
    return `<Monitor>${children.join("")}</Monitor>`;
  }

  async create(spec: MonitorSpec): Promise<Monitor> {
    checkSpec(spec);
    const body = LegacyMonitorApi.createBody(spec);
    const res = await this.http.request("POST", "/ws/Monitor", { body, contentType: "text/xml", accept: "text/xml", what: "monitor" });
    // The seed reads the Location header, python-devicecloud the body's <location>; the emulator sends both.
    const fromPath = (p: string | undefined | null): string | undefined => {
      const last = p?.trim().replace(/\/+$/, "").split("/").pop();
      return last && /^\d+$/.test(last) ? last : undefined;
    };
    let id = fromPath(res.headers.get("location"));
    if (!id && res.text.trim().startsWith("<")) {
      try {
        const doc = xml.parse(res.text) as Record<string, unknown>;
        const result = doc["result"];
        if (isRecord(result)) id = fromPath(text(result["location"]));
      } catch {
        /* reported below */
      }
    }
    if (!id)
      throw new IdigiUnexpectedResponseError(
        "create response carries no monitor id (neither a Location header nor <location>)",
        res.status,
      );
    return compact({
      id,
      topics: [...spec.topics],
      transport: spec.transport ?? "tcp",
      format: spec.format,
      batchSize: spec.batchSize,
      batchDurationSec: spec.batchDurationSec,
      compression: normCompression(spec.compression),
      ackOption: spec.ackOption,
      autoReplayOnConnect: spec.autoReplayOnConnect,
      description: spec.description,
      raw: {},
    });
  }

  async list(filter: MonitorFilter = {}): Promise<Monitor[]> {
    const conditions: string[] = [];
    if (filter.topics?.length) conditions.push(`monTopic=${quote(filter.topics.join(","))}`);
    if (filter.transport) conditions.push(`monTransportType=${quote(filter.transport)}`);
    const size = this.http.config.pageSize;
    const out: Monitor[] = [];
    for (let start = 0, page = 0; page < MAX_PAGES; page++) {
      const q = new URLSearchParams();
      if (conditions.length) q.set("condition", conditions.join(" and "));
      q.set("start", String(start));
      q.set("size", String(size));
      const res = await this.http.request("GET", `/ws/Monitor/.json?${q}`, { what: "monitor list" });
      const { items, remaining } = parseLegacyPage(res.text);
      out.push(...items.map(monitorFromLegacy));
      start += items.length;
      if (items.length === 0 || !remaining) break;
    }
    return out;
  }

  async get(id: string | number): Promise<Monitor> {
    const mid = checkId(id);
    const res = await this.http.request("GET", `/ws/Monitor/${mid}`, { what: `monitor ${mid}` });
    const item = parseLegacyPage(res.text).items[0];
    if (!item) throw new IdigiNotFoundError(`monitor ${mid}`);
    return monitorFromLegacy(item);
  }

  async delete(id: string | number): Promise<void> {
    const mid = checkId(id);
    await this.http.request("DELETE", `/ws/Monitor/${mid}`, { what: `monitor ${mid}` });
  }
}

/**
 * Remote Manager's v1 JSON API, `/ws/v1/monitors/inventory`. The notes document create and the echoed record;
 * the list envelope is not documented there ([I]): `list` (DRM v1 style), `items`, or a bare array are all read,
 * and a `cursor` is followed when present. Filtering is done client-side.
 */
export class V1MonitorApi implements MonitorApi {
  readonly ackOptionDocumented = false;
  private readonly http: HttpCore;
  constructor(options: MonitorApiOptions) {
    this.http = new HttpCore(validateMonitorApiOptions(options));
  }

  onRetry(listener: (retry: MonitorApiRetry) => void): () => void {
    return this.http.onRetry(listener);
  }

  /** The JSON body POSTed on create (exported for tests). `ack_option` is [I]: the notes name no v1 field. */
  static createBody(spec: MonitorSpec): Record<string, unknown> {
    return compact({
      type: spec.transport ?? "tcp",
      topics: [...spec.topics],
      format: spec.format,
      batch_size: spec.batchSize,
      batch_duration: spec.batchDurationSec,
      compression: normCompression(spec.compression),
      ack_option: spec.ackOption,
      persistent: spec.autoReplayOnConnect,
      description: spec.description,
    });
  }

  async create(spec: MonitorSpec): Promise<Monitor> {
    checkSpec(spec);
    const res = await this.http.request("POST", "/ws/v1/monitors/inventory", {
      body: JSON.stringify(V1MonitorApi.createBody(spec)),
      contentType: "application/json",
      what: "monitor",
    });
    return monitorFromV1(parseJsonObject(res.text, "create response"));
  }

  async list(filter: MonitorFilter = {}): Promise<Monitor[]> {
    const out: Monitor[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = new URLSearchParams({ size: String(this.http.config.pageSize) });
      if (cursor) q.set("cursor", cursor);
      const res = await this.http.request("GET", `/ws/v1/monitors/inventory?${q}`, { what: "monitor list" });
      const t = res.text.trim();
      let j: unknown;
      try {
        j = JSON.parse(t);
      } catch {
        throw new IdigiUnexpectedResponseError("monitor list is not valid JSON", res.status);
      }
      const items = Array.isArray(j) ? j : isRecord(j) ? (j["list"] ?? j["items"] ?? []) : undefined;
      if (!Array.isArray(items)) throw new IdigiUnexpectedResponseError("monitor list has no list/items array", res.status);
      out.push(...items.filter(isRecord).map(monitorFromV1));
      const next = isRecord(j) ? text(j["cursor"]) : undefined;
      if (!next || next === cursor || items.length === 0) break;
      cursor = next;
    }
    const want = filter.topics?.join(",");
    return out.filter((m) => (!want || m.topics.join(",") === want) && (!filter.transport || m.transport === filter.transport));
  }

  async get(id: string | number): Promise<Monitor> {
    const mid = checkId(id);
    const res = await this.http.request("GET", `/ws/v1/monitors/inventory/${mid}`, { what: `monitor ${mid}` });
    return monitorFromV1(parseJsonObject(res.text, `monitor ${mid}`));
  }

  async delete(id: string | number): Promise<void> {
    const mid = checkId(id);
    await this.http.request("DELETE", `/ws/v1/monitors/inventory/${mid}`, { what: `monitor ${mid}` });
  }
}

function parseJsonObject(body: string, what: string): Record<string, unknown> {
  try {
    const j: unknown = JSON.parse(body);
    if (isRecord(j)) return j;
  } catch {
    /* reported below */
  }
  throw new IdigiUnexpectedResponseError(`${what} is not a JSON object`);
}

/** Picks the implementation: `legacy` = `/ws/Monitor` (XML, TCP monitors' home), `v1` = `/ws/v1/monitors`. */
export function createMonitorApi(options: MonitorApiOptions & { flavor?: "legacy" | "v1" }): MonitorApi {
  const { flavor = "legacy", ...rest } = options;
  if (flavor !== "legacy" && flavor !== "v1") throw new IdigiConfigError("flavor", "must be 'legacy' or 'v1'");
  return flavor === "v1" ? new V1MonitorApi(rest) : new LegacyMonitorApi(rest);
}

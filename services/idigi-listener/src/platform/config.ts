import type { BackoffPolicy } from "@meridian/retry";
import { IdigiConfigError } from "./errors.js";

/**
 * Option validation for the platform client. Errors name the field (`monitorId`, `tls.ca`, …) and say what is
 * expected; they never include the value given, so a password can never leak through an error message or log.
 */

type Issue = { field: string; message: string };

class Collector {
  readonly issues: Issue[] = [];
  add(field: string, message: string): void {
    this.issues.push({ field, message });
  }
  throwIfAny(): void {
    const first = this.issues[0];
    if (first) throw new IdigiConfigError(first.field, first.message, this.issues);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(c: Collector, o: Record<string, unknown>, field: string, opts: { required?: boolean; maxBytes?: number; nonEmpty?: boolean }) {
  const v = o[field];
  if (v === undefined) {
    if (opts.required) c.add(field, "is required");
    return undefined;
  }
  if (typeof v !== "string") {
    c.add(field, "must be a string");
    return undefined;
  }
  if (opts.nonEmpty && v.length === 0) c.add(field, "must not be empty");
  if (opts.maxBytes !== undefined && Buffer.byteLength(v, "utf8") > opts.maxBytes)
    c.add(field, `must be at most ${opts.maxBytes} UTF-8 bytes`);
  return v;
}

function int(c: Collector, o: Record<string, unknown>, field: string, min: number, max: number, required = false): number | undefined {
  const v = o[field];
  if (v === undefined) {
    if (required) c.add(field, "is required");
    return undefined;
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    c.add(field, `must be an integer in [${min}, ${max}]`);
    return undefined;
  }
  return v;
}

function bool(c: Collector, o: Record<string, unknown>, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    c.add(field, "must be a boolean");
    return undefined;
  }
  return v;
}

export type PemInput = string | Buffer;

export interface PushSessionOptions {
  host: string;
  /** Default 3201 with TLS, 3200 without. */
  port?: number;
  /** TLS (default true). Plain TCP must be asked for with `tls: false`; Digi calls port 3200 "for debugging". */
  tls?: boolean;
  /** Accept any server certificate. Never implied: must be passed as `true` explicitly, and only with TLS. */
  insecure?: boolean;
  /** Trusted CA certificate(s), PEM. Replaces Node's default roots when given. */
  ca?: PemInput | PemInput[];
  /** TLS SNI / certificate host name; defaults to `host` (unless it is an IP address). */
  servername?: string;
  username: string;
  password: string;
  /** The monitor id (u32). A decimal string, as the REST API returns it, is accepted. */
  monitorId: number | string;
  /** Largest frame payload accepted (default 4 MiB). */
  maxFrameSize?: number;
  /** Largest inflated payload accepted (default 8 × maxFrameSize). */
  maxInflatedSize?: number;
  /** TCP/TLS connect timeout (default 15 s). */
  connectTimeoutMs?: number;
  /** Time allowed between sending the ConnectRequest and receiving the ConnectResponse (default 30 s). */
  handshakeTimeoutMs?: number;
  /** Reconnect backoff (default: 500 ms doubling to 30 s, half jitter). */
  backoff?: BackoffPolicy;
  /** Give up after this many consecutive failed connection attempts (default: never). */
  maxReconnectAttempts?: number;
  /** TCP keepalive probe delay; the protocol itself has no keepalive frames (default 60 s, 0 disables). */
  keepAliveMs?: number;
}

export interface PushSessionConfig {
  host: string;
  port: number;
  tls: boolean;
  insecure: boolean;
  ca: PemInput[] | undefined;
  servername: string | undefined;
  username: string;
  password: string;
  monitorId: number;
  maxFrameSize: number;
  maxInflatedSize: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  backoff: BackoffPolicy;
  maxReconnectAttempts: number;
  keepAliveMs: number;
}

export const DEFAULT_SESSION_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.5 };

const isPem = (v: unknown): v is PemInput => (typeof v === "string" && v.includes("-----BEGIN")) || Buffer.isBuffer(v);

/** Validates PushSession options; throws `IdigiConfigError` listing every bad field (never their values). */
export function validatePushSessionOptions(input: unknown): PushSessionConfig {
  const c = new Collector();
  if (!isRecord(input)) throw new IdigiConfigError("(options)", "must be an object");
  const host = str(c, input, "host", { required: true, nonEmpty: true });
  const tls = bool(c, input, "tls") ?? true;
  const insecure = bool(c, input, "insecure") ?? false;
  if (insecure && !tls) c.add("insecure", "only applies to TLS; plain TCP (tls: false) is never verified");
  const port = int(c, input, "port", 1, 65535) ?? (tls ? 3201 : 3200);
  let ca: PemInput[] | undefined;
  if (input["ca"] !== undefined) {
    const list = Array.isArray(input["ca"]) ? input["ca"] : [input["ca"]];
    if (list.length === 0 || !list.every(isPem)) c.add("ca", "must be a PEM certificate string/Buffer or a non-empty array of them");
    else ca = list;
    if (!tls) c.add("ca", "only applies to TLS");
  }
  const servername = str(c, input, "servername", { nonEmpty: true });
  const username = str(c, input, "username", { required: true, maxBytes: 0xffff, nonEmpty: true });
  const password = str(c, input, "password", { required: true, maxBytes: 0xffff });
  let monitorId: number | undefined;
  const rawId = input["monitorId"];
  if (rawId === undefined) c.add("monitorId", "is required");
  else {
    const n = typeof rawId === "string" && /^\d{1,10}$/.test(rawId) ? Number(rawId) : rawId;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 0xffffffff)
      c.add("monitorId", "must be an integer in [0, 4294967295]");
    else monitorId = n;
  }
  const maxFrameSize = int(c, input, "maxFrameSize", 16, 0xffffffff) ?? 4 * 1024 * 1024;
  const maxInflatedSize = int(c, input, "maxInflatedSize", 16, Number.MAX_SAFE_INTEGER) ?? maxFrameSize * 8;
  const connectTimeoutMs = int(c, input, "connectTimeoutMs", 1, 2_147_483_647) ?? 15_000;
  const handshakeTimeoutMs = int(c, input, "handshakeTimeoutMs", 1, 2_147_483_647) ?? 30_000;
  const keepAliveMs = int(c, input, "keepAliveMs", 0, 2_147_483_647) ?? 60_000;
  let maxReconnectAttempts = Number.POSITIVE_INFINITY;
  if (input["maxReconnectAttempts"] !== undefined && input["maxReconnectAttempts"] !== Number.POSITIVE_INFINITY) {
    maxReconnectAttempts = int(c, input, "maxReconnectAttempts", 0, Number.MAX_SAFE_INTEGER) ?? maxReconnectAttempts;
  }
  let backoff = DEFAULT_SESSION_BACKOFF;
  const b = input["backoff"];
  if (b !== undefined) {
    if (!isRecord(b)) c.add("backoff", "must be an object");
    else {
      const okNum = (k: string, min: number) => typeof b[k] === "number" && Number.isFinite(b[k]) && (b[k] as number) >= min;
      if (!okNum("initialMs", 0)) c.add("backoff.initialMs", "must be a number ≥ 0");
      if (!okNum("maxMs", 0)) c.add("backoff.maxMs", "must be a number ≥ 0");
      if (!okNum("multiplier", 1)) c.add("backoff.multiplier", "must be a number ≥ 1");
      if (!okNum("jitter", 0) || (b["jitter"] as number) > 1) c.add("backoff.jitter", "must be a number in [0, 1]");
      backoff = b as unknown as BackoffPolicy;
    }
  }
  c.throwIfAny();
  return {
    host: host!,
    port,
    tls,
    insecure,
    ca,
    servername,
    username: username!,
    password: password!,
    monitorId: monitorId!,
    maxFrameSize,
    maxInflatedSize,
    connectTimeoutMs,
    handshakeTimeoutMs,
    backoff,
    maxReconnectAttempts,
    keepAliveMs,
  };
}

export interface MonitorApiOptions {
  /** `https://remotemanager.digi.com` (or the legacy `https://my.idigi.com`, …). Must not carry credentials. */
  baseUrl: string;
  username: string;
  password: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Tries for idempotent calls (GET, DELETE), including the first (default 3). Create (POST) is tried once. */
  maxAttempts?: number;
  /** Backoff between tries (default: `@meridian/retry`'s DEFAULT_BACKOFF). */
  backoff?: BackoffPolicy;
  /** Page size for list calls (default 1000, as python-devicecloud). */
  pageSize?: number;
  /**
   * Longest response body read, after decompression (default DEFAULT_MAX_RESPONSE_BYTES, 4 MiB; 1 KiB to 256 MiB).
   * Raise it with `pageSize`: a monitor record is a few hundred bytes.
   */
  maxResponseBytes?: number;
  /** Injected fetch (tests, proxies). Default: global fetch. */
  fetch?: typeof fetch;
}

/** A list page of the default 1000 monitor records is about half a megabyte; the rest is headroom for long topic lists. */
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface MonitorApiConfig {
  baseUrl: URL;
  username: string;
  password: string;
  timeoutMs: number;
  maxAttempts: number;
  backoff: BackoffPolicy | undefined;
  pageSize: number;
  maxResponseBytes: number;
  fetch: typeof fetch;
}

/** Validates monitor REST API options; throws `IdigiConfigError` listing every bad field (never their values). */
export function validateMonitorApiOptions(input: unknown): MonitorApiConfig {
  const c = new Collector();
  if (!isRecord(input)) throw new IdigiConfigError("(options)", "must be an object");
  const rawUrl = str(c, input, "baseUrl", { required: true, nonEmpty: true });
  let baseUrl: URL | undefined;
  if (rawUrl) {
    try {
      baseUrl = new URL(rawUrl);
      if (baseUrl.protocol !== "https:" && baseUrl.protocol !== "http:") c.add("baseUrl", "must be an http or https URL");
      if (baseUrl.username || baseUrl.password) c.add("baseUrl", "must not contain credentials; use username/password");
    } catch {
      c.add("baseUrl", "must be an absolute URL");
    }
  }
  const username = str(c, input, "username", { required: true, nonEmpty: true });
  if (username?.includes(":")) c.add("username", "must not contain ':' (HTTP Basic auth)");
  const password = str(c, input, "password", { required: true });
  const timeoutMs = int(c, input, "timeoutMs", 1, 2_147_483_647) ?? 30_000;
  const maxAttempts = int(c, input, "maxAttempts", 1, 100) ?? 3;
  const pageSize = int(c, input, "pageSize", 1, 100_000) ?? 1000;
  const maxResponseBytes = int(c, input, "maxResponseBytes", 1024, 256 * 1024 * 1024) ?? DEFAULT_MAX_RESPONSE_BYTES;
  const f = input["fetch"];
  if (f !== undefined && typeof f !== "function") c.add("fetch", "must be a function");
  const b = input["backoff"];
  if (b !== undefined && !isRecord(b)) c.add("backoff", "must be an object");
  c.throwIfAny();
  return {
    baseUrl: baseUrl!,
    username: username!,
    password: password!,
    timeoutMs,
    maxAttempts,
    backoff: b as BackoffPolicy | undefined,
    pageSize,
    maxResponseBytes,
    fetch: (f as typeof fetch | undefined) ?? globalThis.fetch,
  };
}

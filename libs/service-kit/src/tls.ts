/**
 * TLS for the one API port, and the PEM files it (and the gateway's calls to its backends) is made from.
 *
 * The port keeps its front listener: a connection whose first byte opens a TLS handshake record goes to a tls.Server
 * that never listens (as the http and http2 servers never do), and once the handshake is done ALPN picks the server
 * the socket is handed to: "h2" the http2 one (gRPC), "http/1.1" or no ALPN at all the http/1.1 one. So every limit
 * of the front listener and of both servers applies to TLS connections as it does to plaintext ones.
 *
 * Certificates rotate (cert-manager, a Kubernetes Secret swapped under a mounted volume) without a restart: the files
 * are read again every few seconds and, when their contents changed and still make a usable pair, become the context
 * of the next handshakes (setSecureContext). Connections already open keep the certificate they started with.
 */
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type * as http2 from "node:http2";
import type * as net from "node:net";
import * as tls from "node:tls";
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import { Counter, Gauge, type Registry } from "prom-client";
import { z } from "zod";
import { ConfigError } from "./config.js";
import type { Logger } from "./logger.js";

/** Whether the port asks TLS clients for a certificate: `request` verifies one when given, `require` refuses a connection without a valid one. */
export type ClientAuth = "none" | "request" | "require";

/** TLS on the API port. File paths; every error about them names the setting that gives them (TLS_CERT_FILE, …). */
export interface ServerTlsOptions {
  /** PEM: the server certificate, then its intermediates (TLS_CERT_FILE). */
  certFile: string;
  /** PEM: the unencrypted private key of the certificate (TLS_KEY_FILE). */
  keyFile: string;
  /** PEM: the CA certificates client certificates are verified against (TLS_CLIENT_CA_FILE). Required unless clientAuth is none. */
  clientCaFile?: string;
  /** Default `none`. */
  clientAuth?: ClientAuth;
  /** How often the files are checked for a new certificate, default 10 000 ms (100 – 3 600 000). */
  reloadIntervalMs?: number;
}

export const DEFAULT_TLS_RELOAD_INTERVAL_MS = 10_000;
const RELOAD_INTERVAL_BOUNDS = [100, 3_600_000] as const;

/** The protocols the port offers, in the server's order of preference. */
export const ALPN_PROTOCOLS = ["h2", "http/1.1"];

const path = () => z.string().min(1).max(4096).optional();

/** The TLS settings of every service's API port, spread into serviceSettings beside the server limits. */
export const tlsSettings = {
  /** PEM server certificate (then its chain); with TLS_KEY_FILE turns TLS on. Re-read when it changes. */
  TLS_CERT_FILE: path(),
  /** PEM private key of TLS_CERT_FILE, unencrypted. Re-read when it changes. */
  TLS_KEY_FILE: path(),
  /** PEM CA certificates that client certificates must chain to. */
  TLS_CLIENT_CA_FILE: path(),
  /** none | request | require; unset: require when TLS_CLIENT_CA_FILE is set, else none. */
  TLS_CLIENT_AUTH: z.enum(["none", "request", "require"]).optional(),
};

const tlsSettingsSchema = z.object(tlsSettings);
type TlsSettings = z.infer<typeof tlsSettingsSchema>;

/**
 * The port's TLS from the settings: undefined (plaintext) when neither file is set. A combination that cannot mean
 * what the operator wants is a ConfigError naming the settings: one file of the pair without the other, client
 * settings without TLS, client verification without a CA, or a CA with verification turned off.
 */
export function serverTlsFromSettings(settings: TlsSettings): ServerTlsOptions | undefined {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, TLS_CLIENT_CA_FILE: clientCaFile, TLS_CLIENT_AUTH: auth } = settings;
  if (!certFile && !keyFile) {
    const stray = (["TLS_CLIENT_CA_FILE", "TLS_CLIENT_AUTH"] as const).filter((k) => settings[k] !== undefined);
    if (stray.length > 0) {
      throw new ConfigError(`${stray.join(", ")}: set without TLS; set TLS_CERT_FILE and TLS_KEY_FILE to serve TLS`, [...stray]);
    }
    return undefined;
  }
  if (!certFile || !keyFile) {
    const missing = certFile ? "TLS_KEY_FILE" : "TLS_CERT_FILE";
    const given = certFile ? "TLS_CERT_FILE" : "TLS_KEY_FILE";
    throw new ConfigError(`${missing}: required when ${given} is set (TLS needs the certificate and its key)`, [missing]);
  }
  const clientAuth: ClientAuth = auth ?? (clientCaFile ? "require" : "none");
  if (clientAuth !== "none" && !clientCaFile) {
    throw new ConfigError(
      `TLS_CLIENT_CA_FILE: required when TLS_CLIENT_AUTH is ${clientAuth} (client certificates are verified against it)`,
      ["TLS_CLIENT_CA_FILE"],
    );
  }
  if (clientAuth === "none" && clientCaFile) {
    throw new ConfigError("TLS_CLIENT_AUTH: is none while TLS_CLIENT_CA_FILE is set; set it to request or require, or unset the CA", [
      "TLS_CLIENT_AUTH",
      "TLS_CLIENT_CA_FILE",
    ]);
  }
  return { certFile, keyFile, clientAuth, ...(clientCaFile ? { clientCaFile } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// PEM files

/** A PEM file and the setting that names it, so that an error says which setting to fix. */
export interface TlsFile {
  setting: string;
  path: string;
}

/** The files of one TLS identity and/or trust: a certificate with its key, CA certificates, or both. */
export interface TlsFiles {
  cert?: TlsFile;
  key?: TlsFile;
  ca?: TlsFile;
}

/** The files' contents, checked: what tls.createSecureContext takes, and the leaf certificate for logs. */
export interface TlsMaterial {
  cert?: string;
  key?: string;
  ca?: string;
  /** The first certificate of `cert`. */
  leaf?: X509Certificate;
}

/** A PEM certificate chain or key is a few KiB; a file far larger is not one. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

type RawFiles = Partial<Record<keyof TlsFiles, string>>;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function fileError(file: TlsFile, problem: string): ConfigError {
  return new ConfigError(`${file.setting}: ${file.path}: ${problem}`, [file.setting]);
}

function readOne(file: TlsFile): string {
  try {
    const size = statSync(file.path).size;
    if (size > MAX_PEM_FILE_BYTES) throw fileError(file, `${size} bytes, more than a PEM file holds (at most ${MAX_PEM_FILE_BYTES})`);
    return readFileSync(file.path, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw fileError(file, `cannot read: ${(err as Error).message}`);
  }
}

async function readOneAsync(file: TlsFile): Promise<string> {
  try {
    const size = (await stat(file.path)).size;
    if (size > MAX_PEM_FILE_BYTES) throw fileError(file, `${size} bytes, more than a PEM file holds (at most ${MAX_PEM_FILE_BYTES})`);
    return await readFile(file.path, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw fileError(file, `cannot read: ${(err as Error).message}`);
  }
}

function certificates(file: TlsFile, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw fileError(file, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw fileError(file, `certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/** Checks what was read: certificates parse, the key parses and belongs to the certificate, and OpenSSL takes them. */
function toMaterial(files: TlsFiles, raw: RawFiles): TlsMaterial {
  const material: TlsMaterial = {};
  if (files.cert && raw.cert !== undefined) {
    material.leaf = certificates(files.cert, raw.cert)[0];
    material.cert = raw.cert;
  }
  if (files.key && raw.key !== undefined) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: raw.key, format: "pem" });
    } catch (err) {
      throw fileError(files.key, `not an unencrypted PEM private key: ${(err as Error).message}`);
    }
    if (material.leaf && files.cert && !material.leaf.checkPrivateKey(key)) {
      throw new ConfigError(
        `${files.cert.setting}, ${files.key.setting}: the key in ${files.key.path} does not belong to the certificate in ${files.cert.path}`,
        [files.cert.setting, files.key.setting],
      );
    }
    material.key = raw.key;
  }
  if (files.ca && raw.ca !== undefined) {
    certificates(files.ca, raw.ca);
    material.ca = raw.ca;
  }
  try {
    tls.createSecureContext(secureContextOptions(material));
  } catch (err) {
    const named = Object.values(files).filter((f): f is TlsFile => f !== undefined);
    throw new ConfigError(`${named.map((f) => f.setting).join(", ")}: not usable for TLS: ${(err as Error).message}`, [
      ...named.map((f) => f.setting),
    ]);
  }
  return material;
}

/** Reads and checks the files now (at start); a missing, unreadable, malformed or mismatched file is a ConfigError naming its setting. */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const raw: RawFiles = {};
  for (const [name, file] of Object.entries(files) as [keyof TlsFiles, TlsFile | undefined][]) if (file) raw[name] = readOne(file);
  return toMaterial(files, raw);
}

export function secureContextOptions(material: TlsMaterial): tls.SecureContextOptions {
  return {
    ...(material.cert ? { cert: material.cert } : {}),
    ...(material.key ? { key: material.key } : {}),
    ...(material.ca ? { ca: material.ca } : {}),
  };
}

/** What a log line may say about a certificate: never the key, never the PEM. */
export function describeCertificate(cert: X509Certificate | undefined): Record<string, unknown> | undefined {
  if (!cert) return undefined;
  return {
    subject: cert.subject.replaceAll("\n", ", "),
    fingerprint256: cert.fingerprint256,
    validTo: new Date(cert.validTo).toISOString(),
  };
}

function warnIfOutOfDate(logger: Logger, material: TlsMaterial, files: TlsFiles): void {
  const leaf = material.leaf;
  if (!leaf || !files.cert) return;
  const now = Date.now();
  if (new Date(leaf.validTo).getTime() < now || new Date(leaf.validFrom).getTime() > now) {
    logger.warn(
      { setting: files.cert.setting, certificate: describeCertificate(leaf), validFrom: new Date(leaf.validFrom).toISOString() },
      "the TLS certificate is not valid now: peers will refuse it",
    );
  }
}

export interface TlsFilesWatch {
  stop(): void;
}

/**
 * Reads the files again every `intervalMs`; when their contents changed and still check out, hands the new material
 * to `apply`. A change that does not check out (a half-written rotation, a key that belongs to the next certificate)
 * keeps the material in use and is logged once at warn until the files change again.
 */
export function watchTlsFiles(
  files: TlsFiles,
  initial: TlsMaterial,
  options: { intervalMs: number; logger: Logger; what: string; apply: (material: TlsMaterial) => void; onFailure?: () => void },
): TlsFilesWatch {
  const { intervalMs, logger, what } = options;
  const named = Object.entries(files).filter((e): e is [keyof TlsFiles, TlsFile] => e[1] !== undefined);
  const fingerprint = (raw: RawFiles) =>
    createHash("sha256")
      .update(JSON.stringify(named.map(([k]) => raw[k] ?? null)))
      .digest("hex");
  // The material's texts are the files' texts as read.
  let applied = fingerprint({ cert: initial.cert, key: initial.key, ca: initial.ca });
  let lastFailure: string | undefined;
  let busy = false;
  const check = async () => {
    if (busy) return;
    busy = true;
    try {
      const raw: RawFiles = {};
      let readFailure: ConfigError | undefined;
      for (const [name, file] of named) {
        try {
          raw[name] = await readOneAsync(file);
        } catch (err) {
          readFailure = err as ConfigError;
        }
      }
      const seen = readFailure ? `unreadable:${readFailure.message}` : fingerprint(raw);
      if (seen === applied || seen === lastFailure) return;
      try {
        if (readFailure) throw readFailure;
        const material = toMaterial(files, raw);
        options.apply(material);
        applied = seen;
        lastFailure = undefined;
        logger.info({ what, certificate: describeCertificate(material.leaf) }, "TLS files changed: new handshakes use them");
        warnIfOutOfDate(logger, material, files);
      } catch (err) {
        lastFailure = seen;
        options.onFailure?.();
        logger.warn(
          { what, settings: err instanceof ConfigError ? err.settings : undefined, reason: (err as Error).message },
          "TLS files changed but cannot be used: keeping the ones in use",
        );
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** A client-side TLS identity and trust that follow their files: each new connection uses the latest secure context. */
export interface ClientTls {
  /** The secure context for the next connection. */
  secureContext(): tls.SecureContext;
  /** The certificate this side presents, for logs. */
  certificate(): X509Certificate | undefined;
  stop(): void;
}

/**
 * Client TLS from files (the gateway towards its backends): CA certificates to verify the server with, and optionally
 * a certificate and key to present (mTLS). Read and checked now (ConfigError naming the setting), then followed.
 */
export function clientTlsFromFiles(files: TlsFiles, options: { logger: Logger; what: string; reloadIntervalMs?: number }): ClientTls {
  const material = readTlsMaterial(files);
  warnIfOutOfDate(options.logger, material, files);
  let current = { context: tls.createSecureContext(secureContextOptions(material)), leaf: material.leaf };
  const watch = watchTlsFiles(files, material, {
    intervalMs: reloadInterval(options.reloadIntervalMs),
    logger: options.logger,
    what: options.what,
    apply: (m) => {
      current = { context: tls.createSecureContext(secureContextOptions(m)), leaf: m.leaf };
    },
  });
  return { secureContext: () => current.context, certificate: () => current.leaf, stop: () => watch.stop() };
}

function reloadInterval(ms: number | undefined): number {
  const value = ms ?? DEFAULT_TLS_RELOAD_INTERVAL_MS;
  const [min, max] = RELOAD_INTERVAL_BOUNDS;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`tls.reloadIntervalMs: must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// The port's TLS

/** The first byte of a TLS record that carries a handshake message (a ClientHello, on a new connection). */
export const TLS_HANDSHAKE_RECORD = 0x16;

const PLAINTEXT_REFUSED_BODY = "this port serves TLS only: call it with https:// (or grpcurl without -plaintext)\n";
/** What an HTTP/1.1 client that spoke plaintext to the TLS port reads before the connection closes. */
export const PLAINTEXT_REFUSED_RESPONSE =
  "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n" +
  `content-length: ${Buffer.byteLength(PLAINTEXT_REFUSED_BODY)}\r\n\r\n${PLAINTEXT_REFUSED_BODY}`;

export interface TlsTerminator {
  /**
   * Runs the handshake on a raw connection whose first bytes (already read and put back) start a TLS record;
   * `onSecure` gets the TLS socket once it is done and, with client auth `require`, the client certificate verified.
   * A connection whose handshake fails is closed here; the caller's own deadline bounds one that never ends.
   */
  handshake(raw: net.Socket, onSecure: (socket: tls.TLSSocket) => void): void;
  /** For the startup line. */
  summary(): Record<string, unknown>;
  stop(): void;
}

/**
 * A tls.Server that never listens: the port's front listener hands it the connections that start a handshake.
 * Reads the files now (a bad one is a ConfigError naming its setting) and follows them afterwards.
 */
export function tlsTerminator(
  options: ServerTlsOptions,
  deps: { logger: Logger; registry: Registry; handshakeTimeoutMs: number },
): TlsTerminator {
  const { logger } = deps;
  const clientAuth = options.clientAuth ?? "none";
  if (clientAuth !== "none" && !options.clientCaFile) {
    throw new ConfigError(`TLS_CLIENT_CA_FILE: required when TLS_CLIENT_AUTH is ${clientAuth}`, ["TLS_CLIENT_CA_FILE"]);
  }
  const intervalMs = reloadInterval(options.reloadIntervalMs);
  const files: TlsFiles = {
    cert: { setting: "TLS_CERT_FILE", path: options.certFile },
    key: { setting: "TLS_KEY_FILE", path: options.keyFile },
    ...(options.clientCaFile ? { ca: { setting: "TLS_CLIENT_CA_FILE", path: options.clientCaFile } } : {}),
  };
  let material = readTlsMaterial(files);
  warnIfOutOfDate(logger, material, files);

  const server = tls.createServer({
    ...secureContextOptions(material),
    ALPNProtocols: ALPN_PROTOCOLS,
    requestCert: clientAuth !== "none",
    rejectUnauthorized: clientAuth === "require",
    // The front listener's first-bytes deadline bounds the whole handshake; this idle timer is only Node's own.
    handshakeTimeout: deps.handshakeTimeoutMs,
  });

  new Gauge({
    name: "server_tls_certificate_not_after_seconds",
    help: "Unix time at which the certificate the API port presents expires (it follows TLS_CERT_FILE).",
    registers: [deps.registry],
    collect() {
      if (material.leaf) this.set(Math.floor(new Date(material.leaf.validTo).getTime() / 1000));
    },
  });
  const reloadFailures = new Counter({
    name: "server_tls_reload_failures_total",
    help: "Times the TLS files changed into something that could not be used (the previous certificate stayed in use).",
    registers: [deps.registry],
  });

  const watch = watchTlsFiles(files, material, {
    intervalMs,
    logger,
    what: "API port",
    apply: (next) => {
      server.setSecureContext(secureContextOptions(next));
      material = next;
    },
    onFailure: () => reloadFailures.inc(),
  });

  // The TLS socket the server makes wraps the raw socket; both see the same TCP 4-tuple, which is how the
  // finished handshake finds the connection it belongs to (Node offers no public link from one to the other).
  const pending = new Map<string, (socket: tls.TLSSocket) => void>();
  const key = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const k = key(socket);
    const onSecure = pending.get(k);
    pending.delete(k);
    if (onSecure) onSecure(socket);
    else socket.destroy();
  });
  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    logger.debug({ err: { message: err.message, code: err.code }, remoteAddress: socket.remoteAddress }, "TLS handshake failed");
    socket.destroy();
  });

  return {
    handshake(raw, onSecure) {
      const k = key(raw);
      pending.set(k, onSecure);
      raw.once("close", () => {
        if (pending.get(k) === onSecure) pending.delete(k);
      });
      server.emit("connection", raw);
    },
    summary: () => ({ clientAuth, alpn: ALPN_PROTOCOLS, certificate: describeCertificate(material.leaf) }),
    stop: () => watch.stop(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The caller's certificate

/** The verified client certificate of a call, as handlers and interceptors see it (`ctx.values.get(peerCertificateKey)`). */
export interface PeerCertificate {
  /** The subject's common name (the first, if there are several). */
  commonName: string | undefined;
  /** subjectAltName entries by kind. */
  dnsNames: string[];
  uris: string[];
  ipAddresses: string[];
  emails: string[];
  /** SHA-256 of the DER certificate, upper-case hex pairs joined by ":" (as openssl and Node print it). */
  fingerprint256: string;
  serialNumber: string;
  /** The issuer's common name. */
  issuerCommonName: string | undefined;
  validTo: Date;
}

/**
 * The client certificate of the connection a call came on, when the port verified it against TLS_CLIENT_CA_FILE;
 * undefined on plaintext, without a certificate, or with one that did not verify (client auth `request`).
 */
export const peerCertificateKey = createContextKey<PeerCertificate | undefined>(undefined, {
  description: "the verified TLS client certificate of the call's connection",
});

type NodeRequest = { socket: unknown; httpVersionMajor?: number; stream?: http2.ServerHttp2Stream };

/** One certificate per connection: a client cannot change it after the handshake (TLS 1.3 has no renegotiation, and Node refuses it for 1.2). */
const peerByConnection = new WeakMap<object, PeerCertificate | null>();

/** connectNodeAdapter's contextValues: the call's verified peer certificate under peerCertificateKey. */
export function peerContextValues(req: NodeRequest): ContextValues {
  const values = createContextValues();
  const peer = peerCertificateOfRequest(req);
  if (peer) values.set(peerCertificateKey, peer);
  return values;
}

function peerCertificateOfRequest(req: NodeRequest): PeerCertificate | undefined {
  // HTTP/2 hands each request a proxy of the connection's socket; the session is the one object per connection.
  const connection = (req.httpVersionMajor === 2 ? req.stream?.session : undefined) ?? req.socket;
  if (typeof connection !== "object" || connection === null) return undefined;
  const cached = peerByConnection.get(connection);
  if (cached !== undefined) return cached ?? undefined;
  const peer = peerCertificateOf(req.socket);
  peerByConnection.set(connection, peer ?? null);
  return peer;
}

/** The peer certificate of a TLS socket when it was verified (socket.authorized), else undefined. */
export function peerCertificateOf(socket: unknown): PeerCertificate | undefined {
  const s = socket as Partial<Pick<tls.TLSSocket, "authorized" | "getPeerCertificate">> | undefined;
  if (s?.authorized !== true || typeof s.getPeerCertificate !== "function") return undefined;
  const cert = s.getPeerCertificate();
  if (!cert?.raw) return undefined;
  const alt = parseSubjectAltNames(cert.subjectaltname ?? "");
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  return {
    commonName: first(cert.subject?.CN),
    dnsNames: alt.filter(([t]) => t === "DNS").map(([, v]) => v),
    uris: alt.filter(([t]) => t === "URI").map(([, v]) => v),
    ipAddresses: alt.filter(([t]) => t === "IP Address").map(([, v]) => v),
    emails: alt.filter(([t]) => t === "email").map(([, v]) => v),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    issuerCommonName: first(cert.issuer?.CN),
    validTo: new Date(cert.valid_to),
  };
}

/**
 * Node's subjectaltname text: `DNS:a, IP Address:127.0.0.1, URI:spiffe://x`, where a value holding a comma, quote or
 * other special character is written as a JSON string (`DNS:"a, b"`), so a comma inside a name cannot forge an entry.
 */
export function parseSubjectAltNames(text: string): Array<[kind: string, value: string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) break;
    const kind = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        break; // not what Node writes: trust nothing after it
      }
      j = k + 1;
    } else {
      const end = text.indexOf(", ", j);
      const stop = end < 0 ? text.length : end;
      value = text.slice(j, stop);
      j = stop;
    }
    out.push([kind, value]);
    if (text.startsWith(", ", j)) j += 2;
    else if (j < text.length) break;
    i = j;
  }
  return out;
}

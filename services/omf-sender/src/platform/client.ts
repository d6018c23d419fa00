import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { gzip as gzipCb } from "node:zlib";
import { Agent } from "undici";
import { ClientCredentialsTokenProvider } from "./auth.js";
import { batchMessage, splitInHalf } from "./batching.js";
import { type OmfEndpointConfig, type OmfEndpointInput, validateEndpointConfig } from "./config.js";
import {
  OmfConfigError,
  OmfConflictError,
  type OmfError,
  OmfInvalidMessageError,
  OmfPayloadTooLargeError,
  OmfUnexpectedReplyError,
} from "./errors.js";
import { checkMessage, type OmfMessage, type OmfVersion, omfHeaders, serializeBody } from "./messages.js";
import { classifyResult, parseOmfResponse } from "./response.js";
import { httpExchange } from "./transport.js";
import type { OmfResult } from "./types.js";
import { omfVersionOfEdsProduct, omfVersionOfPiSystem } from "./version.js";

const gzip = promisify(gzipCb);
const GZIP_OPTIONS = { level: 1 };

export interface SendOptions {
  /** Aborts this send (rethrown as the signal's reason, not classified). */
  signal?: AbortSignal;
  /**
   * A 409 answers a create whose object exists already: resolve with the result (`alreadyExists: true`) instead of
   * rejecting, as the reference sample treats it. Only for `create`; other actions reject as usual.
   */
  conflictIsSuccess?: boolean;
}

/** Where the OMF version in use came from: the configuration, the endpoint's own answer, or the default. */
export type OmfVersionSource = "configured" | "probed" | "default";

/** How long a failed version probe is not repeated (the default is used meanwhile). */
export const VERSION_PROBE_RETRY_MS = 60_000;

export interface OmfClientOptions {
  /** Clock for token expiry and the version probe's retry (tests). */
  now?: () => number;
}

/**
 * The OMF client for one endpoint (PI Web API, AVEVA Data Hub or Edge Data Store).
 * `send` POSTs one message and resolves with the parsed result on success, or rejects with a classified
 * error (see errors.ts). It retries on its own only once, after a 401 with a refreshed ADH token;
 * backoff is the caller's, via `@meridian/retry` (OmfServerError / OmfThrottledError say `retryable: true`).
 */
export class OmfClient {
  /** The validated configuration; its `omfVersion` is the one in use (the probed one once the endpoint answered). */
  get config(): OmfEndpointConfig {
    return this.#config;
  }
  #config: OmfEndpointConfig;
  readonly #agent: Agent;
  readonly #tokens: ClientCredentialsTokenProvider | undefined;
  readonly #now: () => number;
  #version: { value: OmfVersion; source: OmfVersionSource; failedAt?: number };
  #probe: Promise<OmfVersion> | undefined;
  #probed = false;

  constructor(input: OmfEndpointInput | OmfEndpointConfig, options: OmfClientOptions = {}) {
    const validated = validateEndpointConfig(input);
    if (!validated.ok) throw new OmfConfigError(validated.errors);
    this.#config = validated.config;
    this.#now = options.now ?? Date.now;
    this.#version = this.config.omfVersionSet
      ? { value: this.config.omfVersion, source: "configured" }
      : this.config.kind === "adh"
        ? // AVEVA Data Hub speaks 1.2 and has no product-information path to ask.
          { value: "1.2", source: "probed" }
        : { value: this.config.omfVersion, source: "default" };
    let ca: string | undefined;
    if (this.config.caPemPath !== undefined) {
      try {
        ca = readFileSync(this.config.caPemPath, "utf8");
      } catch (err) {
        const code = (err as { code?: string }).code ?? "unreadable";
        throw new OmfConfigError([`endpoint.caPemPath: cannot read the CA file (${code})`]);
      }
    }
    this.#agent = new Agent({ connect: { rejectUnauthorized: this.config.verifySsl, ...(ca === undefined ? {} : { ca }) } });
    if (this.config.kind === "adh") {
      this.#tokens = new ClientCredentialsTokenProvider({
        resource: this.config.url,
        clientId: this.config.clientId,
        clientSecret: this.config.clientSecret,
        tokenUrl: this.config.tokenUrl,
        allowHttp: this.config.allowHttp,
        dispatcher: this.#agent,
        timeoutMs: this.config.timeoutMs,
        endpoint: this.config.name,
        now: options.now,
      });
    }
  }

  get name(): string {
    return this.config.name;
  }

  get kind(): OmfEndpointConfig["kind"] {
    return this.config.kind;
  }

  get omfUrl(): string {
    return this.config.omfUrl;
  }

  /** The OMF version in use now and where it came from (the default until a probe answered). */
  get omfVersionInUse(): { version: OmfVersion; source: OmfVersionSource } {
    return { version: this.#version.value, source: this.#version.source };
  }

  /**
   * The OMF version to speak: the configured one; else what the endpoint says about itself (PI Web API
   * `/system`, EDS product information; version.ts), asked once and remembered. An answer that names no version (a
   * 4xx, a reply without one) leaves DEFAULT_OMF_VERSION in use and is asked again at most every
   * VERSION_PROBE_RETRY_MS; no answer (down, 5xx, throttled) is asked again at the next call. It never fails the
   * caller: a send reports its own errors.
   *
   * Whoever shapes messages by the version (the pipeline's mapping) calls this first and reads `config.omfVersion`;
   * `send` asks only when nobody has, and otherwise sends with the version in use, so that a message is never shaped
   * for one version and sent as another by a probe that answered in between.
   */
  async omfVersion(signal?: AbortSignal): Promise<OmfVersion> {
    const v = this.#version;
    if (v.source !== "default") return v.value;
    this.#probed = true;
    if (v.failedAt !== undefined && this.#now() - v.failedAt < VERSION_PROBE_RETRY_MS) return v.value;
    this.#probe ??= this.#probeVersion(signal).finally(() => {
      this.#probe = undefined;
    });
    return this.#probe;
  }

  async #probeVersion(signal: AbortSignal | undefined): Promise<OmfVersion> {
    let found: OmfVersion | undefined;
    try {
      if (this.config.kind === "pi") found = omfVersionOfPiSystem(await this.getJson(`${this.config.url}/system`, { signal }));
      else if (this.config.kind === "eds")
        found = omfVersionOfEdsProduct(
          await this.getJson(`${this.config.url}/api/${encodeURIComponent(this.config.apiVersion)}/diagnostics/productinformation`, {
            signal,
          }),
        );
    } catch (err) {
      if (signal?.aborted) throw err;
      // The endpoint is down or busy: it has said nothing about its version, so ask again at the next call rather than
      // settle on the default for a minute (sends that reach it in between would be shaped for a version it may refuse).
      if ((err as { retryable?: boolean }).retryable === true) return this.#version.value;
    }
    if (found === undefined) {
      this.#version = { value: this.#version.value, source: "default", failedAt: this.#now() };
      return this.#version.value;
    }
    this.#version = { value: found, source: "probed" };
    this.#config = Object.freeze({ ...this.#config, omfVersion: found }) as OmfEndpointConfig;
    return found;
  }

  /**
   * GET a JSON resource of the endpoint's REST API (read-back, product information) with its credentials and
   * `Accept-Verbosity: verbose` (as the reference sample reads). The URL must lie under the endpoint's URL: links
   * an endpoint hands back are followed only there, so its credentials go nowhere else. Resolves with the parsed
   * body (undefined for an empty one, e.g. 204); rejects with the classified OmfError of a non-2xx.
   */
  async getJson(
    url: string,
    options: { signal?: AbortSignal; query?: Record<string, string | number | undefined> } = {},
  ): Promise<unknown> {
    const target = new URL(url);
    const base = new URL(`${this.config.url}/`);
    if (target.origin !== base.origin || !`${target.pathname}/`.toLowerCase().startsWith(base.pathname.toLowerCase()))
      throw new OmfUnexpectedReplyError(`${this.name}: a link outside the endpoint's URL was not followed`, { endpoint: this.name });
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) target.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json", "accept-verbosity": "verbose" };
    let token = await this.#authorize(headers, options.signal);
    const get = () =>
      httpExchange({
        method: "GET",
        url: target.toString(),
        headers,
        timeoutMs: this.config.timeoutMs,
        signal: options.signal,
        dispatcher: this.#agent,
        endpoint: this.name,
        what: "read request",
      });
    let res = await get();
    if (res.status === 401 && this.#tokens !== undefined) {
      this.#tokens.invalidate(token);
      token = await this.#authorize(headers, options.signal);
      res = await get();
    }
    const result = parseOmfResponse(res.status, res.headers, res.status >= 200 && res.status < 300 ? "" : res.text);
    const error = classifyResult(result, this.name);
    if (error !== undefined) throw error;
    if (res.text.trim() === "") return undefined;
    try {
      return JSON.parse(res.text) as unknown;
    } catch {
      throw new OmfUnexpectedReplyError(`${this.name}: the reply to a read is not JSON (HTTP ${res.status})`, {
        endpoint: this.name,
        status: res.status,
      });
    }
  }

  /** Sets the endpoint's authorization header; returns the bearer token used, if any. */
  async #authorize(headers: Record<string, string>, signal: AbortSignal | undefined): Promise<string | undefined> {
    if (this.config.kind === "pi") {
      const basic = Buffer.from(`${this.config.username}:${this.config.password.reveal()}`, "utf8").toString("base64");
      headers["authorization"] = `Basic ${basic}`;
    }
    if (this.#tokens === undefined) return undefined;
    const token = await this.#tokens.getToken(signal);
    headers["authorization"] = `Bearer ${token}`;
    return token;
  }

  /** POSTs one message (one request). Rejects with OmfInvalidMessageError before sending if it does not fit the version/kind. */
  async send(message: OmfMessage, options: SendOptions = {}): Promise<OmfResult> {
    const version = this.#probed ? this.#version.value : await this.omfVersion(options.signal);
    const problems = checkMessage(message, version, this.config.kind);
    if (problems.length > 0) throw new OmfInvalidMessageError(problems, { endpoint: this.name });
    const json = serializeBody(message);
    // Level 1: telemetry JSON repeats itself so much that the default level buys little size for several times the CPU.
    const body = this.config.compression ? new Uint8Array(await gzip(Buffer.from(json, "utf8"), GZIP_OPTIONS)) : json;
    const headers = omfHeaders({
      messageType: message.messageType,
      action: message.action ?? "create",
      version,
      kind: this.config.kind,
      compressed: this.config.compression,
      producerToken: this.config.producerToken?.reveal(),
      acceptVerbosity: this.config.acceptVerbosity,
    });

    let { result, token } = await this.#post(headers, body, options.signal);
    if (result.status === 401 && this.#tokens !== undefined) {
      // The token may have been revoked or expired early: fetch a fresh one and try exactly once more.
      this.#tokens.invalidate(token);
      ({ result } = await this.#post(headers, body, options.signal));
    }
    const error = classifyResult(result, this.name);
    if (error === undefined) return result;
    if (options.conflictIsSuccess && (message.action ?? "create") === "create" && error instanceof OmfConflictError && error.status === 409)
      return { ...result, ok: true, alreadyExists: true };
    throw error;
  }

  /**
   * Sends a message as as many requests as the endpoint's limits need (maxBodyBytes, maxValuesPerRequest),
   * in order, stopping at the first failure. A 413 is retried by halving (`splitInHalf`) down to single values.
   * On failure, the requests before it were delivered: resending everything may duplicate those values.
   */
  async sendBatched(message: OmfMessage, options: SendOptions = {}): Promise<OmfResult[]> {
    const batches = batchMessage(message, { maxBytes: this.config.maxBodyBytes, maxValues: this.config.maxValuesPerRequest });
    const results: OmfResult[] = [];
    for (const batch of batches) results.push(...(await this.sendSplittingOn413(batch, options)));
    return results;
  }

  /** `send`, and on 413 split the message in half and send each half (recursively). */
  async sendSplittingOn413(message: OmfMessage, options: SendOptions = {}): Promise<OmfResult[]> {
    try {
      return [await this.send(message, options)];
    } catch (err) {
      const halves = err instanceof OmfPayloadTooLargeError ? splitInHalf(message) : undefined;
      if (halves === undefined) throw err;
      const first = await this.sendSplittingOn413(halves[0], options);
      const second = await this.sendSplittingOn413(halves[1], options);
      return [...first, ...second];
    }
  }

  async #post(
    omf: Record<string, string>,
    body: Uint8Array | string,
    signal: AbortSignal | undefined,
  ): Promise<{ result: OmfResult; token?: string }> {
    const headers: Record<string, string> = { ...omf, accept: "application/json" };
    const token = await this.#authorize(headers, signal);
    const res = await httpExchange({
      method: "POST",
      url: this.config.omfUrl,
      headers,
      body,
      timeoutMs: this.config.timeoutMs,
      signal,
      dispatcher: this.#agent,
      endpoint: this.name,
      what: "OMF request",
    });
    return { result: parseOmfResponse(res.status, res.headers, res.text), token };
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** Redacted: credentials print as `[redacted]`. */
  toJSON(): Record<string, unknown> {
    return { ...this.config };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `OmfClient ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * One client per endpoint configuration. Validates all first and throws one OmfConfigError naming every problem
 * (`endpoints[1].url: …`), so nothing is half-constructed.
 */
export function createClients(inputs: readonly unknown[], options: OmfClientOptions = {}): OmfClient[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  inputs.forEach((input, i) => {
    const r = validateEndpointConfig(input, `endpoints[${i}]`);
    if (!r.ok) problems.push(...r.errors);
    else {
      const prior = names.get(r.config.name);
      if (prior !== undefined) problems.push(`endpoints[${i}].name: duplicates endpoints[${prior}].name`);
      else names.set(r.config.name, i);
    }
  });
  if (problems.length > 0) throw new OmfConfigError(problems);
  return inputs.map((input) => new OmfClient(input as OmfEndpointInput, options));
}

export type EndpointOutcome =
  | { endpoint: string; kind: OmfEndpointConfig["kind"]; ok: true; results: OmfResult[] }
  | { endpoint: string; kind: OmfEndpointConfig["kind"]; ok: false; error: OmfError | Error };

/**
 * Sends one message to many endpoints in parallel (as the reference sample sends to every configured endpoint)
 * and reports per endpoint, in the order given; never rejects. Each endpoint gets the message batched to its own
 * limits (`sendBatched`).
 */
export async function sendToEndpoints(
  clients: readonly OmfClient[],
  message: OmfMessage,
  options: SendOptions = {},
): Promise<EndpointOutcome[]> {
  const settled = await Promise.allSettled(clients.map((c) => c.sendBatched(message, options)));
  return settled.map((s, i) => {
    const c = clients[i]!;
    if (s.status === "fulfilled") return { endpoint: c.name, kind: c.kind, ok: true, results: s.value };
    const error = s.reason instanceof Error ? s.reason : new Error(String(s.reason));
    return { endpoint: c.name, kind: c.kind, ok: false, error };
  });
}

import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { gzip as gzipCb } from "node:zlib";
import { Agent } from "undici";
import { ClientCredentialsTokenProvider } from "./auth.js";
import { batchMessage, splitInHalf } from "./batching.js";
import { type OmfEndpointConfig, type OmfEndpointInput, validateEndpointConfig } from "./config.js";
import { OmfConfigError, type OmfError, OmfInvalidMessageError, OmfPayloadTooLargeError } from "./errors.js";
import { checkMessage, type OmfMessage, omfHeaders, serializeBody } from "./messages.js";
import { classifyResult, parseOmfResponse } from "./response.js";
import { httpExchange } from "./transport.js";
import type { OmfResult } from "./types.js";

const gzip = promisify(gzipCb);

export interface SendOptions {
  /** Aborts this send (rethrown as the signal's reason, not classified). */
  signal?: AbortSignal;
}

export interface OmfClientOptions {
  /** Clock for token expiry (tests). */
  now?: () => number;
}

/**
 * The OMF client for one endpoint (PI Web API, AVEVA Data Hub or Edge Data Store).
 * `send` POSTs one message and resolves with the parsed result on success, or rejects with a classified
 * error (see errors.ts). It retries on its own only once, after a 401 with a refreshed ADH token;
 * backoff is the caller's, via `@meridian/retry` (OmfServerError / OmfThrottledError say `retryable: true`).
 */
export class OmfClient {
  readonly config: OmfEndpointConfig;
  readonly #agent: Agent;
  readonly #tokens: ClientCredentialsTokenProvider | undefined;

  constructor(input: OmfEndpointInput | OmfEndpointConfig, options: OmfClientOptions = {}) {
    const validated = validateEndpointConfig(input);
    if (!validated.ok) throw new OmfConfigError(validated.errors);
    this.config = validated.config;
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

  /** POSTs one message (one request). Rejects with OmfInvalidMessageError before sending if it does not fit the version/kind. */
  async send(message: OmfMessage, options: SendOptions = {}): Promise<OmfResult> {
    const problems = checkMessage(message, this.config.omfVersion, this.config.kind);
    if (problems.length > 0) throw new OmfInvalidMessageError(problems, { endpoint: this.name });
    const json = serializeBody(message);
    const body = this.config.compression ? new Uint8Array(await gzip(Buffer.from(json, "utf8"))) : json;
    const headers = omfHeaders({
      messageType: message.messageType,
      action: message.action ?? "create",
      version: this.config.omfVersion,
      kind: this.config.kind,
      compressed: this.config.compression,
      producerToken: this.config.producerToken?.reveal(),
      acceptVerbosity: this.config.kind === "pi" ? this.config.acceptVerbosity : undefined,
    });

    let { result, token } = await this.#post(headers, body, options.signal);
    if (result.status === 401 && this.#tokens !== undefined) {
      // The token may have been revoked or expired early: fetch a fresh one and try exactly once more.
      this.#tokens.invalidate(token);
      ({ result } = await this.#post(headers, body, options.signal));
    }
    const error = classifyResult(result, this.name);
    if (error !== undefined) throw error;
    return result;
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
    if (this.config.kind === "pi") {
      const basic = Buffer.from(`${this.config.username}:${this.config.password.reveal()}`, "utf8").toString("base64");
      headers["authorization"] = `Basic ${basic}`;
    }
    let token: string | undefined;
    if (this.#tokens !== undefined) {
      token = await this.#tokens.getToken(signal);
      headers["authorization"] = `Bearer ${token}`;
    }
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

import type { Dispatcher } from "undici";
import { OmfAuthError, OmfServerError } from "./errors.js";
import type { Secret } from "./secret.js";
import { httpExchange } from "./transport.js";

export interface TokenProviderOptions {
  /** The ADH/OCS resource (`https://uswe.datahub.connect.aveva.com`). */
  resource: string;
  clientId: string;
  clientSecret: Secret;
  /** Skip discovery. */
  tokenUrl?: string;
  allowHttp: boolean;
  dispatcher: Dispatcher;
  timeoutMs: number;
  endpoint: string;
  now?: () => number;
}

/** Discovery documents and token replies are a few kilobytes; more is not an identity provider talking. */
export const AUTH_MAX_RESPONSE_BYTES = 64 * 1024;

/** Seconds a token is assumed to live when the token endpoint omits `expires_in`. */
const DEFAULT_EXPIRES_IN_S = 3600;
/** The reference sample refreshes with < 5 min left; fledge at half-life. We use whichever comes first. */
const MAX_REFRESH_MARGIN_MS = 5 * 60_000;

interface CachedToken {
  value: string;
  refreshAt: number;
}

/**
 * OAuth2 client-credentials for AVEVA Data Hub / OCS: the token endpoint is discovered from
 * `{resource}/identity/.well-known/openid-configuration`, the token cached and refreshed before expiry
 * (at min(half-life, 5 min before expiry)); concurrent callers share one fetch.
 */
export class ClientCredentialsTokenProvider {
  readonly #opts: TokenProviderOptions;
  readonly #now: () => number;
  #tokenUrl: string | undefined;
  #token: CachedToken | undefined;
  #inflight: Promise<string> | undefined;

  constructor(opts: TokenProviderOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#tokenUrl = opts.tokenUrl;
  }

  /**
   * A valid access token (cached or freshly fetched). The fetch is shared by concurrent callers, so it is bounded
   * by the endpoint timeout rather than by one caller's signal; `signal` only stops this caller waiting.
   */
  async getToken(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const cached = this.#token;
    if (cached && this.#now() < cached.refreshAt) return cached.value;
    this.#inflight ??= this.#fetchToken().finally(() => {
      this.#inflight = undefined;
    });
    const inflight = this.#inflight;
    if (signal === undefined) return inflight;
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      inflight.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** Drops `token` (after a 401) so the next getToken fetches a new one. */
  invalidate(token?: string): void {
    if (token === undefined || this.#token?.value === token) this.#token = undefined;
  }

  async #discover(): Promise<string> {
    if (this.#tokenUrl !== undefined) return this.#tokenUrl;
    const { resource, endpoint, timeoutMs, dispatcher, allowHttp } = this.#opts;
    const res = await httpExchange({
      method: "GET",
      url: `${resource}/identity/.well-known/openid-configuration`,
      headers: { accept: "application/json" },
      timeoutMs,
      dispatcher,
      endpoint,
      what: "OpenID discovery",
      maxResponseBytes: AUTH_MAX_RESPONSE_BYTES,
    });
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new OmfServerError(`OpenID discovery at ${endpoint}: HTTP ${res.status}`, { endpoint, status: res.status });
    }
    if (res.status !== 200) throw new OmfAuthError(`OpenID discovery at ${endpoint}: HTTP ${res.status}`, { endpoint, status: res.status });
    let tokenEndpoint: unknown;
    try {
      tokenEndpoint = (JSON.parse(res.text) as { token_endpoint?: unknown }).token_endpoint;
    } catch {
      tokenEndpoint = undefined;
    }
    if (typeof tokenEndpoint !== "string") throw new OmfAuthError(`OpenID discovery at ${endpoint}: no token_endpoint`, { endpoint });
    let parsed: URL;
    try {
      parsed = new URL(tokenEndpoint);
    } catch {
      throw new OmfAuthError(`OpenID discovery at ${endpoint}: token_endpoint is not a URL`, { endpoint });
    }
    // As the reference sample: the token endpoint must be https and live under the resource.
    if (parsed.protocol !== "https:" && !(allowHttp && parsed.protocol === "http:")) {
      throw new OmfAuthError(`OpenID discovery at ${endpoint}: token_endpoint is not https`, { endpoint });
    }
    if (!tokenEndpoint.toLowerCase().startsWith(`${resource.toLowerCase()}/`)) {
      throw new OmfAuthError(`OpenID discovery at ${endpoint}: token_endpoint is not under the resource URL`, { endpoint });
    }
    this.#tokenUrl = tokenEndpoint;
    return tokenEndpoint;
  }

  async #fetchToken(): Promise<string> {
    const { clientId, clientSecret, endpoint, timeoutMs, dispatcher } = this.#opts;
    const url = await this.#discover();
    const form = new URLSearchParams({ client_id: clientId, client_secret: clientSecret.reveal(), grant_type: "client_credentials" });
    const started = this.#now();
    const res = await httpExchange({
      method: "POST",
      url,
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
      timeoutMs,
      dispatcher,
      endpoint,
      what: "token request",
      maxResponseBytes: AUTH_MAX_RESPONSE_BYTES,
    });
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new OmfServerError(`token request at ${endpoint}: HTTP ${res.status}`, { endpoint, status: res.status });
    }
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown } = {};
    try {
      body = JSON.parse(res.text) as typeof body;
    } catch {
      body = {};
    }
    if (res.status !== 200) {
      // OAuth error codes (invalid_client, unauthorized_client, …) are safe to show; descriptions might echo input.
      const code = typeof body.error === "string" && /^[a-z_]{1,64}$/.test(body.error) ? ` ${body.error}` : "";
      if (res.status === 404) this.#tokenUrl = this.#opts.tokenUrl; // re-discover next time
      throw new OmfAuthError(`token request at ${endpoint}: HTTP ${res.status}${code}`, { endpoint, status: res.status });
    }
    if (typeof body.access_token !== "string" || body.access_token === "") {
      throw new OmfAuthError(`token request at ${endpoint}: response has no access_token`, { endpoint, status: res.status });
    }
    const expiresRaw = Number(body.expires_in);
    const expiresInS = Number.isFinite(expiresRaw) && expiresRaw > 0 ? expiresRaw : DEFAULT_EXPIRES_IN_S;
    const lifetimeMs = expiresInS * 1000;
    const margin = Math.min(lifetimeMs / 2, MAX_REFRESH_MARGIN_MS);
    this.#token = { value: body.access_token, refreshAt: started + lifetimeMs - margin };
    return body.access_token;
  }
}

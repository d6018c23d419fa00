import { DEFAULT_DATA_LIMIT, MAX_DATA_LIMIT, MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES, resolveOptions, TOKEN_GRACE_MS } from "./config.js";
import { OciError, OciInvalidArgumentError, OciNotAuthenticatedError } from "./errors.js";
import { createAgent, errorBody, errorForStatus, exchange, retryAfterFrom } from "./transport.js";
import type {
  DataAccessCredentials,
  DataApiClient,
  DataPage,
  DataQuery,
  DataSet,
  IotDomain,
  JsonObject,
  OciClientOptions,
  OrdsFilter,
} from "./types.js";

/** The ORDS data API's version path. */
export const DATA_API_VERSION = "20250531";

const DATA_SETS: readonly DataSet[] = ["rawData", "historizedData", "rejectedData", "snapshotData", "rawCommandData"];

/** Where the data API of a domain is, derived as manage-dt does (or from the overrides). */
export interface DataAccess {
  /** `https://<dataHost>/ords/<domainShortId>/20250531` */
  dataEndpoint: string;
  /** `https://<identity host>/oauth2/v1/token` */
  tokenEndpoint: string;
  /** `/<groupShortId>/iot/<domainShortId>` */
  scope: string;
}

/**
 * The data API's endpoints and scope for a domain. A domain whose data access was never configured (no
 * dbAllowedIdentityDomainHost: `oci iot domain configure-ords-data-access` not run) is refused as manage-dt refuses it.
 */
export function dataAccessOf(domain: IotDomain, options: Pick<OciClientOptions, "dataUrl" | "identityUrl">): DataAccess {
  if (!domain.dbAllowedIdentityDomainHost) {
    throw new OciInvalidArgumentError(
      "iotDomain.dbAllowedIdentityDomainHost",
      `ORDS data access has not been configured for IoT domain ${domain.id} (configure-ords-data-access sets the identity domain host)`,
    );
  }
  if (!domain.domainShortId) {
    throw new OciInvalidArgumentError("iotDomain.deviceHost", `IoT domain ${domain.id} has no device host, so no domain short id`);
  }
  if (!domain.groupShortId) {
    throw new OciInvalidArgumentError(
      "iotDomain.dataHost",
      `the domain group of IoT domain ${domain.id} has no data host, so no group short id`,
    );
  }
  const dataBase = options.dataUrl ?? (domain.dataHost ? `https://${domain.dataHost}` : undefined);
  if (!dataBase) throw new OciInvalidArgumentError("iotDomain.dataHost", `the domain group of IoT domain ${domain.id} has no data host`);
  const identityBase = options.identityUrl ?? `https://${domain.dbAllowedIdentityDomainHost}`;
  return {
    dataEndpoint: `${dataBase}/ords/${domain.domainShortId}/${DATA_API_VERSION}`,
    tokenEndpoint: `${identityBase}/oauth2/v1/token`,
    scope: `/${domain.groupShortId}/iot/${domain.domainShortId}`,
  };
}

/**
 * `q` for a query: `{"$and":[{"digital_twin_instance_id": id}, ...filters], "$orderby": {...}}`; undefined when the
 * query has neither conditions nor order (ORDS then lists everything).
 */
export function buildQ(query: DataQuery): JsonObject | undefined {
  const conditions: OrdsFilter[] = [];
  if (query.digitalTwinInstanceId !== undefined) {
    if (typeof query.digitalTwinInstanceId !== "string" || query.digitalTwinInstanceId === "") {
      throw new OciInvalidArgumentError("digitalTwinInstanceId", "must be an OCID");
    }
    conditions.push({ digital_twin_instance_id: query.digitalTwinInstanceId });
  }
  for (const [i, f] of (query.filter ?? []).entries()) {
    if (typeof f !== "object" || f === null || Array.isArray(f)) throw new OciInvalidArgumentError(`filter[${i}]`, "must be an object");
    conditions.push(f);
  }
  const q: JsonObject = {};
  if (conditions.length > 0) q.$and = conditions;
  if (query.orderBy !== undefined) {
    for (const [field, dir] of Object.entries(query.orderBy)) {
      if (dir !== "asc" && dir !== "desc") throw new OciInvalidArgumentError(`orderBy.${field}`, 'must be "asc" or "desc"');
    }
    if (Object.keys(query.orderBy).length > 0) q.$orderby = query.orderBy;
  }
  return Object.keys(q).length > 0 ? q : undefined;
}

function checkLimit(query: DataQuery): { limit: number; offset: number } {
  const limit = query.limit ?? DEFAULT_DATA_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DATA_LIMIT) {
    throw new OciInvalidArgumentError("limit", `must be an integer from 1 to ${MAX_DATA_LIMIT} (got ${limit})`);
  }
  const offset = query.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OciInvalidArgumentError("offset", `must be an integer ≥ 0 (got ${offset})`);
  return { limit, offset };
}

function checkDataSet(dataSet: string): void {
  if (!DATA_SETS.includes(dataSet as DataSet)) {
    throw new OciInvalidArgumentError("dataSet", `unknown data set ${JSON.stringify(dataSet)} (one of ${DATA_SETS.join(", ")})`);
  }
}

function malformed(what: string, problem: string): OciError {
  return new OciError(`${what}: the answer is not what the data API sends (${problem})`, { code: "MalformedResponse" });
}

/** ORDS's collection envelope, read: items and the paging fields (limit/offset/count default from the page itself). */
export function readEnvelope(text: string, what: string, asked: { limit: number; offset: number }): DataPage {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw malformed(what, "not JSON");
  }
  if (typeof body !== "object" || body === null || !Array.isArray((body as { items?: unknown }).items)) {
    throw malformed(what, "no items array");
  }
  const env = body as { items: unknown[]; hasMore?: unknown; limit?: unknown; offset?: unknown; count?: unknown };
  const items = env.items.filter((row): row is JsonObject => typeof row === "object" && row !== null && !Array.isArray(row));
  if (items.length !== env.items.length) throw malformed(what, "an item is not an object");
  const num = (v: unknown, fallback: number) => (typeof v === "number" && Number.isFinite(v) ? v : fallback);
  return {
    items,
    hasMore: env.hasMore === true,
    limit: num(env.limit, asked.limit),
    offset: num(env.offset, asked.offset),
    count: num(env.count, items.length),
  };
}

interface Token {
  value: string;
  /** When it is renewed (TOKEN_GRACE_MS before it expires). */
  renewAt: number;
}

/**
 * The identity-domain token for the data API: password grant with the confidential application's Basic auth and
 * scope /<groupShortId>/iot/<domainShortId>, as manage-dt asks for it. Cached until TOKEN_GRACE_MS before it expires;
 * callers at the same moment share one token request; `invalidate()` after ORDS refused it.
 */
export class TokenSource {
  #token: Token | undefined;
  #pending: Promise<Token> | undefined;

  constructor(
    private readonly access: DataAccess,
    private readonly credentials: DataAccessCredentials,
    private readonly send: typeof exchange,
    private readonly request: { timeoutMs: number; agent: Parameters<typeof exchange>[0]["agent"] },
    private readonly now: () => number = Date.now,
  ) {}

  async get(signal?: AbortSignal): Promise<string> {
    const t = this.#token;
    if (t && this.now() < t.renewAt) return t.value;
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    const pending = this.#pending;
    if (!signal) return (await pending).value;
    signal.throwIfAborted();
    // A caller's abort ends its own wait, never the shared request.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return (await Promise.race([pending, aborted])).value;
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  /** Drops the token ORDS refused, unless another caller has already replaced it. */
  invalidate(value: string): void {
    if (this.#token?.value === value) this.#token = undefined;
  }

  async #fetch(): Promise<Token> {
    const what = "POST oauth2/v1/token";
    const basic = Buffer.from(`${this.credentials.clientId}:${this.credentials.clientSecret}`).toString("base64");
    const form = new URLSearchParams({
      grant_type: "password",
      username: this.credentials.username,
      password: this.credentials.password,
      scope: this.access.scope,
    });
    const started = this.now();
    const res = await this.send({
      method: "POST",
      url: this.access.tokenEndpoint,
      headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
      timeoutMs: this.request.timeoutMs,
      maxBytes: MAX_ERROR_BODY_BYTES,
      agent: this.request.agent,
      what,
    });
    if (res.status < 200 || res.status >= 300) {
      const body = errorBody(res.text);
      // The identity domain answers a wrong client, user or scope with 400 or 401 (RFC 6749): either way no token.
      if (res.status === 400 || res.status === 401) {
        throw new OciNotAuthenticatedError(
          `${what}: the identity domain refused the data API credentials: ${body.code ?? "error"}${body.message ? ` (${body.message})` : ""} (HTTP ${res.status})`,
          { status: res.status, ...(body.code === undefined ? {} : { code: body.code }) },
        );
      }
      throw errorForStatus(res.status, body, { resource: this.access.tokenEndpoint, what }, retryAfterFrom(res.headers));
    }
    let token: { access_token?: unknown; expires_in?: unknown };
    try {
      token = JSON.parse(res.text) as typeof token;
    } catch {
      throw malformed(what, "not JSON");
    }
    if (typeof token.access_token !== "string" || token.access_token === "") throw malformed(what, "no access_token");
    const expiresInMs = (typeof token.expires_in === "number" && token.expires_in > 0 ? token.expires_in : 3600) * 1000;
    // A short-lived token is renewed at half its life rather than never.
    const renewIn = expiresInMs > 2 * TOKEN_GRACE_MS ? expiresInMs - TOKEN_GRACE_MS : expiresInMs / 2;
    this.#token = { value: token.access_token, renewAt: started + renewIn };
    return this.#token;
  }
}

/**
 * The ORDS data API of one IoT domain: rawData, historizedData, rejectedData, snapshotData, rawCommandData, with
 * the identity-domain token (renewed before it expires, and once when ORDS answers 401).
 */
export function createDataApiClient(domain: IotDomain, credentials: DataAccessCredentials, options: OciClientOptions): DataApiClient {
  const resolved = resolveOptions(options);
  const access = dataAccessOf(domain, resolved);
  for (const field of ["clientId", "clientSecret", "username", "password"] as const) {
    if (!credentials[field]) throw new OciInvalidArgumentError(`credentials.${field}`, "required for the data API");
  }
  const agent = createAgent(options.caPem);
  const tokens = new TokenSource(access, credentials, exchange, { timeoutMs: resolved.timeoutMs, agent });

  async function getJson(path: string, what: string, resource: string, signal: AbortSignal | undefined, field?: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const token = await tokens.get(signal);
      const res = await exchange({
        method: "GET",
        url: `${access.dataEndpoint}/${path}`,
        headers: { authorization: `Bearer ${token}`, accept: "application/json" },
        timeoutMs: resolved.timeoutMs,
        maxBytes: MAX_RESPONSE_BYTES,
        agent,
        what,
        ...(signal ? { signal } : {}),
      });
      if (res.status >= 200 && res.status < 300) return res.text;
      // A token the identity domain revoked or that expired early: one new token, then the 401 stands.
      if (res.status === 401 && attempt === 0) {
        tokens.invalidate(token);
        continue;
      }
      throw errorForStatus(res.status, errorBody(res.text), { resource, what, ...(field ? { field } : {}) }, retryAfterFrom(res.headers));
    }
  }

  return {
    async query(dataSet, query, signal) {
      checkDataSet(dataSet);
      const paging = checkLimit(query);
      const q = buildQ(query);
      const params = new URLSearchParams();
      if (q) params.set("q", JSON.stringify(q));
      params.set("limit", String(paging.limit));
      params.set("offset", String(paging.offset));
      const what = `GET ${dataSet}`;
      const text = await getJson(`${dataSet}?${params.toString()}`, what, dataSet, signal, "q");
      return readEnvelope(text, what, paging);
    },

    async get(dataSet, id, signal) {
      checkDataSet(dataSet);
      if ((dataSet as DataSet) === "snapshotData") throw new OciInvalidArgumentError("dataSet", "snapshotData rows have no id");
      if (!Number.isSafeInteger(id) || id < 0) throw new OciInvalidArgumentError("id", `must be a row id (an integer ≥ 0), got ${id}`);
      const what = `GET ${dataSet}/${id}`;
      const text = await getJson(`${dataSet}/${id}`, what, `${dataSet}/${id}`, signal);
      let row: unknown;
      try {
        row = JSON.parse(text);
      } catch {
        throw malformed(what, "not JSON");
      }
      if (typeof row !== "object" || row === null || Array.isArray(row)) throw malformed(what, "not an object");
      return row as JsonObject;
    },

    async close() {
      await agent.close();
    },
  };
}

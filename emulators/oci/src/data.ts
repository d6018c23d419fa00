/**
 * The data listener: the identity domain's token endpoint (`POST /oauth2/v1/token`, password grant with the
 * confidential app's Basic credentials) and the ORDS data API under `/ords/{domainShortId}/20250531/` (§3) with
 * its Bearer check, `q` filter, `limit`/`offset` paging and the ORDS collection envelope.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, basicCredentials, injectHttpFault, isAdminPath, readBody, safeEqual, sendJson } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import type { Clock } from "./clock.js";
import type { OciFaults } from "./faults.js";
import { OrdsQueryError, parseOrdsQuery, sortRows, toIsoMicros } from "./ords-filter.js";
import type { HistorizedRow, OciStore, RawRow, RejectedRow } from "./store.js";

export interface DataAccess {
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
}

export interface DataOptions {
  store: OciStore;
  clock: Clock;
  faults: OciFaults;
  admin: AdminSurface;
  access: DataAccess;
  /** Lifetime of issued tokens; the admin surface may change it. */
  tokenLifetime: { seconds: number };
  log: Logger;
  record(operation: string, status: number): void;
}

export const ORDS_DEFAULT_LIMIT = 25;
export const ORDS_MAX_LIMIT = 500;
const BODY_LIMIT = 64 * 1024;

export function scopeOf(store: OciStore): string {
  return `/${store.domain.groupShortId}/iot/${store.domain.domainShortId}`;
}

/** Issues a bearer token for `scope`, valid `seconds` (negative: already expired, for tests). */
export function issueToken(store: OciStore, clock: Clock, scope: string, seconds: number): string {
  const token = randomBytes(32).toString("base64url");
  store.tokens.set(token, { scope, expiresAtMs: clock.nowMs() + seconds * 1000 });
  // Expired tokens are dropped now and then so the map stays small.
  if (store.tokens.size > 10_000) for (const [t, v] of store.tokens) if (v.expiresAtMs < clock.nowMs()) store.tokens.delete(t);
  return token;
}

class OrdsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

type Row = Record<string, unknown>;

const rawView = (r: RawRow, withContent: boolean): Row => ({
  id: r.id,
  digital_twin_instance_id: r.digital_twin_instance_id,
  endpoint: r.endpoint,
  content_type: r.content_type,
  time_received: toIsoMicros(r.time_received),
  ...(withContent ? { content: r.content } : {}),
});

const rejectedView = (r: RejectedRow, withContent: boolean): Row => ({
  ...rawView(r, false),
  reason_code: r.reason_code,
  reason_message: r.reason_message,
  ...(withContent ? { content: r.content } : {}),
});

const historizedView = (r: HistorizedRow): Row => ({
  id: r.id,
  digital_twin_instance_id: r.digital_twin_instance_id,
  content_path: r.content_path,
  value: r.value,
  time_observed: toIsoMicros(r.time_observed),
});

interface DataSet {
  list(): Row[];
  get?(id: number): Row | undefined;
}

/**
 * Rows never change once written, so each row's list view is made once: a poll over a large table then filters
 * ready rows instead of formatting every time again.
 */
function cached<R extends object>(view: (r: R) => Row): (r: R) => Row {
  const cache = new WeakMap<R, Row>();
  return (r) => {
    let v = cache.get(r);
    if (!v) {
      v = view(r);
      cache.set(r, v);
    }
    return v;
  };
}

function dataSets(store: OciStore): Record<string, DataSet> {
  const raw = cached((r: RawRow) => rawView(r, false));
  const rejected = cached((r: RejectedRow) => rejectedView(r, false));
  const historized = cached(historizedView);
  return {
    rawData: { list: () => store.raw.rows.map(raw), get: (id) => maybe(store.raw.get(id), (r) => rawView(r, true)) },
    rejectedData: {
      list: () => store.rejected.rows.map(rejected),
      get: (id) => maybe(store.rejected.get(id), (r) => rejectedView(r, true)),
    },
    historizedData: { list: () => store.historized.rows.map(historized), get: (id) => maybe(store.historized.get(id), historizedView) },
    snapshotData: {
      list: () => {
        const rows: Row[] = [];
        for (const [instance, paths] of store.snapshot)
          for (const [path, v] of paths)
            rows.push({
              digital_twin_instance_id: instance,
              content_path: path,
              value: v.value,
              time_observed: toIsoMicros(v.time_observed),
            });
        return rows;
      },
    },
    // Commands are not emulated: the data set exists and is empty.
    rawCommandData: { list: () => [], get: () => undefined },
  };
}

function maybe<T>(v: T | undefined, f: (v: T) => Row): Row | undefined {
  return v === undefined ? undefined : f(v);
}

function wholeNumber(text: string | null, name: string, def: number): number {
  if (text === null) return def;
  if (!/^\d{1,9}$/.test(text)) throw new OrdsError(400, "BadRequest", `${name} must be a whole number.`);
  return Number(text);
}

export function createDataHandler(o: DataOptions) {
  const sets = dataSets(o.store);

  const token = async (req: IncomingMessage): Promise<Row> => {
    const body = await readBody(req, BODY_LIMIT);
    if (body.tooLarge) throw new OAuthError(400, "invalid_request", "The request body is too large.");
    const form = new URLSearchParams(body.buf.toString("utf8"));
    const basic = basicCredentials(req.headers.authorization);
    const clientId = basic?.username ?? form.get("client_id") ?? "";
    const clientSecret = basic?.password ?? form.get("client_secret") ?? "";
    if (!safeEqual(clientId, o.access.clientId) || !safeEqual(clientSecret, o.access.clientSecret))
      throw new OAuthError(401, "invalid_client", "Client authentication failed.");
    const grant = form.get("grant_type");
    if (grant !== "password") throw new OAuthError(400, "unsupported_grant_type", "Only grant_type=password is emulated.");
    if (!safeEqual(form.get("username") ?? "", o.access.username) || !safeEqual(form.get("password") ?? "", o.access.password))
      throw new OAuthError(400, "invalid_grant", "The user name or password is not valid.");
    const scope = form.get("scope") ?? "";
    if (scope !== scopeOf(o.store))
      throw new OAuthError(400, "invalid_scope", `The scope ${scope || "(none)"} is not granted to this client.`);
    const seconds = o.tokenLifetime.seconds;
    return { access_token: issueToken(o.store, o.clock, scope, seconds), token_type: "Bearer", expires_in: seconds };
  };

  const authorize = (req: IncomingMessage, domainShortId: string): void => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (!m) throw new OrdsError(401, "Unauthorized", "A bearer token is required.");
    const t = o.store.tokens.get(m[1]!);
    if (!t) throw new OrdsError(401, "Unauthorized", "The bearer token is not valid.");
    if (t.expiresAtMs <= o.clock.nowMs()) throw new OrdsError(401, "Unauthorized", "The bearer token has expired.");
    if (t.scope !== `/${o.store.domain.groupShortId}/iot/${domainShortId}`)
      throw new OrdsError(401, "Unauthorized", "The bearer token's scope does not cover this IoT domain.");
  };

  const list = (url: URL, set: DataSet): Row => {
    const q = url.searchParams.get("q") ?? undefined;
    let query: ReturnType<typeof parseOrdsQuery>;
    try {
      query = parseOrdsQuery(q);
    } catch (err) {
      if (err instanceof OrdsQueryError) throw new OrdsError(400, "BadRequest", `q: ${err.message}`);
      throw err;
    }
    const limit = Math.min(wholeNumber(url.searchParams.get("limit"), "limit", ORDS_DEFAULT_LIMIT), ORDS_MAX_LIMIT);
    if (limit < 1) throw new OrdsError(400, "BadRequest", "limit must be at least 1.");
    const offset = wholeNumber(url.searchParams.get("offset"), "offset", 0);
    const rows = sortRows(
      set.list().filter((r) => query.matches(r)),
      query.orderBy,
    );
    const items = rows.slice(offset, offset + limit);
    const hasMore = offset + limit < rows.length;
    const href = (off: number) => {
      const u = new URL(url.href);
      u.searchParams.set("offset", String(off));
      u.searchParams.set("limit", String(limit));
      return u.href;
    };
    const links = [
      { rel: "self", href: url.href },
      {
        rel: "describedby",
        href: `${url.origin}${url.pathname.replace(/\/[^/]+$/, "")}/metadata-catalog${url.pathname.slice(url.pathname.lastIndexOf("/"))}`,
      },
      { rel: "first", href: href(0) },
      ...(offset > 0 ? [{ rel: "prev", href: href(Math.max(0, offset - limit)) }] : []),
      ...(hasMore ? [{ rel: "next", href: href(offset + limit) }] : []),
    ];
    return { items, hasMore, limit, offset, count: items.length, links };
  };

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = req.headers.host ?? "localhost";
    const url = new URL(req.url ?? "/", `${"encrypted" in req.socket ? "https" : "http"}://${host}`);
    if (isAdminPath(url.pathname)) return o.admin.handle(req, res, url);
    const method = (req.method ?? "GET").toUpperCase();
    let operation = "unknown";
    try {
      if (url.pathname === "/oauth2/v1/token") {
        operation = "token";
        if (method !== "POST") throw new OAuthError(405, "invalid_request", "Use POST.");
        if (await fault(req, res, operation, url.pathname)) return;
        const answer = await token(req);
        o.record(operation, 200);
        return sendJson(res, 200, answer, { "Cache-Control": "no-store" });
      }
      const m = /^\/ords\/([^/]+)\/20250531\/([^/]+)(?:\/([^/]+))?\/?$/.exec(url.pathname);
      if (!m) throw new OrdsError(404, "NotFound", `No such resource ${url.pathname}.`);
      const [, domainShortId, dataSet, id] = m;
      operation = dataSet!;
      if (method !== "GET") throw new OrdsError(405, "MethodNotAllowed", `${method} is not allowed on ${url.pathname}.`);
      authorize(req, domainShortId!);
      if (await fault(req, res, operation, url.pathname)) return;
      if (domainShortId !== o.store.domain.domainShortId) throw new OrdsError(404, "NotFound", `No such resource ${url.pathname}.`);
      const set = sets[dataSet!];
      if (!set) throw new OrdsError(404, "NotFound", `No such resource ${url.pathname}.`);
      if (id === undefined) {
        const body = list(url, set);
        o.record(operation, 200);
        return sendJson(res, 200, body);
      }
      const n = /^\d{1,15}$/.test(id) ? Number(id) : Number.NaN;
      const row = set.get && !Number.isNaN(n) ? set.get(n) : undefined;
      if (!row) throw new OrdsError(404, "NotFound", `No ${dataSet} row ${id}.`);
      o.record(operation, 200);
      // [I] ORDS adds links to a single item as well.
      return sendJson(res, 200, { ...row, links: [{ rel: "self", href: url.href }] });
    } catch (err) {
      if (err instanceof OAuthError) {
        o.record(operation, err.status);
        return sendJson(res, err.status, { error: err.error, error_description: err.message });
      }
      if (err instanceof OrdsError) {
        o.record(operation, err.status);
        return sendJson(res, err.status, {
          code: err.code,
          message: err.message,
          type: `tag:oracle.com,2020:error/${err.code}`,
          instance: `tag:oracle.com,2020:ecid/${randomBytes(12).toString("base64url")}`,
        });
      }
      o.log.error({ err, operation }, "data request failed");
      o.record(operation, 500);
      if (!res.headersSent) sendJson(res, 500, { code: "InternalServerError", message: "Internal error." });
      else res.destroy();
    }
  };

  async function fault(req: IncomingMessage, res: ServerResponse, operation: string, path: string): Promise<boolean> {
    const { decision } = o.faults.decide("data", operation, path);
    const injected = await injectHttpFault(decision, req, res, {
      statusBody: (status) => ({ code: status === 429 ? "TooManyRequests" : "InternalServerError", message: `Injected fault ${status}.` }),
    });
    if (injected) o.record(operation, decision.kind === "status" ? decision.status : 0);
    return injected;
  }
}

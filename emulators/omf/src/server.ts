import { randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { badRequest, OmfFailure } from "./errors.js";
import { FaultConfigSchema, type FaultDecision, Faults } from "./faults.js";
import type { Profile, ResolvedOptions } from "./options.js";
import { type Action, type MessageResult, type MessageType, type OmfRequest, processMessages } from "./process.js";
import { piRead, type Reply, sdsRead } from "./readback.js";
import { piMessages, piOverallStatus, sdsError } from "./render.js";
import { type Scope, Store } from "./store.js";
import { Tokens } from "./tokens.js";

const gunzipAsync = promisify(gunzip);

export interface Counters {
  requests: number;
  omfRequests: number;
  acceptedRequests: number;
  rejectedRequests: number;
  acceptedMessages: number;
  rejectedMessages: number;
  valuesWritten: number;
  bytesReceived: number;
  tokensIssued: number;
  authFailures: number;
  byStatus: Record<string, number>;
  byProfile: Record<Profile, { omfRequests: number; acceptedMessages: number; rejectedMessages: number; valuesWritten: number }>;
  faults: { latency: number; status: number; drop: number; hang: number; partial: number };
}

function newCounters(): Counters {
  const p = () => ({ omfRequests: 0, acceptedMessages: 0, rejectedMessages: 0, valuesWritten: 0 });
  return {
    requests: 0,
    omfRequests: 0,
    acceptedRequests: 0,
    rejectedRequests: 0,
    acceptedMessages: 0,
    rejectedMessages: 0,
    valuesWritten: 0,
    bytesReceived: 0,
    tokensIssued: 0,
    authFailures: 0,
    byStatus: {},
    byProfile: { pi: p(), adh: p(), eds: p() },
    faults: { latency: 0, status: 0, drop: 0, hang: 0, partial: 0 },
  };
}

const OMF_HEADERS = ["messagetype", "messageformat", "omfversion", "action", "compression", "producertoken"] as const;
const HEADER_CODES = { messagetype: 2005, messageformat: 2006, omfversion: 2007, action: 2003, compression: 2004 } as const;

interface Route {
  profile?: Profile;
  kind: "admin" | "pi" | "sds" | "identity" | "edsinfo" | "notfound";
  /** Segments after /piwebapi, or after /api/v1/tenants/{t}/namespaces/{n}. */
  rest: string[];
  tenant?: string;
  namespace?: string;
  /** "/adh" or "/eds" when the client used a profile prefix. */
  prefix: string;
  isOmf: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The request handler and all state of one emulator instance. */
export class Emulator {
  readonly store = new Store();
  readonly faults = new Faults();
  readonly tokens = new Tokens();
  counters = newCounters();
  private seq = 0;
  private readonly hanging = new Set<IncomingMessage>();
  closing = false;

  constructor(
    readonly opts: ResolvedOptions,
    readonly caPem?: string,
  ) {
    if (opts.faults) this.faults.set(FaultConfigSchema.parse(opts.faults));
  }

  reset(): void {
    this.store.reset();
    this.faults.clear();
    this.counters = newCounters();
  }

  /** Destroys sockets held by the `hang` fault (used at stop). */
  releaseHanging(): void {
    for (const r of this.hanging) r.socket.destroy();
    this.hanging.clear();
  }

  /** Handler for the optional plain-HTTP admin listener: `/_emulator/*` only. */
  handleAdminOnly = (req: IncomingMessage, res: ServerResponse): void => {
    if (!(req.url ?? "").toLowerCase().startsWith("/_emulator")) {
      send(res, 404, { error: "this port serves /_emulator/* only" });
      return;
    }
    this.handle(req, res);
  };

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const requestId = `${++this.seq}`;
    let route: Route | undefined;
    let fault: string | undefined;
    let messages: number | undefined;
    res.on("finish", () => {
      this.counters.byStatus[res.statusCode] = (this.counters.byStatus[res.statusCode] ?? 0) + 1;
      this.opts.onRequest?.({
        requestId,
        method: req.method ?? "",
        path: (req.url ?? "").split("?")[0]!,
        status: res.statusCode,
        profile: route?.profile,
        ms: Math.round((performance.now() - started) * 10) / 10,
        fault,
        messages,
      });
    });
    const run = async () => {
      this.counters.requests++;
      const url = new URL(req.url ?? "/", "http://emulator");
      route = this.route(req.method ?? "GET", url.pathname);
      if (route.kind === "admin") return this.admin(req, res, route.rest, url.searchParams);
      const decision = this.faults.decide(route.profile, route.isOmf);
      if (decision.latencyMs > 0) {
        this.counters.faults.latency++;
        await sleep(decision.latencyMs);
      }
      if (decision.kind !== "none" && decision.kind !== "partial") {
        fault = decision.kind;
        return this.injectFault(req, res, route, decision);
      }
      if (decision.kind === "partial") fault = "partial";
      switch (route.kind) {
        case "pi":
          return this.pi(req, res, route, url, decision.kind === "partial", (n) => {
            messages = n;
          });
        case "sds":
          return this.sds(req, res, route, url, decision.kind === "partial", (n) => {
            messages = n;
          });
        case "identity":
          return this.identity(req, res, route);
        case "edsinfo":
          return send(res, 200, {
            "Product Name": "Edge Data Store",
            "Product Version": "1.1.1.46 (Meridian OMF emulator)",
            "Operating System": process.platform,
          });
        default:
          return send(res, 404, { Errors: [`No resource at ${url.pathname}`] });
      }
    };
    run().catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { Errors: [`Emulator error: ${(err as Error).message}`] });
      else res.destroy();
    });
  };

  private route(method: string, path: string): Route {
    let p = path.replace(/\/+$/, "") || "/";
    let prefix = "";
    let forced: Profile | undefined;
    const lower = p.toLowerCase();
    if (lower.startsWith("/_emulator")) return { kind: "admin", rest: p.split("/").filter(Boolean).slice(1), prefix, isOmf: false };
    if (lower.startsWith("/adh/") || lower.startsWith("/eds/")) {
      prefix = p.slice(0, 4);
      forced = lower.slice(1, 4) as Profile;
      p = p.slice(4);
    }
    const seg = p.split("/").filter(Boolean).map(safeDecode);
    const s = seg.map((x) => x.toLowerCase());
    if (s[0] === "piwebapi" && !forced) {
      const rest = seg.slice(1);
      return { kind: "pi", profile: "pi", rest, prefix, isOmf: method === "POST" && rest.length === 1 && s[1] === "omf" };
    }
    if (s[0] === "identity" && forced !== "eds") return { kind: "identity", profile: "adh", rest: seg.slice(1), prefix, isOmf: false };
    if (s[0] === "api" && s[1] === "v1") {
      if (s[2] === "diagnostics" && s[3] === "productinformation" && forced !== "adh")
        return { kind: "edsinfo", profile: "eds", rest: [], prefix, isOmf: false };
      if (s[2] === "tenants" && s[4] === "namespaces" && seg.length >= 6) {
        const tenant = seg[3]!;
        const namespace = seg[5]!;
        const isDefault = s[3] === "default" && s[5] === "default";
        const profile: Profile = forced ?? (isDefault ? "eds" : "adh");
        if (profile === "eds" && !isDefault) return { kind: "notfound", profile, rest: [], prefix, isOmf: false };
        const rest = seg.slice(6);
        return { kind: "sds", profile, rest, tenant, namespace, prefix, isOmf: method === "POST" && rest.length === 1 && s[6] === "omf" };
      }
    }
    return { kind: "notfound", rest: [], prefix, isOmf: false };
  }

  // ---------------------------------------------------------------------------------------------- faults

  private async injectFault(req: IncomingMessage, res: ServerResponse, route: Route, d: FaultDecision): Promise<void> {
    if (d.kind === "drop") {
      this.counters.faults.drop++;
      await drain(req);
      req.socket.destroy();
      return;
    }
    if (d.kind === "hang") {
      this.counters.faults.hang++;
      await drain(req);
      this.hanging.add(req);
      const end = Date.now() + d.hangMs;
      while (Date.now() < end && !this.closing && !req.socket.destroyed) await sleep(Math.min(50, end - Date.now()));
      this.hanging.delete(req);
      req.socket.destroy();
      return;
    }
    if (d.kind === "status") {
      this.counters.faults.status++;
      await drain(req);
      const headers: Record<string, string> = {};
      if (d.retryAfterSeconds !== undefined) headers["Retry-After"] = String(d.retryAfterSeconds);
      const text = d.status === 429 ? "Too many requests" : "Service unavailable";
      const body =
        d.body !== undefined
          ? d.body
          : route.profile === "pi"
            ? { Errors: [`${text} (injected fault ${d.status})`] }
            : sdsError(
                randomUUID(),
                new OmfFailure(d.status, `${text} (injected fault ${d.status})`, {
                  resolution: "Retry later, honouring Retry-After if present.",
                }),
              );
      this.counters.rejectedRequests++;
      send(res, d.status, body, headers);
    }
  }

  // ---------------------------------------------------------------------------------------------- PI Web API

  private async pi(req: IncomingMessage, res: ServerResponse, route: Route, url: URL, partial: boolean, note: (n: number) => void) {
    const method = req.method ?? "GET";
    const user = this.piUser(req.headers.authorization);
    if (!user) {
      this.counters.authFailures++;
      await drain(req);
      return send(
        res,
        401,
        { Message: "Authorization has been denied for this request." },
        { "WWW-Authenticate": 'Basic realm="PI Web API"' },
      );
    }
    if (this.opts.piCsrfDefense && ["POST", "PUT", "PATCH", "DELETE"].includes(method) && !req.headers["x-requested-with"]) {
      await drain(req);
      return send(res, this.opts.piCsrfStatus, {
        Errors: ["The request is missing the 'X-Requested-With' header required by the CSRF defense (EnableCSRFDefense)."],
      });
    }
    const base = `${this.baseUrl(req, route)}/piwebapi`;
    if (route.isOmf) {
      if (user.readOnly) {
        await drain(req);
        const f = new OmfFailure(403, `User '${user.username}' has insufficient permissions to write OMF data.`, {
          eventCode: -1004,
          reason: "InsufficientPermissions",
        });
        return send(res, 403, piMessages(randomUUID(), [{ index: null, status: 403, failure: f, warnings: [] }], this.opts.piEventKey));
      }
      return this.omf(req, res, "pi", this.store.pi, partial, note);
    }
    if (route.rest.length === 1 && route.rest[0]!.toLowerCase() === "omf") {
      await drain(req);
      return send(res, 405, { Message: `The requested resource does not support http method '${method}'.` });
    }
    if (method !== "GET") {
      await drain(req);
      return send(res, 405, { Message: `The requested resource does not support http method '${method}'.` });
    }
    const reply = piRead(
      { scope: this.store.pi, base, dataServerName: this.opts.piDataServerName },
      route.rest.join("/"),
      url.searchParams,
    );
    return sendReply(res, reply);
  }

  private piUser(authorization: string | undefined) {
    const m = authorization ? /^Basic\s+(\S+)$/i.exec(authorization.trim()) : null;
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i < 0) return undefined;
    const username = decoded.slice(0, i);
    const password = decoded.slice(i + 1);
    return this.opts.piUsers.find((u) => u.username.toLowerCase() === username.toLowerCase() && safeEqual(u.password, password));
  }

  // ---------------------------------------------------------------------------------------------- ADH / EDS

  private async sds(req: IncomingMessage, res: ServerResponse, route: Route, url: URL, partial: boolean, note: (n: number) => void) {
    const profile = route.profile!;
    if (profile === "adh") {
      const check = this.tokens.check(req.headers.authorization);
      if (!check.ok) {
        this.counters.authFailures++;
        await drain(req);
        const challenge =
          check.reason === "missing"
            ? 'Bearer realm="AVEVA Data Hub"'
            : `Bearer error="invalid_token", error_description="${check.reason === "expired" ? "The token expired" : "The token is not valid"}"`;
        return send(
          res,
          401,
          sdsError(
            randomUUID(),
            new OmfFailure(401, check.reason === "expired" ? "The access token has expired." : "Authentication is required."),
          ),
          { "WWW-Authenticate": challenge },
        );
      }
      if (this.opts.adhTenantId && route.tenant!.toLowerCase() !== this.opts.adhTenantId.toLowerCase()) {
        await drain(req);
        return send(res, 403, sdsError(randomUUID(), new OmfFailure(403, `The client is not authorized for tenant '${route.tenant}'.`)));
      }
    }
    const scope = profile === "eds" ? this.store.eds : this.store.adhScope(route.tenant!, route.namespace!, true)!;
    if (route.isOmf) return this.omf(req, res, profile, scope, partial, note);
    if (req.method !== "GET") {
      await drain(req);
      return send(res, 405, sdsError(randomUUID(), new OmfFailure(405, `Method ${req.method} is not supported here.`)));
    }
    const verbose = this.opts.sdsDefaultVerbose || (req.headers["accept-verbosity"] ?? "").toString().toLowerCase() === "verbose";
    const reply = sdsRead(
      { scope, verbose, normalizeTimestamps: this.opts.sdsNormalizeTimestamps, tenant: route.tenant!, namespace: route.namespace! },
      route.rest,
      url.searchParams,
    );
    return sendReply(res, reply);
  }

  private async identity(req: IncomingMessage, res: ServerResponse, route: Route) {
    const path = route.rest.join("/").toLowerCase();
    const base = `${this.baseUrl(req, route)}/identity`;
    if (req.method === "GET" && path === ".well-known/openid-configuration") {
      return send(res, 200, {
        issuer: base,
        token_endpoint: `${base}/connect/token`,
        jwks_uri: `${base}/.well-known/openid-configuration/jwks`,
        grant_types_supported: ["client_credentials"],
        token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
        response_types_supported: ["token"],
        scopes_supported: ["ocsapi"],
      });
    }
    if (req.method === "POST" && path === "connect/token") {
      const raw = await readAll(req, 64 * 1024);
      const form = new URLSearchParams(raw ? raw.toString("utf8") : "");
      let clientId = form.get("client_id");
      let clientSecret = form.get("client_secret");
      const basic = req.headers.authorization ? /^Basic\s+(\S+)$/i.exec(req.headers.authorization) : null;
      if (basic) {
        const [id, ...secret] = Buffer.from(basic[1]!, "base64").toString("utf8").split(":");
        clientId = decodeURIComponent(id ?? "");
        clientSecret = decodeURIComponent(secret.join(":"));
      }
      const grant = form.get("grant_type");
      if (!grant) return send(res, 400, { error: "invalid_request", error_description: "grant_type is required" });
      if (grant !== "client_credentials") return send(res, 400, { error: "unsupported_grant_type" });
      const ok = this.opts.adhClients.some((c) => c.clientId === clientId && safeEqual(c.clientSecret, clientSecret ?? ""));
      if (!ok) {
        this.counters.authFailures++;
        return send(res, 400, { error: "invalid_client" });
      }
      const { token, expiresIn } = this.tokens.issue(clientId!, this.opts.tokenLifetimeSeconds, base);
      this.counters.tokensIssued++;
      return send(
        res,
        200,
        { access_token: token, expires_in: expiresIn, token_type: "Bearer", scope: "ocsapi" },
        { "Cache-Control": "no-store" },
      );
    }
    await drain(req);
    return send(res, 404, { error: "not_found" });
  }

  private baseUrl(req: IncomingMessage, route: Route): string {
    if (this.opts.publicUrl) return `${this.opts.publicUrl.replace(/\/+$/, "")}${route.prefix}`;
    const proto = this.caPem ? "https" : "http";
    return `${proto}://${req.headers.host ?? `localhost`}${route.prefix}`;
  }

  // ---------------------------------------------------------------------------------------------- OMF ingress

  private async omf(
    req: IncomingMessage,
    res: ServerResponse,
    profile: Profile,
    scope: Scope,
    partial: boolean,
    note: (n: number) => void,
  ) {
    const c = this.counters;
    c.omfRequests++;
    c.byProfile[profile].omfRequests++;
    const opId = randomUUID();
    const limit = this.opts.maxBodyBytes[profile];
    const body = await readLimited(req, limit);
    c.bytesReceived += body.size;
    const reject = (status: number, f: OmfFailure, headers: Record<string, string> = {}) => {
      c.rejectedRequests++;
      if (profile === "pi")
        return send(res, status, piMessages(opId, [{ index: null, status, failure: f, warnings: [] }], this.opts.piEventKey), headers);
      return send(res, status, sdsError(opId, f), { "Operation-Id": opId, ...headers });
    };
    if (body.tooLarge) {
      c.rejectedRequests++;
      const msg = `Request content exceeds the maximum allowed length ${limit}`;
      if (profile === "pi") return send(res, 413, { Errors: [msg] }, { Connection: "close" });
      return send(res, 413, sdsError(opId, new OmfFailure(413, msg, { error: "Payload Too Large" })), {
        "Operation-Id": opId,
        Connection: "close",
      });
    }
    let headers: OmfRequest & { gzip: boolean };
    try {
      headers = this.omfHeaders(req);
      if (profile === "eds" && headers.action === "update")
        throw badRequest("The action 'Update' is not supported for OMF messages", { eventCode: 2003, error: "Action not supported" });
      if (headers.action === "update" && headers.messageType === "data" && headers.version < "1.2")
        throw badRequest(`The 'update' action on data messages requires OMF 1.2 (request omfversion ${headers.version}).`, {
          eventCode: 2003,
        });
    } catch (err) {
      if (err instanceof OmfFailure) return reject(err.status, err);
      throw err;
    }
    let raw = body.buf;
    if (headers.gzip) {
      try {
        raw = await gunzipAsync(raw, { maxOutputLength: this.opts.maxInflatedBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          return reject(
            413,
            new OmfFailure(413, `Inflated request content exceeds the maximum allowed length ${this.opts.maxInflatedBytes}`),
          );
        }
        return reject(400, badRequest(`The message body could not be decompressed: ${(err as Error).message}`, { eventCode: 3001 }));
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString("utf8"));
    } catch (err) {
      return reject(400, badRequest(`The message body could not be parsed as JSON: ${(err as Error).message}`, { eventCode: 3002 }));
    }
    if (!Array.isArray(parsed))
      return reject(400, badRequest("The message body must be a JSON array of OMF messages.", { eventCode: 3002 }));
    note(parsed.length);
    if (partial) c.faults.partial++;
    const results = processMessages(scope, headers, parsed, {
      strict: this.opts.strictVersionKeywords,
      piCreateMode: this.opts.piCreateMode,
      stopOnError: profile !== "pi",
      failFirst: partial,
    });
    let failed: MessageResult | undefined;
    let values = 0;
    for (const r of results) {
      values += r.values;
      if (r.failure) {
        failed ??= r;
        c.rejectedMessages++;
        c.byProfile[profile].rejectedMessages++;
      } else {
        c.acceptedMessages++;
        c.byProfile[profile].acceptedMessages++;
      }
    }
    c.valuesWritten += values;
    c.byProfile[profile].valuesWritten += values;
    if (failed) c.rejectedRequests++;
    else c.acceptedRequests++;
    if (profile === "pi") {
      const status = piOverallStatus(results);
      return send(res, status, piMessages(opId, results, this.opts.piEventKey));
    }
    if (failed) return send(res, failed.status, sdsError(opId, failed.failure!, failed.index), { "Operation-Id": opId });
    return send(res, 202, { "Operation-Id": opId }, { "Operation-Id": opId });
  }

  /** Validates the OMF headers (codes 2001–2007). Header names and values are case-insensitive. */
  private omfHeaders(req: IncomingMessage): OmfRequest & { gzip: boolean } {
    const seen = new Map<string, string[]>();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      if ((OMF_HEADERS as readonly string[]).includes(name)) {
        const list = seen.get(name) ?? [];
        list.push(req.rawHeaders[i + 1]!.trim());
        seen.set(name, list);
      }
    }
    for (const [name, values] of seen) {
      if (values.length > 1 || (name !== "producertoken" && values[0]!.includes(",")))
        throw badRequest(`The OMF header '${name}' was specified more than once.`, { eventCode: 2002, parameters: { Header: name } });
    }
    for (const name of ["messagetype", "messageformat", "omfversion"] as const)
      if (!seen.has(name) || seen.get(name)![0] === "")
        throw badRequest(`The required OMF header '${name}' is missing.`, { eventCode: 2001, parameters: { Header: name } });
    const get = (n: string) => seen.get(n)?.[0]?.toLowerCase();
    const invalid = (n: keyof typeof HEADER_CODES, allowed: string) =>
      badRequest(`The value '${seen.get(n)![0]}' of the OMF header '${n}' is not valid; expected ${allowed}.`, {
        eventCode: HEADER_CODES[n],
        parameters: { Header: n, Value: seen.get(n)![0]! },
      });
    const messageType = get("messagetype")!;
    if (!["type", "container", "data"].includes(messageType)) throw invalid("messagetype", "type, container or data");
    if (get("messageformat") !== "json") throw invalid("messageformat", "json");
    const version = get("omfversion")!;
    if (!this.opts.omfVersions.includes(version)) throw invalid("omfversion", this.opts.omfVersions.join(", "));
    const action = get("action") ?? "create";
    if (!["create", "update", "delete"].includes(action)) throw invalid("action", "create, update or delete");
    const compression = get("compression");
    if (compression !== undefined && compression !== "gzip") throw invalid("compression", "gzip");
    return { messageType: messageType as MessageType, action: action as Action, version, gzip: compression === "gzip" };
  }

  // ---------------------------------------------------------------------------------------------- admin

  private async admin(req: IncomingMessage, res: ServerResponse, rest: string[], q: URLSearchParams) {
    const what = rest.join("/").toLowerCase();
    const method = req.method ?? "GET";
    if (method === "GET" && what === "health") return send(res, 200, { ok: true });
    if (method === "GET" && what === "state") {
      const values = q.get("values") !== "false";
      const maxValues = q.get("maxValues") ? Number(q.get("maxValues")) : undefined;
      const only = q.get("scope")?.toLowerCase();
      const scopes: Record<string, unknown> = {};
      for (const s of [this.store.pi, this.store.eds, ...this.store.adh.values()])
        if (!only || s.name === only || (only === "adh" && s.profile === "adh")) scopes[s.name] = s.snapshot({ values, maxValues });
      return send(res, 200, { counters: this.counters, faults: this.faults.get(), scopes });
    }
    if (method === "GET" && what === "counters") return send(res, 200, this.counters);
    if (method === "POST" && what === "reset") {
      await drain(req);
      this.reset();
      return send(res, 200, { ok: true });
    }
    if (what === "faults") {
      if (method === "GET") return send(res, 200, this.faults.get());
      if (method === "DELETE") {
        this.faults.clear();
        return send(res, 200, {});
      }
      if (method === "POST" || method === "PUT") {
        const raw = await readAll(req, 64 * 1024);
        let json: unknown;
        try {
          json = JSON.parse(raw?.toString("utf8") || "{}");
        } catch {
          return send(res, 400, { error: "body must be JSON" });
        }
        const parsed = FaultConfigSchema.safeParse(json);
        if (!parsed.success) return send(res, 400, { error: "invalid fault config", issues: parsed.error.issues });
        if (method === "PUT") this.faults.clear();
        return send(res, 200, this.faults.set(parsed.data));
      }
    }
    if (method === "POST" && what === "tokens/expire") {
      await drain(req);
      return send(res, 200, { expired: this.tokens.expireAll() });
    }
    if (method === "GET" && what === "ca.pem") {
      if (!this.caPem) return send(res, 404, { error: "TLS is not enabled" });
      res.writeHead(200, { "Content-Type": "application/x-pem-file", "Content-Length": Buffer.byteLength(this.caPem) });
      res.end(this.caPem);
      return;
    }
    if (method === "GET" && what === "config") {
      const o = this.opts;
      return send(res, 200, {
        tls: o.tls,
        piDataServerName: o.piDataServerName,
        piUsers: o.piUsers.map((u) => ({ username: u.username, readOnly: !!u.readOnly })),
        piCsrfDefense: o.piCsrfDefense,
        piCsrfStatus: o.piCsrfStatus,
        piCreateMode: o.piCreateMode,
        adhClients: o.adhClients.map((c) => c.clientId),
        adhTenantId: o.adhTenantId ?? null,
        tokenLifetimeSeconds: o.tokenLifetimeSeconds,
        maxBodyBytes: o.maxBodyBytes,
        maxInflatedBytes: o.maxInflatedBytes,
        omfVersions: o.omfVersions,
        strictVersionKeywords: o.strictVersionKeywords,
      });
    }
    await drain(req);
    return send(res, 404, { error: `unknown admin endpoint ${method} /_emulator/${rest.join("/")}` });
  }
}

// ------------------------------------------------------------------------------------------------ helpers

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendReply(res: ServerResponse, r: Reply): void {
  send(res, r.status, r.body);
}

/** Reads and discards the request body. */
function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    req.on("data", () => {});
    req.on("end", resolve);
    req.on("error", () => resolve());
    req.on("close", () => resolve());
  });
}

async function readAll(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const r = await readLimited(req, max);
  return r.tooLarge ? undefined : r.buf;
}

/**
 * Reads the body up to `limit` bytes. Past the limit the rest is read and discarded (so the client sees the 413
 * rather than a reset), up to 16x the limit, beyond which the socket is closed after answering.
 */
function readLimited(req: IncomingMessage, limit: number): Promise<{ buf: Buffer; size: number; tooLarge: boolean }> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? -1);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = declared > limit;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      else if (size > limit * 16 + 1024 * 1024) {
        req.removeAllListeners("data");
        req.pause();
        resolve({ buf: Buffer.alloc(0), size, tooLarge: true });
      }
    });
    req.on("end", () => resolve({ buf: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), size, tooLarge }));
    req.on("error", reject);
  });
}

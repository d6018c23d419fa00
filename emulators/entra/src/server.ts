/**
 * Routing: the admin surface first (never faulted), then the fault switch, then the identity endpoints by path.
 * Paths match in any letter case, as Entra's do; the tenant segment is kept as sent.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, drain, injectHttpFault, isAdminPath, readBody, send, sendJson } from "@meridian/emulator-kit";
import type { EmulatorContext } from "./context.js";
import { EntraError, Errors, entraErrorBody, faultError } from "./errors.js";
import { authorize } from "./routes/authorize.js";
import { instanceDiscovery, openIdConfiguration } from "./routes/discovery.js";
import { deviceCodeEndpoint, type TokenRequest, tokenEndpoint } from "./routes/token.js";

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A token request is a short form; anything bigger is refused before it is parsed. */
export const TOKEN_REQUEST_LIMIT = 64 * 1024;
/** Tenant ids are GUIDs or domain names; this bounds what is echoed back in metadata. */
const TENANT_SEGMENT = /^[a-z0-9][a-z0-9.-]{0,127}$/i;

const NO_STORE = { "Cache-Control": "no-store, no-cache", Pragma: "no-cache" };
const PUBLIC_CORS = { "Access-Control-Allow-Origin": "*" };

type Route =
  | { kind: "openid"; tenant: string }
  | { kind: "keys"; tenant: string }
  | { kind: "token"; tenant: string }
  | { kind: "devicecode"; tenant: string }
  | { kind: "authorize"; tenant: string }
  | { kind: "instance" }
  | { kind: "devicelogin" }
  | { kind: "none" };

export function classify(pathname: string): Route {
  const seg = pathname.split("/").filter(Boolean);
  const s = seg.map((x) => x.toLowerCase());
  const rest = s.slice(1).join("/");
  if (s.length === 1 && s[0] === "devicelogin") return { kind: "devicelogin" };
  if (seg.length < 2 || !TENANT_SEGMENT.test(seg[0]!)) return { kind: "none" };
  const tenant = seg[0]!;
  if (rest === "v2.0/.well-known/openid-configuration") return { kind: "openid", tenant };
  if (rest === "discovery/v2.0/keys" || rest === "discovery/keys") return { kind: "keys", tenant };
  if (rest === "oauth2/v2.0/token") return { kind: "token", tenant };
  if (rest === "oauth2/v2.0/devicecode") return { kind: "devicecode", tenant };
  if (rest === "oauth2/v2.0/authorize") return { kind: "authorize", tenant };
  if (rest === "discovery/instance") return { kind: "instance" };
  return { kind: "none" };
}

export interface EntraHandlers {
  handle: RequestHandler;
  /** For the optional plain-HTTP admin port: `/_emulator/*` only. */
  handleAdminOnly: RequestHandler;
}

export function createHandlers(ctx: EmulatorContext, admin: AdminSurface): EntraHandlers {
  const handle: RequestHandler = (req, res) => {
    const started = performance.now();
    const note: TokenRequest["note"] = {};
    let fault: string | undefined;
    let error: string | undefined;
    const url = new URL(req.url ?? "/", "http://emulator");
    res.on("finish", () => {
      ctx.counters.byStatus[res.statusCode] = (ctx.counters.byStatus[res.statusCode] ?? 0) + 1;
      if (isAdminPath(url.pathname)) return;
      ctx.opts.onRequest?.({
        method: req.method ?? "",
        path: url.pathname,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...note,
        error,
        fault,
      });
    });
    // A browser page reads token answers (errors too) only if it is a registered SPA's origin, as with Entra; the
    // metadata and keys are public to any page.
    const origin = header(req, "origin");
    const tokenCors: Record<string, string> =
      origin && ctx.directory.isSpaOrigin(origin) ? { "Access-Control-Allow-Origin": origin, Vary: "Origin" } : {};
    const fail = (e: EntraError) => {
      error = e.error;
      ctx.countError(e.error);
      sendJson(res, e.status, entraErrorBody(e, header(req, "client-request-id"), ctx.baseUrl(req)), { ...NO_STORE, ...tokenCors });
    };
    const run = async () => {
      if (isAdminPath(url.pathname)) return admin.handle(req, res, url);
      ctx.counters.requests++;
      const d = ctx.faults.decide(url.pathname);
      if (d.kind !== "none") {
        fault = d.kind;
        ctx.counters.faults++;
      }
      const statusBody = (status: number) => entraErrorBody(faultError(status), header(req, "client-request-id"), ctx.baseUrl(req));
      if (await injectHttpFault(d, req, res, { statusBody })) return;
      const route = classify(url.pathname);
      const method = req.method ?? "GET";
      const baseUrl = ctx.baseUrl(req);
      switch (route.kind) {
        case "openid": {
          await drain(req);
          const tenant = ctx.directory.tenant(route.tenant);
          if (!tenant) return fail(Errors.tenantNotFound(route.tenant));
          return sendJson(res, 200, openIdConfiguration(baseUrl, route.tenant, tenant), PUBLIC_CORS);
        }
        case "keys":
          await drain(req);
          return sendJson(res, 200, ctx.keys.jwks(), PUBLIC_CORS);
        case "authorize": {
          await drain(req);
          if (method !== "GET") return send(res, 405, "The emulator's authorize endpoint takes GET only.\n", "text/plain; charset=utf-8");
          const answer = authorize(ctx, route.tenant, url.searchParams, baseUrl);
          note.clientId = url.searchParams.get("client_id") ?? undefined;
          if (answer.kind === "page") return send(res, answer.status, answer.html, "text/html; charset=utf-8", NO_STORE);
          res.writeHead(302, { Location: answer.location, ...NO_STORE });
          res.end();
          return;
        }
        case "instance":
          await drain(req);
          return sendJson(res, 200, instanceDiscovery(baseUrl, url.searchParams));
        case "devicelogin":
          await drain(req);
          return send(
            res,
            200,
            "Meridian Entra emulator: a device code is approved with POST /_emulator/device-codes/{user_code}/approve\n",
            "text/plain; charset=utf-8",
          );
        case "token":
        case "devicecode": {
          if (method === "OPTIONS") {
            // The CORS preflight of a browser's token request (its Content-Type or Accept may need one).
            await drain(req);
            const asked = header(req, "access-control-request-headers");
            return send(res, 204, undefined, "text/plain", {
              ...tokenCors,
              ...(tokenCors["Access-Control-Allow-Origin"]
                ? { "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Max-Age": "86400" }
                : {}),
              ...(tokenCors["Access-Control-Allow-Origin"] && asked ? { "Access-Control-Allow-Headers": asked } : {}),
            });
          }
          if (method !== "POST") {
            await drain(req);
            return fail(
              new EntraError(405, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a GET request."),
            );
          }
          const body = await readBody(req, TOKEN_REQUEST_LIMIT);
          if (body.tooLarge) return fail(Errors.bodyTooLarge());
          const r: TokenRequest = {
            form: new URLSearchParams(body.buf.toString("utf8")),
            authorization: req.headers.authorization,
            pathTenant: route.tenant,
            baseUrl,
            origin,
            note,
          };
          try {
            const answer = route.kind === "token" ? await tokenEndpoint(ctx, r) : await deviceCodeEndpoint(ctx, r);
            return sendJson(res, 200, answer, { ...NO_STORE, ...tokenCors });
          } catch (err) {
            if (err instanceof EntraError) return fail(err);
            throw err;
          }
        }
        default:
          await drain(req);
          return sendJson(res, 404, { error: "not_found", error_description: `No resource at ${url.pathname}` });
      }
    };
    run().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: "server_error", error_description: `Emulator error: ${(err as Error).message}` });
      else res.destroy();
    });
  };

  const handleAdminOnly: RequestHandler = (req, res) => {
    if (!isAdminPath(new URL(req.url ?? "/", "http://emulator").pathname)) {
      sendJson(res, 404, { error: "this port serves /_emulator/* only" });
      return;
    }
    handle(req, res);
  };

  return { handle, handleAdminOnly };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

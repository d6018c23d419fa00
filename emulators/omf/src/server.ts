/**
 * Routing only: which surface a request is for, the fault switch in front of every surface, and the request log.
 * The surfaces live in routes/: PI Web API, SDS (ADH and EDS), the ADH identity endpoints, and the admin surface.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, injectHttpFault, isAdminPath, sendJson } from "@meridian/emulator-kit";
import type { EmulatorContext, Exchange, OmfPath } from "./context.js";
import type { Profile } from "./options.js";
import { injectedFaultBody } from "./render.js";
import { identity } from "./routes/identity.js";
import { piWebApi } from "./routes/pi.js";
import { edsProductInformation, sdsApi } from "./routes/sds.js";

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface OmfHandlers {
  /** Every surface on one port. */
  handle: RequestHandler;
  /** For the optional plain-HTTP admin port: `/_emulator/*` only. */
  handleAdminOnly: RequestHandler;
}

export function createHandlers(ctx: EmulatorContext, admin: AdminSurface): OmfHandlers {
  let seq = 0;

  const handle: RequestHandler = (req, res) => {
    const started = performance.now();
    const requestId = `${++seq}`;
    let path: OmfPath | undefined;
    let fault: string | undefined;
    let messages: number | undefined;
    res.on("finish", () => {
      ctx.counters.byStatus[res.statusCode] = (ctx.counters.byStatus[res.statusCode] ?? 0) + 1;
      ctx.opts.onRequest?.({
        requestId,
        method: req.method ?? "",
        path: (req.url ?? "").split("?")[0]!,
        status: res.statusCode,
        profile: path?.profile,
        ms: Math.round((performance.now() - started) * 10) / 10,
        fault,
        messages,
      });
    });
    const run = async () => {
      ctx.counters.requests++;
      const url = new URL(req.url ?? "/", "http://emulator");
      if (isAdminPath(url.pathname)) return admin.handle(req, res, url);
      const p = classify(req.method ?? "GET", url.pathname);
      path = p;
      const decision = ctx.faults.decide(p.profile, p.isOmf, url.pathname);
      const d = decision.http;
      if (d.latencyMs > 0) ctx.counters.faults.latency++;
      if (d.kind !== "none") {
        fault = d.kind;
        ctx.counters.faults[d.kind]++;
        if (d.kind === "status") ctx.counters.rejectedRequests++;
      }
      if (await injectHttpFault(d, req, res, { statusBody: (status) => injectedFaultBody(p.profile, status, randomUUID()) })) return;
      if (decision.failFirstMessage) fault = "partial";
      if (decision.asyncFailure) fault = "asyncFailure";
      else if (decision.asyncDelayMs) fault = "asyncDelay";
      const x: Exchange = {
        req,
        res,
        url,
        path: p,
        failFirstMessage: decision.failFirstMessage,
        asyncFailure: decision.asyncFailure,
        asyncDelayMs: decision.asyncDelayMs,
        noteMessages: (n) => {
          messages = n;
        },
      };
      switch (p.kind) {
        case "pi":
          return piWebApi(ctx, x);
        case "sds":
          return sdsApi(ctx, x);
        case "identity":
          return identity(ctx, x);
        case "edsinfo":
          return edsProductInformation(ctx, x);
        default:
          return sendJson(res, 404, { Errors: [`No resource at ${url.pathname}`] });
      }
    };
    run().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { Errors: [`Emulator error: ${(err as Error).message}`] });
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

/**
 * Which surface a path is for. `/adh/...` and `/eds/...` force a profile; otherwise `tenants/default/namespaces/default`
 * is EDS and any other tenant/namespace ADH. Matching is case-insensitive, as on the real receivers.
 */
export function classify(method: string, pathname: string): OmfPath {
  let p = pathname.replace(/\/+$/, "") || "/";
  let prefix = "";
  let forced: Profile | undefined;
  const lower = p.toLowerCase();
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

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** ADH/OCS and EDS (the SDS family): Bearer auth (ADH), the tenant check, then OMF ingress or read-back. */
import { randomUUID } from "node:crypto";
import { drain, sendJson } from "@meridian/emulator-kit";
import type { EmulatorContext, Exchange } from "../context.js";
import { OmfFailure } from "../errors.js";
import { sdsError } from "../render.js";
import { EDS_RELEASES } from "../settings.js";
import { omfIngress } from "./omf.js";
import { sdsDelete, sdsRead } from "./readback.js";

export async function sdsApi(ctx: EmulatorContext, x: Exchange): Promise<void> {
  const { req, res, path } = x;
  const profile = path.profile!;
  if (profile === "adh") {
    const check = ctx.tokens.check(req.headers.authorization);
    if (!check.ok) {
      ctx.counters.authFailures++;
      await drain(req);
      const challenge =
        check.reason === "missing"
          ? 'Bearer realm="AVEVA Data Hub"'
          : `Bearer error="invalid_token", error_description="${check.reason === "expired" ? "The token expired" : "The token is not valid"}"`;
      return sendJson(
        res,
        401,
        sdsError(
          randomUUID(),
          new OmfFailure(401, check.reason === "expired" ? "The access token has expired." : "Authentication is required."),
        ),
        { "WWW-Authenticate": challenge },
      );
    }
    if (ctx.opts.adhTenantId && path.tenant!.toLowerCase() !== ctx.opts.adhTenantId.toLowerCase()) {
      await drain(req);
      return sendJson(res, 403, sdsError(randomUUID(), new OmfFailure(403, `The client is not authorized for tenant '${path.tenant}'.`)));
    }
  }
  const scope = profile === "eds" ? ctx.store.eds : ctx.store.adhScope(path.tenant!, path.namespace!, true)!;
  if (path.isOmf) return omfIngress(ctx, x, profile, scope);
  if (req.method === "DELETE") {
    await drain(req);
    const reply = sdsDelete({ scope }, path.rest);
    return reply.body === undefined ? send204(res) : sendJson(res, reply.status, reply.body);
  }
  if (req.method !== "GET") {
    await drain(req);
    return sendJson(res, 405, sdsError(randomUUID(), new OmfFailure(405, `Method ${req.method} is not supported here.`)));
  }
  const verbose = ctx.opts.sdsDefaultVerbose || (req.headers["accept-verbosity"] ?? "").toString().toLowerCase() === "verbose";
  const reply = sdsRead(
    { scope, verbose, timestamps: ctx.settings.sdsTimestamps, tenant: path.tenant!, namespace: path.namespace! },
    path.rest,
    x.url.searchParams,
  );
  return sendJson(res, reply.status, reply.body);
}

/**
 * EDS `GET /api/v1/diagnostics/productinformation`: how a client tells EDS's release (and so its OMF versions). The
 * notes give the path, not the body: the version is under both `"Product Version"` and `"Edge Data Store"`.
 */
export function edsProductInformation(ctx: EmulatorContext, x: Exchange): void {
  const version = EDS_RELEASES[ctx.settings.edsRelease].version;
  sendJson(x.res, 200, {
    "Product Name": "Edge Data Store",
    "Product Version": version,
    "Edge Data Store": version,
    "Operating System": process.platform,
  });
}

function send204(res: Exchange["res"]): void {
  res.writeHead(204).end();
}

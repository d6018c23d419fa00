/** PI Web API: Basic auth and the CSRF defense in front of the OMF endpoint and the read-back paths. */
import { randomUUID } from "node:crypto";
import { basicCredentials, drain, safeEqual, sendJson } from "@meridian/emulator-kit";
import type { EmulatorContext, Exchange } from "../context.js";
import { OmfFailure } from "../errors.js";
import type { PiUser } from "../options.js";
import { piMessages } from "../render.js";
import { PI_RELEASES } from "../settings.js";
import { omfIngress } from "./omf.js";
import { piRead } from "./readback.js";

export async function piWebApi(ctx: EmulatorContext, x: Exchange): Promise<void> {
  const { req, res, path } = x;
  const method = req.method ?? "GET";
  const user = piUser(ctx.opts.piUsers, req.headers.authorization);
  if (!user) {
    ctx.counters.authFailures++;
    await drain(req);
    return sendJson(
      res,
      401,
      { Message: "Authorization has been denied for this request." },
      { "WWW-Authenticate": 'Basic realm="PI Web API"' },
    );
  }
  if (ctx.opts.piCsrfDefense && ["POST", "PUT", "PATCH", "DELETE"].includes(method) && !req.headers["x-requested-with"]) {
    await drain(req);
    return sendJson(res, ctx.opts.piCsrfStatus, {
      Errors: ["The request is missing the 'X-Requested-With' header required by the CSRF defense (EnableCSRFDefense)."],
    });
  }
  if (path.isOmf) {
    if (user.readOnly) {
      await drain(req);
      const f = new OmfFailure(403, `User '${user.username}' has insufficient permissions to write OMF data.`, {
        eventCode: -1004,
        reason: "InsufficientPermissions",
      });
      return sendJson(res, 403, piMessages(randomUUID(), [{ index: null, status: 403, failure: f, warnings: [] }], ctx.opts.piEventKey));
    }
    return omfIngress(ctx, x, "pi", ctx.store.pi);
  }
  // Anything but a POST on the OMF endpoint, and anything but a GET elsewhere.
  const onOmfEndpoint = path.rest.length === 1 && path.rest[0]!.toLowerCase() === "omf";
  if (onOmfEndpoint || method !== "GET") {
    await drain(req);
    return sendJson(res, 405, { Message: `The requested resource does not support http method '${method}'.` });
  }
  const reply = piRead(
    {
      scope: ctx.store.pi,
      base: `${ctx.baseUrl(req, path)}/piwebapi`,
      dataServerName: ctx.opts.piDataServerName,
      product: PI_RELEASES[ctx.settings.piRelease],
    },
    path.rest.join("/"),
    x.url.searchParams,
  );
  return sendJson(res, reply.status, reply.body);
}

/** User names are case-insensitive in PI (Windows accounts); passwords are not. */
function piUser(users: PiUser[], authorization: string | undefined): PiUser | undefined {
  const c = basicCredentials(authorization);
  if (!c) return undefined;
  return users.find((u) => u.username.toLowerCase() === c.username.toLowerCase() && safeEqual(u.password, c.password));
}

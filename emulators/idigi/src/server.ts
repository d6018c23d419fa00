/**
 * Routing only: `/_emulator` to the admin surface, `/ws/` behind Basic auth to the v1 JSON or the legacy XML monitor
 * API, and one place where errors become answers in the shape of the API that raised them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, basicCredentials, EmulatorHttpError, isAdminPath } from "@meridian/emulator-kit";
import { ValidationError } from "./monitors.js";
import { legacyMonitors } from "./routes/legacy.js";
import { type RestContext, sendJson, sendXml, sendXmlError, XML_PROLOG } from "./routes/rest.js";
import { v1Monitors } from "./routes/v1.js";
import type { User } from "./users.js";

export function createHandler(ctx: RestContext, users: User[], admin: AdminSurface) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    if (isAdminPath(url.pathname)) return admin.handle(req, res, url);
    const isV1 = url.pathname.startsWith("/ws/v1/");
    try {
      if (url.pathname.startsWith("/ws/")) {
        const user = authenticate(req, users);
        if (!user) {
          const headers = { "WWW-Authenticate": 'Basic realm="iDigi"' };
          if (isV1) return sendJson(res, 401, { error_status: 401, error_message: "Unauthorized" }, headers);
          return sendXml(res, 401, `${XML_PROLOG}\n<result>\n  <error>Unauthorized</error>\n</result>\n`, headers);
        }
        if (isV1) return await v1Monitors(ctx, req, res, url, user);
        if (/^\/ws\/Monitor(\/|\.|$)/.test(url.pathname)) return await legacyMonitors(ctx, req, res, url, user);
      }
      return sendJson(res, 404, { error: `no such resource ${url.pathname}` });
    } catch (err) {
      if (err instanceof ValidationError) {
        if (isV1) return sendJson(res, 400, { error_status: 400, error_message: err.message, field: err.field });
        return sendXmlError(res, 400, err.message);
      }
      if (err instanceof EmulatorHttpError) return sendJson(res, err.status, { error: err.message });
      ctx.log.error({ err }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    }
  };
}

function authenticate(req: IncomingMessage, users: User[]): User | undefined {
  const c = basicCredentials(req.headers.authorization);
  return c && users.find((u) => u.username === c.username && u.password === c.password);
}

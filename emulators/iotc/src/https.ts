/**
 * The HTTPS listener: DPS's REST runtime API (protocol notes 1.3), the application REST API (`/api/...`) and the
 * `/_emulator` admin surface. Routing only; DPS itself is dps.ts, the admin routes are admin.ts, the application API
 * is app-api/.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import { type AdminSurface, isAdminPath, readBody, sendJson } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import type { AppApi } from "./app-api/router.js";
import { type DpsAnswer, type DpsCredential, dpsError, type Provisioning } from "./dps.js";
import { parseSasToken } from "./sas.js";

/** A register body is `{registrationId, payload?}`; the payload is capped at 4 KiB. */
const MAX_DPS_BODY_BYTES = 16 * 1024;

export interface HttpsSurfaceOptions {
  key: string;
  cert: string;
  clientCa: string;
}

const REGISTER = /^\/([^/]+)\/registrations\/([^/]+)\/register$/;
const OPERATION = /^\/([^/]+)\/registrations\/([^/]+)\/operations\/([^/]+)$/;

export function createHttpsSurface(
  provisioning: Provisioning,
  admin: AdminSurface,
  appApi: AppApi,
  options: HttpsSurfaceOptions,
  log: Logger,
): Server {
  const credentialOf = (req: IncomingMessage): DpsCredential | undefined => {
    const header = req.headers.authorization;
    if (header) {
      const token = parseSasToken(header);
      return token ? { kind: "sas", token } : undefined;
    }
    const socket = req.socket as TLSSocket;
    const cert = socket.getPeerCertificate?.();
    if (!cert || Object.keys(cert).length === 0) return undefined;
    const cn = cert.subject?.CN;
    return {
      kind: "x509",
      authorized: socket.authorized,
      ...(typeof cn === "string" ? { commonName: cn } : {}),
      ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
    };
  };

  const answer = (res: ServerResponse, a: DpsAnswer): void => {
    const headers: Record<string, string> = {};
    if (a.retryAfterSeconds !== undefined) headers["retry-after"] = String(a.retryAfterSeconds);
    res.writeHead(a.status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(JSON.stringify(a.body));
  };

  async function handleDps(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const register = REGISTER.exec(url.pathname);
    const operation = OPERATION.exec(url.pathname);
    // The Node SDK sends `{}` with its GET: every body is read (and capped) whatever the method.
    const body = await readBody(req, MAX_DPS_BODY_BYTES);
    if (body.tooLarge) return answer(res, { status: 413, body: dpsError(413, 1, `body over ${MAX_DPS_BODY_BYTES} bytes`) });
    const match = (req.method === "PUT" && register) || (req.method === "GET" && operation);
    if (!match) return answer(res, { status: 404, body: dpsError(404, 1, `no DPS route ${req.method} ${url.pathname}`) });
    const idScope = decodeURIComponent(match[1]!);
    const registrationId = decodeURIComponent(match[2]!);
    const credential = credentialOf(req);
    const check = credential
      ? provisioning.authenticate(idScope, registrationId, credential)
      : ({ ok: false, reason: "no Authorization header and no client certificate" } as const);
    if (!check.ok) {
      log.info({ registrationId, reason: check.reason }, "DPS request refused");
      return answer(res, { status: 401, body: dpsError(401, 2, "unauthorized") });
    }
    if (register) return answer(res, provisioning.register(registrationId, check.attestation ?? "symmetricKey", body.buf));
    return answer(res, provisioning.operationStatus(registrationId, decodeURIComponent(match[3]!)));
  }

  return createServer(
    {
      key: options.key,
      cert: options.cert,
      ca: [options.clientCa],
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    },
    (req, res) => {
      const url = new URL(req.url ?? "/", "https://emulator");
      const work = isAdminPath(url.pathname)
        ? admin.handle(req, res, url)
        : appApi.matches(url.pathname)
          ? appApi.handle(req, res, url)
          : handleDps(req, res, url);
      work.catch((err: unknown) => {
        log.error({ err }, "HTTPS request failed");
        if (!res.headersSent) sendJson(res, 500, { errorCode: 500000, message: "internal error" });
        else res.destroy();
      });
    },
  );
}

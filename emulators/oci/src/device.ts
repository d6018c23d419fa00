/**
 * The device listener (§4): `POST /{endpoint}` with HTTP Basic `externalKey:secret`, where the secret is the
 * plaintext of the vault secret named by the ACTIVE instance's authId. Accepted messages go through `ingest`; the
 * answer is a 2xx without a JSON body.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, basicCredentials, injectHttpFault, isAdminPath, readBody, safeEqual, send } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import type { Clock } from "./clock.js";
import type { OciFaults } from "./faults.js";
import { ingest } from "./ingest.js";
import type { Instance, OciStore } from "./store.js";

export const DEVICE_BODY_LIMIT = 256 * 1024;
/** [I] The platform's answer to an accepted message: 202 Accepted without a body (any 2xx would be read the same). */
export const DEVICE_ACCEPTED_STATUS = 202;

export interface DeviceOptions {
  store: OciStore;
  clock: Clock;
  faults: OciFaults;
  admin: AdminSurface;
  log: Logger;
  record(operation: string, status: number): void;
}

/** The ACTIVE instance these Basic credentials authenticate, if any. */
export function authenticateDevice(store: OciStore, authorization: string | undefined): Instance | undefined {
  const creds = basicCredentials(authorization);
  if (!creds) return undefined;
  const instance = store.activeInstanceByExternalKey(creds.username);
  if (!instance?.authId) return undefined;
  const secret = store.vault.get(instance.authId);
  if (secret === undefined || !safeEqual(creds.password, secret)) return undefined;
  return instance;
}

export function createDeviceHandler(o: DeviceOptions) {
  const plain = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) =>
    send(res, status, text, "text/plain; charset=utf-8", headers);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    if (isAdminPath(url.pathname)) return o.admin.handle(req, res, url);
    const body = await readBody(req, DEVICE_BODY_LIMIT);
    if ((req.method ?? "GET").toUpperCase() !== "POST") {
      o.record("ingest", 405);
      return plain(res, 405, "Method Not Allowed", { Allow: "POST" });
    }
    if (body.tooLarge) {
      o.record("ingest", 413);
      return plain(res, 413, `Payload larger than ${DEVICE_BODY_LIMIT} bytes`);
    }
    let endpoint: string;
    try {
      endpoint = decodeURIComponent(url.pathname).replace(/^\/+/, "");
    } catch {
      endpoint = url.pathname.replace(/^\/+/, "");
    }
    if (!endpoint) {
      o.record("ingest", 404);
      return plain(res, 404, "Not Found");
    }
    const instance = authenticateDevice(o.store, req.headers.authorization);
    if (!instance) {
      o.record("ingest", 401);
      return plain(res, 401, "Unauthorized", { "WWW-Authenticate": 'Basic realm="iot"' });
    }
    const { decision } = o.faults.decide("device", "ingest", url.pathname);
    if (await injectHttpFault(decision, req, res, { statusBody: (status) => ({ message: `Injected fault ${status}.` }) })) {
      o.record("ingest", decision.kind === "status" ? decision.status : 0);
      return;
    }
    const contentType = (req.headers["content-type"] ?? "application/json").split(";")[0]!.trim() || "application/json";
    const result = ingest(o.store, o.clock, instance, { endpoint, contentType, body: body.buf });
    o.log.debug({ externalKey: instance.externalKey, endpoint, outcome: result.outcome, rawId: result.rawId }, "device message");
    o.record("ingest", DEVICE_ACCEPTED_STATUS);
    send(res, DEVICE_ACCEPTED_STATUS, undefined, "");
  };
}

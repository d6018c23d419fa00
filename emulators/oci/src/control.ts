/**
 * The control-plane listener: `/20250531/...` with OCI request signatures, JSON error bodies `{code, message}` with
 * `opc-request-id`, etags, `opc-next-page`, create retry tokens and faults per operation.
 */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, injectHttpFault, isAdminPath, readBody, sendJson } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import { defaultCode, OciHttpError } from "./errors.js";
import type { OciFaults } from "./faults.js";
import { parseQuery } from "./query.js";
import { type ApiKeyRegistry, SignatureError, verifyRequest } from "./signature.js";
import { canonicalJson } from "./store.js";
import * as twins from "./twins.js";

export const API_VERSION = "/20250531";
const BODY_LIMIT = 1024 * 1024;

type Op = (ctx: twins.TwinsContext, req: twins.OpRequest) => twins.OpResult;

interface Route {
  method: string;
  path: RegExp;
  operation: string;
  op: Op;
  /** Creates honour opc-retry-token. */
  create?: boolean;
}

const ID = "([^/]+)";
const route = (method: string, path: string, operation: string, op: Op, create = false): Route => ({
  method,
  path: new RegExp(`^${path.replaceAll("{id}", ID)}$`),
  operation,
  op,
  create,
});

const ROUTES: Route[] = [
  route("POST", "/digitalTwinModels", "CreateDigitalTwinModel", twins.createModel, true),
  route("GET", "/digitalTwinModels", "ListDigitalTwinModels", twins.listModels),
  route("GET", "/digitalTwinModels/{id}", "GetDigitalTwinModel", twins.getModel),
  route("PUT", "/digitalTwinModels/{id}", "UpdateDigitalTwinModel", twins.updateModel),
  route("DELETE", "/digitalTwinModels/{id}", "DeleteDigitalTwinModel", twins.deleteModel),
  route("GET", "/digitalTwinModels/{id}/spec", "GetDigitalTwinModelSpec", twins.getModelSpec),
  route("POST", "/digitalTwinAdapters", "CreateDigitalTwinAdapter", twins.createAdapter, true),
  route("GET", "/digitalTwinAdapters", "ListDigitalTwinAdapters", twins.listAdapters),
  route("GET", "/digitalTwinAdapters/{id}", "GetDigitalTwinAdapter", twins.getAdapter),
  route("PUT", "/digitalTwinAdapters/{id}", "UpdateDigitalTwinAdapter", twins.updateAdapter),
  route("DELETE", "/digitalTwinAdapters/{id}", "DeleteDigitalTwinAdapter", twins.deleteAdapter),
  route("POST", "/digitalTwinInstances", "CreateDigitalTwinInstance", twins.createInstance, true),
  route("GET", "/digitalTwinInstances", "ListDigitalTwinInstances", twins.listInstances),
  route("GET", "/digitalTwinInstances/{id}", "GetDigitalTwinInstance", twins.getInstance),
  route("PUT", "/digitalTwinInstances/{id}", "UpdateDigitalTwinInstance", twins.updateInstance),
  route("DELETE", "/digitalTwinInstances/{id}", "DeleteDigitalTwinInstance", twins.deleteInstance),
  route("GET", "/digitalTwinInstances/{id}/content", "GetDigitalTwinInstanceContent", twins.getInstanceContent),
  route("GET", "/iotDomains", "ListIotDomains", twins.listDomains),
  route("GET", "/iotDomains/{id}", "GetIotDomain", twins.getDomain),
  route("GET", "/iotDomainGroups", "ListIotDomainGroups", twins.listDomainGroups),
  route("GET", "/iotDomainGroups/{id}", "GetIotDomainGroup", twins.getDomainGroup),
];

export interface ControlOptions extends twins.TwinsContext {
  keys: ApiKeyRegistry;
  faults: OciFaults;
  admin: AdminSurface;
  acceptSecurityTokens: boolean;
  log: Logger;
  /** Counts answers per operation and status, for the state document. */
  record(operation: string, status: number): void;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** OCI answers with its own id; it starts with the caller's when one was sent. */
function requestId(req: IncomingMessage): string {
  const mine = randomBytes(16).toString("hex").toUpperCase();
  const theirs = req.headers["opc-request-id"];
  return typeof theirs === "string" && theirs.length > 0 && theirs.length <= 98 ? `${theirs}/${mine}` : mine;
}

export function createControlHandler(o: ControlOptions) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = req.url ?? "/";
    const url = new URL(target, "http://x");
    if (isAdminPath(url.pathname)) return o.admin.handle(req, res, url);
    const opcRequestId = requestId(req);
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      sendJson(res, status, { code, message }, { "opc-request-id": opcRequestId, ...headers });
    let operation = "Unknown";
    try {
      const method = (req.method ?? "GET").toUpperCase();
      if (!url.pathname.startsWith(`${API_VERSION}/`)) throw new OciHttpError(404, "NotFound", `No such path ${url.pathname}.`);
      const path = url.pathname.slice(API_VERSION.length);
      let params: string[] | undefined;
      let found: Route | undefined;
      let pathKnown = false;
      for (const r of ROUTES) {
        const m = r.path.exec(path);
        if (!m) continue;
        pathKnown = true;
        if (r.method !== method) continue;
        found = r;
        params = m.slice(1).map(safeDecode);
        break;
      }
      if (!found) {
        await readBody(req, BODY_LIMIT);
        throw pathKnown
          ? new OciHttpError(405, "MethodNotAllowed", `${method} is not allowed on ${path}.`)
          : new OciHttpError(404, "NotFound", `No such path ${url.pathname}.`);
      }
      operation = found.operation;
      const body = await readBody(req, BODY_LIMIT);
      if (body.tooLarge) throw new OciHttpError(413, "RequestEntityTooLarge", `The request body is larger than ${BODY_LIMIT} bytes.`);

      try {
        verifyRequest(
          { method, target, headers: req.headers, body: body.buf },
          { keys: o.keys, nowMs: o.clock.nowMs(), acceptSecurityTokens: o.acceptSecurityTokens },
        );
      } catch (err) {
        if (err instanceof SignatureError) throw new OciHttpError(401, "NotAuthenticated", err.message);
        throw err;
      }

      const { decision, code } = o.faults.decide("control", operation, url.pathname);
      if (decision.kind !== "none" && decision.kind !== "partialBody") o.log.debug({ operation, fault: decision.kind }, "fault injected");
      const injected = await injectHttpFault(decision, req, res, {
        statusBody: (status) => ({ code: code ?? defaultCode(status), message: `Injected fault ${status} on ${operation}.` }),
      });
      if (injected) {
        o.record(operation, decision.kind === "status" ? decision.status : 0);
        return;
      }

      let parsed: Record<string, unknown> | undefined;
      const opReq: twins.OpRequest = {
        params: params!,
        query: parseQuery(target),
        ifMatch: typeof req.headers["if-match"] === "string" ? req.headers["if-match"] : undefined,
        body: () => {
          if (parsed) return parsed;
          let v: unknown;
          try {
            v = JSON.parse(body.buf.toString("utf8"));
          } catch {
            throw new OciHttpError(400, "CannotParseRequest", "The request body is not valid JSON.");
          }
          if (!v || typeof v !== "object" || Array.isArray(v))
            throw new OciHttpError(400, "CannotParseRequest", "The request body must be a JSON object.");
          parsed = v as Record<string, unknown>;
          return parsed;
        },
      };

      const retryToken = found.create ? req.headers["opc-retry-token"] : undefined;
      let retryKey: string | undefined;
      let bodyHash = "";
      if (typeof retryToken === "string" && retryToken.length > 0) {
        if (retryToken.length > 64) throw new OciHttpError(400, "InvalidParameter", "opc-retry-token must be at most 64 characters.");
        retryKey = `${operation} ${retryToken}`;
        bodyHash = createHash("sha256").update(canonicalJson(opReq.body())).digest("hex");
        const earlier = o.store.retryTokens.get(retryKey);
        if (earlier) {
          if (earlier.bodyHash !== bodyHash)
            throw new OciHttpError(409, "InvalidatedRetryToken", "The opc-retry-token was used with a different request body.");
          o.record(operation, earlier.status);
          return sendJson(res, earlier.status, earlier.body, { ...earlier.headers, "opc-request-id": opcRequestId });
        }
      }

      const result = found.op(o, opReq);
      const headers: Record<string, string> = {};
      if (result.etag) headers.etag = result.etag;
      if (result.nextPage) headers["opc-next-page"] = result.nextPage;
      if (retryKey && result.status < 300) o.store.rememberRetry(retryKey, { bodyHash, status: result.status, body: result.body, headers });
      o.record(operation, result.status);
      sendJson(res, result.status, result.body, { ...headers, "opc-request-id": opcRequestId });
    } catch (err) {
      if (err instanceof OciHttpError) {
        o.record(operation, err.status);
        return fail(err.status, err.code, err.message);
      }
      o.log.error({ err, operation }, "control-plane request failed");
      o.record(operation, 500);
      if (!res.headersSent) fail(500, "InternalServerError", "Internal error.");
      else res.destroy();
    }
  };
}

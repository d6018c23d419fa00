import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  CreateEndpointRequestSchema,
  type EndpointResult,
  EndpointResultSchema,
  EndpointStatusSchema,
  OmfAction,
  OmfEventSchema,
  OmfMessageType,
  type OmfSenderService,
  SendOmfRequestSchema,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { type FieldViolation, invalidArgument, requestLogger, requireFields } from "@meridian/service-kit";
import type { EndpointRegistry, StoredEndpoint } from "../pipeline/endpoints.js";
import type { PipelineManager } from "../pipeline/manager.js";
import type { EndpointStats } from "../pipeline/stats.js";
import type { DefinitionState } from "../pipeline/store.js";
import {
  OmfAuthError,
  OmfBadRequestError,
  type OmfClient,
  OmfConflictError,
  OmfInvalidMessageError,
  type OmfMessage,
  OmfNotFoundError,
  OmfPayloadTooLargeError,
  type OmfResult,
  type OmfResultMessage,
  OmfServerError,
  OmfThrottledError,
  OmfTlsError,
  typeMessage,
} from "../platform/index.js";
import { endpointToProto, endpointViolations, settingsFromProto } from "./convert.js";

export interface ApiDeps {
  registry: EndpointRegistry;
  state: DefinitionState;
  stats: EndpointStats;
  pipelines: PipelineManager;
  /** OMF_MAX_ENDPOINTS: endpoints the API may hold, declared ones included. */
  maxEndpoints: number;
}

/** The type id CheckEndpoint deletes (a no-op: nothing creates it). */
const CHECK_TYPE_ID = "meridian-connectivity-check-0000";

/** Largest SendOmf body (the JSON text); the endpoint's own limit is met by batching. */
export const MAX_SEND_BODY_BYTES = 4 * 1024 * 1024;

const MESSAGE_TYPES: Partial<Record<OmfMessageType, OmfMessage["messageType"]>> = {
  [OmfMessageType.TYPE]: "type",
  [OmfMessageType.CONTAINER]: "container",
  [OmfMessageType.DATA]: "data",
};
const ACTIONS: Record<OmfAction, "create" | "update" | "delete"> = {
  [OmfAction.UNSPECIFIED]: "create",
  [OmfAction.CREATE]: "create",
  [OmfAction.UPDATE]: "update",
  [OmfAction.DELETE]: "delete",
};

export function omfSenderService(deps: ApiDeps): ServiceImpl<typeof OmfSenderService> {
  const { registry, stats } = deps;
  const requireId = (id: string) => {
    if (!id) invalidArgument([{ path: "id", reason: "required" }]);
  };
  const mustGet = async (id: string): Promise<StoredEndpoint> => {
    const e = await registry.get(id);
    if (!e) throw new ConnectError(`endpoint "${id}" not found`, Code.NotFound);
    return e;
  };
  const clientOf = async (id: string): Promise<OmfClient> => {
    const c = await registry.client(id);
    if (!c) throw new ConnectError(`endpoint "${id}" not found`, Code.NotFound);
    return c;
  };

  return {
    async createEndpoint(req, ctx) {
      const violations = requireFields(CreateEndpointRequestSchema, req);
      if (req.endpoint) violations.push(...endpointViolations(req.endpoint));
      if (violations.length > 0) invalidArgument(dedupe(violations));
      const e = req.endpoint!;
      // Checked before the create: concurrent creates may pass together, a loop of one cannot get past it.
      const count = (await registry.list()).length;
      if (count >= deps.maxEndpoints)
        throw new ConnectError(
          `endpoint quota reached: ${count} of OMF_MAX_ENDPOINTS=${deps.maxEndpoints}; delete an endpoint first`,
          Code.ResourceExhausted,
        );
      if (e.secret !== "" && !registry.cipher) {
        throw new ConnectError(
          "OMF_CREDENTIALS_KEY is not set: omf-sender cannot store endpoint credentials (set it, or declare the endpoint in OMF_ENDPOINTS_FILE with a secret file)",
          Code.FailedPrecondition,
        );
      }
      const stored: StoredEndpoint = {
        id: e.id,
        origin: "api",
        createTime: new Date().toISOString(),
        settings: settingsFromProto(e),
        ...(e.secret !== "" ? { secret: registry.seal(e.id, e.secret) } : {}),
      };
      await registry.bucket.create(e.id, stored);
      await deps.state.purge(e.id);
      requestLogger(ctx).info({ endpointId: e.id, kind: stored.settings.kind }, "endpoint created");
      return { endpoint: endpointToProto(stored) };
    },

    async getEndpoint(req) {
      requireId(req.id);
      return { endpoint: endpointToProto(await mustGet(req.id)) };
    },

    async listEndpoints() {
      const list = await registry.list();
      return { endpoints: list.map(endpointToProto) };
    },

    async deleteEndpoint(req, ctx) {
      requireId(req.id);
      const deleted = await registry.bucket.delete(req.id);
      if (!deleted) throw new ConnectError(`endpoint "${req.id}" not found`, Code.NotFound);
      registry.forget(req.id);
      await deps.state.purge(req.id);
      requestLogger(ctx).info({ endpointId: req.id }, "endpoint deleted");
      return {};
    },

    async checkEndpoint(req) {
      requireId(req.id);
      await mustGet(req.id);
      const client = await clientOf(req.id);
      const started = Date.now();
      try {
        // Deleting a type that does not exist: authenticates and reaches the OMF resource, changes nothing
        // (delete is try-remove). A 4xx other than 401/403 still proves both.
        const r = await client.send(typeMessage([{ id: CHECK_TYPE_ID }], "delete"), {
          signal: AbortSignal.timeout(client.config.timeoutMs),
        });
        return { reachable: true, authenticated: true, httpStatus: r.status, latencyMs: BigInt(Date.now() - started) };
      } catch (err) {
        const status = (err as { status?: number }).status ?? 0;
        const latencyMs = BigInt(Date.now() - started);
        const error = (err as Error).message;
        if (err instanceof OmfAuthError) return { reachable: true, authenticated: false, httpStatus: status, error, latencyMs };
        // Any other HTTP answer proves the resource is there and the credentials passed.
        if (status > 0 && !(err instanceof OmfServerError) && !(err instanceof OmfThrottledError))
          return { reachable: true, authenticated: true, httpStatus: status, error, latencyMs };
        return { reachable: status > 0, authenticated: false, httpStatus: status, error, latencyMs };
      }
    },

    async sendOmf(req, ctx) {
      const violations = requireFields(SendOmfRequestSchema, req);
      const messageType = MESSAGE_TYPES[req.messageType];
      if (req.messageType !== OmfMessageType.UNSPECIFIED && !messageType)
        violations.push({ path: "message_type", reason: "must be TYPE, CONTAINER or DATA" });
      if (!(req.action in ACTIONS)) violations.push({ path: "action", reason: "must be CREATE, UPDATE or DELETE" });
      let body: unknown[] = [];
      if (req.body !== "") {
        const problem = parseBody(req.body, (b) => {
          body = b;
        });
        if (problem) violations.push({ path: "body", reason: problem });
      }
      req.endpointIds.forEach((id, i) => {
        if (id === "") violations.push({ path: `endpoint_ids[${i}]`, reason: "must not be empty" });
        else if (req.endpointIds.indexOf(id) !== i)
          violations.push({ path: `endpoint_ids[${i}]`, reason: `duplicate endpoint id "${id}"` });
      });
      if (violations.length > 0) invalidArgument(dedupe(violations));
      // Every endpoint must exist before anything is sent anywhere.
      const clients: OmfClient[] = [];
      for (const id of req.endpointIds) {
        await mustGet(id);
        clients.push(await clientOf(id));
      }
      const message = { messageType: messageType!, action: ACTIONS[req.action], body } as OmfMessage;
      const results = await Promise.all(
        clients.map(async (client, i) => {
          const id = req.endpointIds[i]!;
          try {
            const rs = await client.sendBatched(message, { signal: ctx.signal });
            stats.success(id, { messages: 1 });
            return okResult(id, rs);
          } catch (err) {
            stats.failure(id, (err as Error).message, { messages: 1 });
            return errorResult(id, err);
          }
        }),
      );
      requestLogger(ctx).info(
        {
          messageType,
          action: message.action,
          objects: body.length,
          results: results.map((r) => ({ endpoint: r.endpointId, ok: r.ok, status: r.httpStatus })),
        },
        "OMF message sent",
      );
      return { results };
    },

    async getEndpointStatus(req) {
      requireId(req.id);
      await mustGet(req.id);
      const c = stats.get(req.id);
      const pipelines = deps.pipelines.list().filter((p) => p.endpointId === req.id);
      const pending = await Promise.all(pipelines.map((p) => p.pending()));
      return {
        status: create(EndpointStatusSchema, {
          endpointId: req.id,
          routes: pipelines.map((p) => p.route.id),
          sentEvents: BigInt(c.sentEvents),
          sentMessages: BigInt(c.sentMessages),
          failedEvents: BigInt(c.failedEvents),
          failedMessages: BigInt(c.failedMessages),
          bufferedEvents: BigInt(pipelines.reduce((n, p) => n + p.buffered, 0)),
          pendingMessages: BigInt(pending.reduce((a, b) => a + b, 0)),
          lastError: c.lastError,
          ...(c.lastErrorTime ? { lastErrorTime: timestampFromDate(c.lastErrorTime) } : {}),
          ...(c.lastSuccessTime ? { lastSuccessTime: timestampFromDate(c.lastSuccessTime) } : {}),
        }),
      };
    },
  };
}

function dedupe(violations: FieldViolation[]): FieldViolation[] {
  const seen = new Set<string>();
  return violations.filter((v) => {
    const k = `${v.path}\u0000${v.reason}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The body must be a JSON array of objects; returns the problem, or undefined after handing over the array. */
function parseBody(text: string, accept: (body: unknown[]) => void): string | undefined {
  if (Buffer.byteLength(text, "utf8") > MAX_SEND_BODY_BYTES) return `larger than ${MAX_SEND_BODY_BYTES} bytes`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (!Array.isArray(parsed)) return "must be a JSON array of OMF objects";
  if (parsed.length === 0) return "must contain at least one OMF object";
  const bad = parsed.findIndex((o) => o === null || typeof o !== "object" || Array.isArray(o));
  if (bad >= 0) return `[${bad}] must be a JSON object`;
  accept(parsed);
  return undefined;
}

function toEvent(m: OmfResultMessage) {
  return create(OmfEventSchema, {
    index: m.index ?? -1,
    status: m.status ?? 0,
    severity: m.severity,
    message: m.message,
    reason: m.reason ?? "",
    resolution: m.resolution ?? "",
    eventCode: m.eventCode ?? 0,
    parameters: m.parameters ?? {},
  });
}

function okResult(id: string, results: OmfResult[]): EndpointResult {
  return create(EndpointResultSchema, {
    endpointId: id,
    ok: true,
    httpStatus: results.at(-1)?.status ?? 0,
    requests: results.length,
    events: results.flatMap((r) => r.messages.map(toEvent)),
  });
}

function errorKind(err: unknown): string {
  if (err instanceof OmfInvalidMessageError) return "invalid_message";
  if (err instanceof OmfNotFoundError) return "not_found";
  if (err instanceof OmfBadRequestError) return "bad_request";
  if (err instanceof OmfConflictError) return "conflict";
  if (err instanceof OmfPayloadTooLargeError) return "payload_too_large";
  if (err instanceof OmfThrottledError) return "throttled";
  if (err instanceof OmfServerError) return "unavailable";
  if (err instanceof OmfAuthError) return "unauthenticated";
  if (err instanceof OmfTlsError) return "tls";
  return "internal";
}

function errorResult(id: string, err: unknown): EndpointResult {
  const e = err as { status?: number; result?: OmfResult; message?: string };
  return create(EndpointResultSchema, {
    endpointId: id,
    ok: false,
    httpStatus: e.status ?? 0,
    errorKind: errorKind(err),
    error: e.message ?? String(err),
    events: e.result?.messages.map(toEvent) ?? [],
  });
}

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  CreateEndpointRequestSchema,
  EndpointStatusSchema,
  OmfAction,
  OmfMessageType,
  type OmfSenderService,
  SendOmfRequestSchema,
  UpdateEndpointRequestSchema,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { callerOf, type FieldViolation, invalidArgument, requestId, requestLogger, requireFields } from "@meridian/service-kit";
import { sameBinding } from "../pipeline/credentials.js";
import {
  bindingOf,
  EndpointPolicyError,
  type EndpointRegistry,
  EndpointRevisionError,
  type EndpointSettings,
  type StoredEndpoint,
  type StoredSecret,
} from "../pipeline/endpoints.js";
import type { PipelineManager } from "../pipeline/manager.js";
import type { EndpointStats } from "../pipeline/stats.js";
import type { DefinitionState } from "../pipeline/store.js";
import {
  OmfAuthError,
  type OmfClient,
  type OmfContainer,
  type OmfMessage,
  OmfServerError,
  OmfThrottledError,
  type OmfType,
  typeMessage,
} from "../platform/index.js";
import { endpointToProto, endpointViolations, settingsFromProto } from "./convert.js";
import { echoableMessage, echoText, errorResult, okResult, redactor } from "./echo.js";
import { readbackHandlers } from "./readback.js";

export interface ApiDeps {
  registry: EndpointRegistry;
  state: DefinitionState;
  stats: EndpointStats;
  pipelines: PipelineManager;
  /** OMF_MAX_ENDPOINTS: endpoints the API may hold, declared ones included. */
  maxEndpoints: number;
  /** OMF_MAX_CONTAINERS_PER_ENDPOINT, for status. */
  maxContainersPerEndpoint: number;
}

/** Who made a change, for the endpoint change log: the authenticated caller and how it proved it, and the request id. */
export function changedBy(ctx: HandlerContext): Record<string, string> {
  const caller = callerOf(ctx);
  return { caller: caller.name, via: caller.via, requestId: requestId(ctx) };
}

/** The settings that differ, old and new (settings hold no secret), for the change log. */
function settingChanges(before: EndpointSettings | undefined, after: EndpointSettings | undefined): Record<string, unknown> {
  const a = (before ?? {}) as Record<string, unknown>;
  const b = (after ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out[k] = { from: a[k] ?? null, to: b[k] ?? null };
  return out;
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
  /**
   * Types and containers SendOmf created (or deleted) join omf-sender's record of what it created at the endpoint, so
   * that ListDefinitions and DeleteDefinitions see them as well as the pipelines'.
   */
  const recordDefinitions = async (id: string, client: OmfClient, message: OmfMessage) => {
    if (message.messageType === "data") return;
    const defs = message.body as { id?: unknown }[];
    if (!defs.every((d) => typeof d.id === "string" && d.id !== "")) return;
    if (message.action === "create")
      await deps.state.recordCreated(
        id,
        client,
        message.messageType === "type" ? (defs as OmfType[]) : [],
        message.messageType === "container" ? (defs as OmfContainer[]) : [],
      );
    else if (message.action === "delete") {
      const ids = defs.map((d) => d.id as string);
      await deps.state.forget(id, client, message.messageType === "type" ? ids : [], message.messageType === "container" ? ids : []);
    }
  };
  /** The OMF version the endpoint's client speaks now (undefined when the record cannot be sent to). */
  const versionOf = async (id: string) => {
    try {
      return (await registry.client(id))?.omfVersionInUse;
    } catch {
      return undefined;
    }
  };
  const toProto = (endpoint: StoredEndpoint, revision: number) =>
    endpointToProto({ endpoint, revision }, registry.insecureSettings(endpoint));
  /** The operator's settings, checked on what the caller asks for (and again before every send). */
  const permit = (id: string, settings: EndpointSettings) => {
    const violations = registry.policy.violations(settings);
    if (violations.length > 0) throw new EndpointPolicyError(id, violations);
  };
  const notDeclared = (id: string, what: string) => {
    if (registry.declared.has(id))
      throw new ConnectError(`endpoint "${id}" is declared in OMF_ENDPOINTS_FILE: ${what} it there`, Code.FailedPrecondition);
  };
  const needKey = () => {
    if (!registry.keyring)
      throw new ConnectError(
        "OMF_CREDENTIALS_KEY is not set: omf-sender cannot store endpoint credentials (set it, or declare the endpoint in OMF_ENDPOINTS_FILE with a secret file)",
        Code.FailedPrecondition,
      );
  };

  return {
    ...readbackHandlers({
      state: deps.state,
      clientOf: async (id) => {
        await mustGet(id);
        return clientOf(id);
      },
    }),

    async createEndpoint(req, ctx) {
      const violations = requireFields(CreateEndpointRequestSchema, req);
      if (req.endpoint) violations.push(...endpointViolations(req.endpoint));
      if (violations.length > 0) invalidArgument(dedupe(violations));
      const e = req.endpoint!;
      const settings = settingsFromProto(e);
      if (registry.declared.has(e.id)) throw new ConnectError(`endpoint "${e.id}" already exists (OMF_ENDPOINTS_FILE)`, Code.AlreadyExists);
      if (e.secret !== "") needKey();
      permit(e.id, settings);
      // Checked before the create: concurrent creates may pass together, a loop of one cannot get past it.
      const count = (await registry.list()).length;
      if (count >= deps.maxEndpoints)
        throw new ConnectError(
          `endpoint quota reached: ${count} of OMF_MAX_ENDPOINTS=${deps.maxEndpoints}; delete an endpoint first`,
          Code.ResourceExhausted,
        );
      const stored: StoredEndpoint = {
        id: e.id,
        origin: "api",
        createTime: new Date().toISOString(),
        settings,
        ...(e.secret !== "" ? { secret: registry.seal(e.id, settings, e.secret) } : {}),
      };
      const revision = await registry.create(stored);
      await deps.state.purge(e.id);
      requestLogger(ctx).info(
        {
          endpointId: e.id,
          changedBy: changedBy(ctx),
          revision,
          kind: settings.kind,
          url: settings.url,
          insecureSettings: registry.insecureSettings(stored),
        },
        "endpoint created",
      );
      return { endpoint: toProto(stored, revision) };
    },

    async updateEndpoint(req, ctx) {
      const violations = requireFields(UpdateEndpointRequestSchema, req);
      const current = req.endpoint?.id ? await registry.entry(req.endpoint.id) : undefined;
      if (req.endpoint) violations.push(...endpointViolations(req.endpoint, "endpoint", current?.endpoint.secret !== undefined));
      if (violations.length > 0) invalidArgument(dedupe(violations));
      const e = req.endpoint!;
      notDeclared(e.id, "change");
      if (!current) throw new ConnectError(`endpoint "${e.id}" not found`, Code.NotFound);
      const asRead = Number(req.revision);
      if (current.revision !== asRead) throw new EndpointRevisionError(e.id, asRead, current.revision);
      const before = current.endpoint;
      const settings = settingsFromProto(e);
      permit(e.id, settings);
      let secret: StoredSecret | undefined;
      let secretChange: "replaced" | "kept" | "none" | "removed" = "none";
      if (e.secret !== "") {
        needKey();
        secret = registry.seal(e.id, settings, e.secret);
        secretChange = "replaced";
      } else if (before.secret && settings.kind !== "eds") {
        if (!sameBinding(bindingOf(e.id, before.settings), bindingOf(e.id, settings)))
          invalidArgument([
            {
              path: "endpoint.secret",
              reason:
                "required when kind, url, token_url, username, client_id, ca_pem_path, insecure_skip_tls_verify or allow_http change: " +
                "a stored secret never follows an endpoint to a new place",
            },
          ]);
        needKey();
        // Opened under whichever key sealed it (a previous one included) and sealed again under the current key.
        secret = registry.seal(e.id, settings, registry.revealSecret(before)!);
        secretChange = "kept";
      } else if (before.secret) secretChange = "removed";
      const next: StoredEndpoint = {
        id: e.id,
        origin: "api",
        createTime: before.createTime,
        updateTime: new Date().toISOString(),
        settings,
        ...(secret ? { secret } : {}),
      };
      const revision = await registry.update(next, current.revision);
      registry.forget(e.id);
      if (before.settings.url !== settings.url) await deps.state.purge(e.id);
      requestLogger(ctx).info(
        {
          endpointId: e.id,
          changedBy: changedBy(ctx),
          fromRevision: current.revision,
          revision,
          changes: settingChanges(before.settings, settings),
          secret: secretChange,
          insecureSettings: registry.insecureSettings(next),
        },
        before.settings.url !== settings.url ? "endpoint updated; it now points elsewhere" : "endpoint updated",
      );
      return { endpoint: toProto(next, revision) };
    },

    async getEndpoint(req) {
      requireId(req.id);
      const entry = await registry.entry(req.id);
      if (!entry) throw new ConnectError(`endpoint "${req.id}" not found`, Code.NotFound);
      return { endpoint: toProto(entry.endpoint, entry.revision) };
    },

    async listEndpoints() {
      const list = await registry.entries();
      return { endpoints: list.map((e) => toProto(e.endpoint, e.revision)) };
    },

    async deleteEndpoint(req, ctx) {
      requireId(req.id);
      notDeclared(req.id, "remove");
      const before = await registry.entry(req.id);
      const deleted = await registry.delete(req.id, req.revision > 0n ? Number(req.revision) : undefined);
      if (!deleted) throw new ConnectError(`endpoint "${req.id}" not found`, Code.NotFound);
      await deps.state.purge(req.id);
      requestLogger(ctx).info(
        { endpointId: req.id, changedBy: changedBy(ctx), fromRevision: before?.revision, url: before?.endpoint.settings.url },
        "endpoint deleted",
      );
      return {};
    },

    async checkEndpoint(req, ctx) {
      requireId(req.id);
      await mustGet(req.id);
      const client = await clientOf(req.id);
      const redact = redactor(client);
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
        const message = echoableMessage(err);
        if (message === undefined) requestLogger(ctx).error({ err, endpointId: req.id }, "CheckEndpoint failed unexpectedly");
        const error = echoText(message ?? "internal error (omf-sender's log has the details)", redact);
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
            // A 409 to a create is "already exists": success, as the reference sample takes it.
            const rs = await client.sendBatched(message, { signal: ctx.signal, conflictIsSuccess: message.action === "create" });
            await recordDefinitions(id, client, message);
            stats.success(id, { messages: 1 });
            return okResult(id, rs, redactor(client));
          } catch (err) {
            stats.failure(id, (err as Error).message, { messages: 1 });
            if (echoableMessage(err) === undefined) requestLogger(ctx).error({ err, endpointId: id }, "SendOmf failed unexpectedly");
            return errorResult(id, err, redactor(client));
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
      const e = await mustGet(req.id);
      const configurationError = registry.configurationError(e);
      let containers = 0;
      let redact = redactor();
      if (!configurationError) {
        try {
          const client = await clientOf(req.id);
          redact = redactor(client);
          containers = await deps.state.containerCount(req.id, client);
        } catch {
          // The record changed between the two reads; the next status shows it.
        }
      }
      const warnings: string[] = [];
      if (e.settings.verifySsl === false)
        warnings.push(
          "TLS verification is off (insecure_skip_tls_verify): the endpoint's certificate is not checked, anyone on the path can read and change what is sent",
        );
      const version = versionOf(req.id);
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
          lastError: echoText(c.lastError, redact),
          ...(c.lastErrorTime ? { lastErrorTime: timestampFromDate(c.lastErrorTime) } : {}),
          ...(c.lastSuccessTime ? { lastSuccessTime: timestampFromDate(c.lastSuccessTime) } : {}),
          configurationError: configurationError ?? "",
          insecureSettings: registry.insecureSettings(e),
          containers: BigInt(containers),
          maxContainers: BigInt(deps.maxContainersPerEndpoint),
          quotaRefusedEvents: BigInt(c.quotaRefusedEvents),
          warnings,
          omfVersion: (await version)?.version ?? "",
          omfVersionSource: (await version)?.source ?? "",
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

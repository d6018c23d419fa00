import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Bus } from "@meridian/bus";
import {
  AckOption,
  Compression,
  type CreateMonitorRequest,
  type IdigiListenerService,
  type Monitor,
  MonitorSchema,
  PayloadFormat,
  type Session,
  SessionSchema,
  SessionState,
  WatchEventsResponseSchema,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { requestLogger } from "@meridian/service-kit";
import type { SessionManager, SessionView } from "../pipeline/manager.js";
import { echoText, type MonitorApi, type MonitorSpec, type Monitor as PlatformMonitor } from "../platform/index.js";
import {
  MAX_DESCRIPTION_LENGTH,
  MAX_TOPIC_LENGTH,
  MAX_TOPICS,
  validateCreateMonitor,
  validateListMonitors,
  validateMonitorId,
  validateWatchEvents,
} from "./validation.js";

/** A session's last error: a line, long enough for a TLS or bus error with the setting it names. */
const MAX_LAST_ERROR = 300;

export interface IdigiListenerDeps {
  api: MonitorApi;
  sessions: SessionManager;
  bus: Bus;
  instance: string;
  /** How long StartSession waits for the platform's answer to the ConnectRequest. */
  startWaitMs?: number;
  /** IDIGI_MAX_MONITORS: monitors the account may hold before CreateMonitor refuses to add one. */
  maxMonitors: number;
  /** What IDIGI_ALLOW_INSECURE let the configuration expose (shown with every session's connection). */
  insecure: string[];
  /** IDIGI_MONITOR_MEMORY_BYTES. */
  memoryBudgetBytes: number;
}

const FORMAT_TO_API = { [PayloadFormat.UNSPECIFIED]: "json", [PayloadFormat.JSON]: "json", [PayloadFormat.XML]: "xml" } as const;
const COMPRESSION_TO_API = {
  [Compression.UNSPECIFIED]: "zlib",
  [Compression.NONE]: "none",
  [Compression.ZLIB]: "zlib",
  [Compression.GZIP]: "gzip",
} as const;
const ACK_TO_API = { [AckOption.UNSPECIFIED]: "explicit", [AckOption.EXPLICIT]: "explicit", [AckOption.OFF]: "off" } as const;

/** A (validated) CreateMonitorRequest as the platform client's spec, with the listener's defaults filled in. */
export function monitorSpec(req: CreateMonitorRequest): MonitorSpec {
  return {
    topics: [...req.topics],
    transport: "tcp",
    format: FORMAT_TO_API[req.format as PayloadFormat],
    compression: COMPRESSION_TO_API[req.compression as Compression],
    ackOption: ACK_TO_API[req.ackOption as AckOption],
    autoReplayOnConnect: req.autoReplay ?? true,
    ...(req.batchSize !== undefined ? { batchSize: req.batchSize } : {}),
    ...(req.batchDurationSeconds !== undefined ? { batchDurationSec: req.batchDurationSeconds } : {}),
    ...(req.description ? { description: req.description } : {}),
  };
}

/** Bounds of what a monitor record from the platform may put in an answer; the topic limits are CreateMonitor's. */
const ECHO = { id: 32, word: 32, topics: MAX_TOPICS, topic: MAX_TOPIC_LENGTH, description: MAX_DESCRIPTION_LENGTH } as const;
const cut = (s: string | undefined, max: number) => (s === undefined ? "" : s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** A monitor as the platform listed it, with every text it sent capped (a broken or hostile answer stays small). */
function monitorToProto(m: PlatformMonitor): Monitor {
  return create(MonitorSchema, {
    id: cut(m.id, ECHO.id),
    customerId: cut(m.customerId, ECHO.id),
    topics: m.topics.slice(0, ECHO.topics).map((t) => cut(t, ECHO.topic)),
    transport: cut(m.transport, ECHO.word),
    format: m.format === "xml" ? PayloadFormat.XML : m.format === "json" ? PayloadFormat.JSON : PayloadFormat.UNSPECIFIED,
    batchSize: m.batchSize ?? 0,
    batchDurationSeconds: m.batchDurationSec ?? 0,
    compression: m.compression === "none" ? Compression.NONE : m.compression === "zlib" ? Compression.ZLIB : Compression.UNSPECIFIED,
    ackOption: m.ackOption === "explicit" ? AckOption.EXPLICIT : m.ackOption === "off" ? AckOption.OFF : AckOption.UNSPECIFIED,
    autoReplay: m.autoReplayOnConnect ?? false,
    status: cut(m.status, ECHO.word),
    description: cut(m.description, ECHO.description),
  });
}

const STATE: Record<string, SessionState> = {
  idle: SessionState.CONNECTING,
  connecting: SessionState.CONNECTING,
  connected: SessionState.CONNECTED,
  disconnected: SessionState.DISCONNECTED,
  failed: SessionState.FAILED,
  stopped: SessionState.NOT_RUNNING,
};

/** What a session answer adds to the view: the listener's settings. */
export interface SessionSettings {
  insecure: string[];
  memoryBudgetBytes: number;
}

export function sessionToProto(v: SessionView, settings: SessionSettings): Session {
  const s = v.state;
  const c = v.counters;
  // Errors of the platform, the socket or the bus: one capped line, no stack.
  const lastError = echoText(s?.state === "failed" ? s.error.message : (c?.lastError ?? ""), MAX_LAST_ERROR);
  return create(SessionSchema, {
    monitorId: v.record.monitorId,
    state: s ? STATE[s.state]! : SessionState.NOT_RUNNING,
    connection: {
      host: v.connection.host,
      port: v.connection.port,
      tls: v.connection.tls,
      verifyCertificate: v.connection.verifyCertificate,
      insecure: settings.insecure,
    },
    startedTime: timestampFromDate(new Date(v.record.startedTime)),
    ...(v.stateTime ? { stateTime: timestampFromDate(v.stateTime) } : {}),
    lastError,
    connections: c?.connections ?? 0,
    receivedEvents: BigInt(c?.receivedEvents ?? 0),
    deliveredEvents: BigInt(c?.deliveredEvents ?? 0),
    skippedEvents: BigInt(c?.skippedEvents ?? 0),
    duplicateEvents: BigInt(c?.duplicateEvents ?? 0),
    failedBatches: BigInt(c?.failedBatches ?? 0),
    pendingBlocks: v.pendingBlocks,
    instance: v.instance ?? "",
    heldBytes: BigInt(v.heldBytes),
    memoryBudgetBytes: BigInt(settings.memoryBudgetBytes),
    atMemoryBudget: v.atMemoryBudget,
    memoryBudgetReached: c?.memoryBudgetReached ?? 0,
  });
}

export function idigiListenerService(deps: IdigiListenerDeps): ServiceImpl<typeof IdigiListenerService> {
  const { api, sessions, bus } = deps;
  const session = (v: SessionView) => sessionToProto(v, deps);

  return {
    async createMonitor(req, ctx) {
      validateCreateMonitor(req);
      const log = requestLogger(ctx);
      if (req.replaceExisting) {
        for (const old of await api.list({ topics: req.topics })) {
          await sessions.forget(old.id);
          await api.delete(old.id);
          log.info({ monitorId: old.id }, "replaced monitor deleted");
        }
      }
      // Counted on the platform (the account's monitors, whoever made them): each one is a push session here.
      // Concurrent creates may pass together; a loop of one cannot get past it.
      const count = (await api.list()).length;
      if (count >= deps.maxMonitors)
        throw new ConnectError(
          `monitor quota reached: the account has ${count} monitors, IDIGI_MAX_MONITORS=${deps.maxMonitors}; delete one first`,
          Code.ResourceExhausted,
        );
      const spec = monitorSpec(req);
      const monitor = await api.create(spec);
      log.info({ monitorId: monitor.id, topics: spec.topics }, "monitor created");
      if (!req.startSession) return { monitor: monitorToProto(monitor) };
      const started = await sessions.start(monitor.id, deps.startWaitMs);
      return { monitor: monitorToProto(monitor), session: session(started) };
    },

    async listMonitors(req) {
      validateListMonitors(req);
      const list = await api.list(req.topics.length > 0 ? { topics: [...req.topics] } : {});
      return { monitors: list.map(monitorToProto) };
    },

    async deleteMonitor(req, ctx) {
      validateMonitorId(req);
      // Unknown at the platform → not_found before anything is stopped.
      await api.get(req.monitorId);
      await sessions.forget(req.monitorId);
      await api.delete(req.monitorId);
      requestLogger(ctx).info({ monitorId: req.monitorId }, "monitor deleted");
      return {};
    },

    async startSession(req) {
      validateMonitorId(req);
      return { session: session(await sessions.start(req.monitorId, deps.startWaitMs)) };
    },

    async stopSession(req) {
      validateMonitorId(req);
      await sessions.stop(req.monitorId);
      return {};
    },

    async listSessions() {
      const { sessions: views, recordsUnavailable } = await sessions.list();
      return { sessions: views.map(session), recordsUnavailable };
    },

    async *watchEvents(req, ctx) {
      validateWatchEvents(req);
      if (!bus.connected) throw new ConnectError("event bus unavailable", Code.Unavailable);
      // A monitor is known when it has a session here or exists on the platform.
      if (!(await sessions.isRecorded(req.monitorId))) await api.get(req.monitorId);
      const stream = bus.subscribe(
        { platform: Platform.IDIGI, connection: req.monitorId },
        { signal: ctx.signal, ...(req.startTime ? { startTime: timestampDate(req.startTime) } : {}) },
      );
      try {
        for await (const event of stream) yield create(WatchEventsResponseSchema, { event });
      } catch (err) {
        // The caller left or the server is stopping: the stream simply ends.
        if (ctx.signal.aborted) return;
        throw err;
      }
    },
  };
}

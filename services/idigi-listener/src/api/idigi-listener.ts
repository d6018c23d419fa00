import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type Bus, routeBucket } from "@meridian/bus";
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
  type WatchEventsResponse,
  WatchEventsResponseSchema,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { callerOf, requestLogger } from "@meridian/service-kit";
import type { Logger } from "pino";
import { ackOptionWarning, type SessionManager, type SessionView } from "../pipeline/manager.js";
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
    warnings: v.record.ackWarning ? [v.record.ackWarning] : [],
  });
}

/** A route that names the monitor as its source (a catch-all route does not keep a watcher's own monitor alive). */
function routeUses(route: Route, monitorId: string): boolean {
  const s = route.source;
  return s !== undefined && s.connection === monitorId && (s.platform === Platform.IDIGI || s.platform === Platform.UNSPECIFIED);
}

/** platform:admin, as the access rule of CreateMonitor asks it ("*" holds every role). */
function mayAdminister(roles: ReadonlySet<string>): boolean {
  return roles.has("*") || roles.has("platform:admin");
}

/** A WatchEvents answer; with raw payloads the record as sent goes beside the event, not twice. */
function watchAnswer(event: TelemetryEvent, rawPayloads: boolean): WatchEventsResponse {
  if (!rawPayloads) return create(WatchEventsResponseSchema, { event });
  const raw = event.raw;
  event.raw = undefined;
  if (!raw) return create(WatchEventsResponseSchema, { event });
  return create(WatchEventsResponseSchema, {
    event,
    rawPayload: Buffer.from(raw.data).toString("utf8"),
    rawFormat: raw.contentType === "application/xml" ? PayloadFormat.XML : PayloadFormat.JSON,
  });
}

export function idigiListenerService(deps: IdigiListenerDeps): ServiceImpl<typeof IdigiListenerService> {
  const { api, sessions, bus } = deps;
  const session = (v: SessionView) => sessionToProto(v, deps);
  /** Watchers per monitor on this instance: a leaving watcher does not delete a monitor another one watches. */
  const watchers = new Map<string, number>();

  /**
   * Creates a monitor (the seed's get, delete, create with replace_existing) and starts its session when asked. The
   * v1 API documents no ack option, so its monitor is read back: what the platform keeps is the answer, and an ack
   * option it does not confirm is a warning.
   */
  async function createMonitor(
    req: CreateMonitorRequest,
    log: Logger,
    opts: { includeRaw?: boolean; onCreated?: (monitorId: string) => void } = {},
  ) {
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
    let monitor = await api.create(spec);
    log.info({ monitorId: monitor.id, topics: spec.topics }, "monitor created");
    opts.onCreated?.(monitor.id);
    if (!api.ackOptionDocumented) monitor = await api.get(monitor.id);
    const warning = ackOptionWarning(monitor, api.ackOptionDocumented === true);
    if (warning) log.warn({ monitorId: monitor.id, ackOption: spec.ackOption }, warning);
    const warnings = warning ? [warning] : [];
    if (!req.startSession) return { monitor: monitorToProto(monitor), warnings };
    const started = await sessions.start(monitor.id, deps.startWaitMs, opts);
    return { monitor: monitorToProto(monitor), session: session(started), warnings };
  }

  /**
   * A watcher that created its monitor left: stop the session and delete the monitor, unless another watcher here
   * watches it or a route names it. The routes bucket unreadable (e.g. no permission) keeps the monitor: a route's
   * data source is never deleted on a guess.
   */
  async function leave(monitorId: string, log: Logger): Promise<void> {
    if ((watchers.get(monitorId) ?? 0) > 0) {
      log.info({ monitorId, watchers: watchers.get(monitorId) }, "monitor kept after its watcher left: other watchers watch it");
      return;
    }
    let routes: string[];
    try {
      routes = (await routeBucket(bus).entries()).filter(([, r]) => routeUses(r, monitorId)).map(([id]) => id);
    } catch (err) {
      log.warn({ err, monitorId }, "monitor kept after its watcher left: the routes could not be read to know whether one uses it");
      return;
    }
    if (routes.length > 0) {
      log.info({ monitorId, routes: routes.slice(0, 10) }, "monitor kept after its watcher left: routes use it");
      return;
    }
    try {
      await sessions.forget(monitorId);
      await api.delete(monitorId);
      log.info({ monitorId }, "monitor deleted: the watcher that created it left");
    } catch (err) {
      log.warn({ err, monitorId }, "deleting the monitor of a watcher that left failed; delete it with DeleteMonitor");
    }
  }

  return {
    async createMonitor(req, ctx) {
      validateCreateMonitor(req);
      return createMonitor(req, requestLogger(ctx));
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
      const log = requestLogger(ctx);
      if (!bus.connected) throw new ConnectError("event bus unavailable", Code.Unavailable);
      let monitorId = req.monitorId;
      let watching = false;
      try {
        let first: WatchEventsResponse | undefined;
        // A created monitor is watched from before it existed: nothing its session publishes is missed.
        let startTime = req.startTime ? timestampDate(req.startTime) : undefined;
        if (req.createMonitor) {
          if (!mayAdminister(callerOf(ctx).roles))
            throw new ConnectError("create_monitor creates a monitor: it needs the platform:admin role", Code.PermissionDenied);
          startTime ??= new Date();
          const created = await createMonitor({ ...req.createMonitor, startSession: true }, log, {
            includeRaw: req.rawPayloads,
            onCreated: (id) => {
              monitorId = id;
            },
          });
          first = create(WatchEventsResponseSchema, { monitor: created.monitor, ...(created.session ? { session: created.session } : {}) });
        } else if (!(await sessions.isRecorded(monitorId))) {
          // A monitor is known when it has a session here or exists on the platform.
          await api.get(monitorId);
        }
        watchers.set(monitorId, (watchers.get(monitorId) ?? 0) + 1);
        watching = true;
        if (req.rawPayloads && !(await sessions.keepsRaw(monitorId)))
          throw new ConnectError(
            `raw_payloads: monitor ${monitorId}'s session does not keep the payloads as sent; set IDIGI_INCLUDE_RAW=true on idigi-listener, or watch with create_monitor and raw_payloads`,
            Code.FailedPrecondition,
          );
        if (first) yield first;
        const stream = bus.subscribe(
          { platform: Platform.IDIGI, connection: monitorId },
          { signal: ctx.signal, ...(startTime ? { startTime } : {}) },
        );
        for await (const event of stream) yield watchAnswer(event, req.rawPayloads);
      } catch (err) {
        // The caller left or the server is stopping: the stream simply ends.
        if (!ctx.signal.aborted) throw err;
      } finally {
        if (watching) {
          const left = (watchers.get(monitorId) ?? 1) - 1;
          if (left > 0) watchers.set(monitorId, left);
          else watchers.delete(monitorId);
        }
        // Also when the session could not start: the monitor this watcher created goes with it.
        if (req.createMonitor && req.deleteMonitorOnLeave && monitorId) await leave(monitorId, log);
      }
    },
  };
}

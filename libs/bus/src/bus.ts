import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Command, CommandResponse, WritablePropertyUpdate } from "@meridian/contracts/meridian/command/v1/command_pb";
import type { Platform, TelemetryBatch, TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, retry } from "@meridian/retry";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  DiscardPolicy,
  ErrorCode,
  headers,
  type JetStreamClient,
  type JetStreamManager,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "nats";
import type { Logger } from "pino";
import { BacklogMonitor, type BacklogState, type BacklogTarget, type BusWarning, DEFAULT_BACKLOG_CHECK_INTERVAL_MS } from "./backlog.js";
import {
  COMMAND_RESPONSE_SCHEMA,
  COMMAND_SCHEMA,
  type CommandResponseMessage,
  checkCommandResponse,
  commandAddress,
  decodeCommand,
  decodeCommandResponse,
  decodeDelivered,
  decodeWritablePropertyUpdate,
  encodeCommand,
  encodeCommandResponse,
  encodeDelivered,
  encodeWritablePropertyUpdate,
  WRITABLE_PROPERTY_UPDATE_SCHEMA,
  writablePropertyAddress,
} from "./cloud-to-device.js";
import {
  decodeBatch,
  encodeBatch,
  encodeBatchWithin,
  encodedEventSize,
  MAX_EVENTS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  makeBatch,
  SCHEMA_HEADER,
  TELEMETRY_BATCH_SCHEMA,
} from "./codec.js";
import { type DeadLetter, deadLetterHeaders, REPLAY_CONSUMER_HEADER } from "./dead-letter.js";
import {
  BusPermissionError,
  BusUnavailableError,
  isNotFound,
  isPermissionError,
  isTransientBusFailure,
  MessageTooLargeError,
} from "./errors.js";
import { orderedMessages, type StreamMessage } from "./ordered.js";
import { parseServers, redactUrl } from "./servers.js";
import {
  type CloudToDeviceFilter,
  COMMAND_ROOT,
  commandFilterSubject,
  commandResponseFilterSubject,
  commandResponseSubject,
  DEAD_LETTER_ROOT,
  deadLetterSubject,
  encodeToken,
  parseCommandResponseSubject,
  severalDevicesSubject,
  sourceMatches,
  subjectMayHold,
  TELEMETRY_ROOT,
  type telemetryFilterSubject,
  telemetrySelection,
  telemetrySubject,
  WRITABLE_PROPERTY_ROOT,
  writablePropertyFilterSubject,
} from "./subjects.js";
import { EndOfTurn } from "./turn.js";

export const STREAMS = { telemetry: "TELEMETRY", deadLetter: "DEADLETTER", cloudToDevice: "CLOUD_TO_DEVICE" } as const;

/** How long respondToCommand waits for the instance holding the command to say whether the response reached the platform. */
export const DEFAULT_COMMAND_RESPONSE_WAIT_MS = 2000;

/** Default of BusOptions.publishRetryMs: a JetStream leader election on a cluster takes a few seconds. */
export const DEFAULT_PUBLISH_RETRY_MS = 10_000;
/** Quick at first (an election is often over within a second), never more than a second apart. */
const PUBLISH_RETRY_BACKOFF: BackoffPolicy = { initialMs: 50, maxMs: 1000, multiplier: 2, jitter: 0.2 };
/** An attempt near the deadline still gets this long for its ack. */
const MIN_PUBLISH_ATTEMPT_MS = 250;

export interface StreamLimits {
  /** How long the telemetry stream keeps events for a sink that is down: its catch-up horizon. */
  telemetryMaxAgeMs: number;
  telemetryMaxBytes: number;
  deadLetterMaxAgeMs: number;
  /** Size limit of the dead letters; when it is reached the oldest go first (see declareStreams). */
  deadLetterMaxBytes: number;
  /**
   * Commands and writable-property updates: a plant that is down reads what it missed within this horizon. A command
   * waiting for a response is answered (or timed out) within seconds anyway; the age limit is for offline commands
   * and property changes.
   */
  cloudToDeviceMaxAgeMs: number;
  cloudToDeviceMaxBytes: number;
  /** 1 locally, 3 on a production cluster. */
  replicas: number;
  /** Window in which a repeated Nats-Msg-Id is recognised as a duplicate. */
  duplicateWindowMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  telemetryMaxAgeMs: 72 * 3600_000,
  telemetryMaxBytes: 1024 ** 3,
  deadLetterMaxAgeMs: 30 * 24 * 3600_000,
  deadLetterMaxBytes: 1024 ** 3,
  cloudToDeviceMaxAgeMs: 24 * 3600_000,
  cloudToDeviceMaxBytes: 256 * 1024 ** 2,
  replicas: 1,
  duplicateWindowMs: 2 * 60_000,
};

export interface BusOptions {
  /** URLs; credentials in one (`nats://user:password@host`) are used when no others are given, and never logged. */
  servers: string | string[];
  /** Client name shown by the server; use the service name. It also names the reply inbox (see inboxPrefix). */
  name: string;
  logger: Logger;
  user?: string;
  pass?: string;
  token?: string;
  /** A NATS creds file (JWT and NKey seed), read at every connect so a rotated file is picked up. */
  credsFile?: string;
  /** PEM file of a CA to trust for TLS to NATS. */
  tlsCaFile?: string;
  /** PEM client certificate and key, for a server that verifies its clients. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /**
   * Where replies to this connection's requests go (JetStream API answers, pulled messages, KV watches):
   * `_INBOX.<name>` by default, so the NATS permissions can give each service its own inbox and no other's.
   */
  inboxPrefix?: string;
  /** A durable consumer whose oldest unacknowledged message is older than this is warned about (default 1 hour). */
  backlogAgeWarnMs?: number;
  /** How often the durable consumers of this process are checked for an old backlog or discarded messages. */
  backlogCheckIntervalMs?: number;
  streams?: Partial<StreamLimits>;
  /** Whether this process declares the streams (a service that only reads may leave it to others). */
  declareStreams?: boolean;
  /** How long a JetStream publish may wait for its ack. */
  publishTimeoutMs?: number;
  /**
   * How long a publish that failed for a transient reason (a stream leader election, a reconnect) is tried again before
   * its caller sees the failure; 0 turns retries off. Keep it below the deadline of whoever waits for the publish.
   */
  publishRetryMs?: number;
}

export interface PublishResult {
  /** Bus messages written and those the bus already had (same Nats-Msg-Id within the window). */
  stored: number;
  duplicates: number;
}

export interface SubscribeOptions {
  /** Replay from this time; unset means only what is published from now on. */
  startTime?: Date;
  signal?: AbortSignal;
}

type StatusListener = (connected: boolean) => void;

/**
 * The one NATS helper. Connecting never fails: an unreachable server is retried forever in the
 * background while `connected` is false, so a service can start, report not-ready and recover.
 */
export class Bus {
  readonly limits: StreamLimits;
  readonly ready: Promise<void>;
  private nc: NatsConnection | undefined;
  private jsClient: JetStreamClient | undefined;
  private jsmClient: JetStreamManager | undefined;
  private isConnected = false;
  /** The streams being declared again after a reconnect, one at a time. */
  private redeclaring: Promise<void> | undefined;
  private closed = false;
  private readonly listeners = new Set<StatusListener>();
  private readonly log: Logger;
  private readonly backlogMonitor: BacklogMonitor;
  /** Streams whose settings differ from ours and that this user may not update: warned about once. */
  private readonly settingsKept = new Set<string>();
  /** Publishes held to the end of the turn, so that those of all requests read in one turn share one write. */
  private readonly publishTurn = new EndOfTurn<() => void>((waiters) => {
    for (const w of waiters) w();
  });

  private constructor(private readonly options: BusOptions) {
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...options.streams };
    this.log = options.logger.child({ component: "bus" });
    this.backlogMonitor = new BacklogMonitor(this, {
      warnAgeMs: options.backlogAgeWarnMs ?? 3600_000,
      intervalMs: options.backlogCheckIntervalMs ?? DEFAULT_BACKLOG_CHECK_INTERVAL_MS,
      logger: this.log,
    });
    this.ready = this.start();
    // ready is awaited by whoever needs it; an unobserved rejection must not crash the process.
    this.ready.catch(() => {});
  }

  private get publishTimeoutMs(): number {
    return this.options.publishTimeoutMs ?? 5000;
  }

  static connect(options: BusOptions): Bus {
    return new Bus(options);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  onStatus(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setConnected(value: boolean): void {
    if (this.isConnected === value) return;
    this.isConnected = value;
    for (const l of this.listeners) l(value);
  }

  private async start(): Promise<void> {
    const o = this.options;
    // nats.js ignores credentials in a URL; they are taken out here, so no URL that is logged carries them.
    const list = parseServers(o.servers);
    const user = o.user ?? (o.token || o.credsFile ? undefined : list.user);
    const pass = o.user ? o.pass : list.pass;
    const token = o.token ?? (o.user || o.credsFile ? undefined : list.token);
    const tls = {
      ...(o.tlsCaFile ? { caFile: o.tlsCaFile } : {}),
      ...(o.tlsCertFile && o.tlsKeyFile ? { certFile: o.tlsCertFile, keyFile: o.tlsKeyFile } : {}),
    };
    const credsFile = o.credsFile;
    const opts: ConnectionOptions = {
      servers: list.servers,
      name: o.name,
      inboxPrefix: o.inboxPrefix ?? `_INBOX.${encodeToken(o.name)}`,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      pingInterval: 10_000,
      // Two Error objects (stack traces) per request otherwise, one per publish and KV write: a few percent of the
      // gateway's CPU. Our own logs say which operation failed.
      noAsyncTraces: true,
      ...(user ? { user, pass: pass ?? "" } : {}),
      ...(token ? { token } : {}),
      ...(credsFile ? { authenticator: credsAuthenticator(() => readFileSync(credsFile)) } : {}),
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
    };
    this.log.info(
      {
        servers: list.servers.map(redactUrl),
        auth: credsFile ? "creds" : user ? "user" : token ? "token" : "none",
        tls: opts.tls !== undefined,
      },
      "connecting to NATS",
    );
    const nc = await connect(opts);
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.jsClient = nc.jetstream({ timeout: this.publishTimeoutMs });
    this.jsmClient = await nc.jetstreamManager({ timeout: this.publishTimeoutMs });
    await this.declareStreamsWithRetry();
    this.setConnected(true);
    this.log.info({ server: redactUrl(nc.getServer()) }, "connected to NATS");
    void this.watchStatus(nc);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.log.warn({ server: redactUrl(String(s.data)) }, "NATS disconnected");
        this.setConnected(false);
      } else if (s.type === "error" && s.permissionContext) {
        // Each refusal also fails its caller; this line names what the deployment's NATS permissions lack.
        this.log.error(
          { operation: s.permissionContext.operation, subject: s.permissionContext.subject },
          "NATS refused an operation this user has no permission for",
        );
      } else if (s.type === "reconnect") {
        this.log.info({ server: redactUrl(String(s.data)) }, "NATS reconnected");
        this.setConnected(true);
        // A server that lost its store (no volume) comes back without our streams: they are declared again, without
        // holding publishes back meanwhile. On a cluster a reconnect comes with a leader election, during which
        // declaring times out for seconds (publishes were refused as "not connected" past publishRetryMs); a publish
        // to a stream not there yet finds no responders and is retried.
        this.redeclaring ??= this.declareStreamsWithRetry().finally(() => {
          this.redeclaring = undefined;
        });
      }
    }
  }

  private async declareStreamsWithRetry(): Promise<void> {
    if (this.options.declareStreams === false) return;
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        await this.declareStreams();
        return;
      } catch (err) {
        this.log.warn({ err, attempt }, "declaring streams failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
      }
    }
  }

  /** Creates or updates the telemetry, dead-letter and cloud-to-device streams (idempotent). */
  async declareStreams(): Promise<void> {
    const l = this.limits;
    await this.ensureStream({
      name: STREAMS.telemetry,
      subjects: [`${TELEMETRY_ROOT}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(l.telemetryMaxAgeMs),
      max_bytes: l.telemetryMaxBytes,
      duplicate_window: nanos(l.duplicateWindowMs),
      num_replicas: l.replicas,
    });
    await this.ensureStream({
      name: STREAMS.deadLetter,
      subjects: [`${DEAD_LETTER_ROOT}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      // Full, the oldest dead letters make room. Refusing new ones instead would fail every sink's dead-letter
      // publish, so each would redeliver its poison message forever and a source would hold its platform's acks.
      discard: DiscardPolicy.Old,
      max_age: nanos(l.deadLetterMaxAgeMs),
      max_bytes: l.deadLetterMaxBytes,
      duplicate_window: nanos(l.duplicateWindowMs),
      num_replicas: l.replicas,
    });
    try {
      await this.ensureStream({
        name: STREAMS.cloudToDevice,
        subjects: [`${COMMAND_ROOT}.>`, `${WRITABLE_PROPERTY_ROOT}.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_age: nanos(l.cloudToDeviceMaxAgeMs),
        max_bytes: l.cloudToDeviceMaxBytes,
        duplicate_window: nanos(l.duplicateWindowMs),
        num_replicas: l.replicas,
      });
    } catch (err) {
      // Only the services that take commands and property changes from a platform, or hand them to the plant, need
      // this stream; a NATS user that may not even read it belongs to one that does not, and must still start.
      if (!isPermissionError(err)) throw err;
      if (!this.settingsKept.has(STREAMS.cloudToDevice)) {
        this.settingsKept.add(STREAMS.cloudToDevice);
        this.log.info({ stream: STREAMS.cloudToDevice }, "this service's NATS user may not declare the stream; it does not use it");
      }
    }
  }

  /**
   * Creates the stream, or updates it when its settings differ from ours. Only the NATS user that owns the streams'
   * settings may update them (the gateway, in the deployments' permissions); for any other a difference is logged
   * once and the stream keeps its settings.
   */
  private async ensureStream(config: Partial<StreamConfig> & { name: string }): Promise<void> {
    const jsm = this.jsm();
    let current: StreamConfig;
    try {
      current = (await jsm.streams.info(config.name)).config;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(config);
      return;
    }
    const differs = Object.entries(config).filter(([k, v]) => JSON.stringify(current[k as keyof StreamConfig]) !== JSON.stringify(v));
    if (differs.length === 0) return;
    try {
      await jsm.streams.update(config.name, config);
    } catch (err) {
      if (!isPermissionError(err)) throw err;
      if (!this.settingsKept.has(config.name)) {
        this.settingsKept.add(config.name);
        this.log.warn(
          { stream: config.name, settings: differs.map(([k]) => k) },
          "stream settings differ from this service's, and its NATS user may not change them; the stream keeps its own",
        );
      }
    }
  }

  /** The JetStream client; throws BusUnavailableError while disconnected. */
  js(): JetStreamClient {
    if (!this.jsClient || !this.nc || this.nc.isClosed()) throw new BusUnavailableError();
    return this.jsClient;
  }

  jsm(): JetStreamManager {
    if (!this.jsmClient || !this.nc || this.nc.isClosed()) throw new BusUnavailableError();
    return this.jsmClient;
  }

  connection(): NatsConnection {
    if (!this.nc || this.nc.isClosed()) throw new BusUnavailableError();
    return this.nc;
  }

  /** Publishes one batch with Nats-Msg-Id = batch id; a repeat within the window is a no-op. */
  async publishBatch(subject: string, batch: TelemetryBatch): Promise<{ seq: number; duplicate: boolean }> {
    return this.publishStored(subject, encodeBatch(batch), schemaHeaders(TELEMETRY_BATCH_SCHEMA), batch.id);
  }

  /**
   * JetStream publish that resolves once the stream stored the message (or recognised its msgId as a duplicate), with
   * the one mapping of its failures: BusUnavailableError, BusPermissionError, MessageTooLargeError.
   *
   * On a cluster the stream's leader may be moving (a node died, was drained or restarted): for a few seconds a
   * publish times out, finds no responders or is answered 503. Such a failure, and a client between two servers, is
   * retried for up to `publishRetryMs` with the same Nats-Msg-Id, so the stream stores the message once even when an
   * attempt that timed out was stored after all. A message without an id is retried only when it surely was not sent.
   */
  private async publishStored(subject: string, data: Uint8Array, h: MsgHdrs, msgId?: string): Promise<{ seq: number; duplicate: boolean }> {
    const attempt = async (timeout?: number) => {
      if (!this.isConnected) throw new BusUnavailableError();
      const ack = await this.js().publish(subject, data, {
        headers: h,
        ...(msgId === undefined ? {} : { msgID: msgId }),
        ...(timeout === undefined ? {} : { timeout }),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    };
    try {
      // With the publishes of the other requests read in this turn: one socket write for all (see EndOfTurn).
      await new Promise<void>((r) => this.publishTurn.add(r));
      return await attempt();
    } catch (err) {
      if (this.options.publishRetryMs === 0 || !this.isTransientPublishFailure(err, msgId !== undefined)) {
        throw this.publishError(err, subject, data.length);
      }
      return this.publishAgain(attempt, err, subject, data.length, msgId !== undefined);
    }
  }

  /** The retries of publishStored after a first transient failure, kept off the path of a publish that succeeds. */
  private async publishAgain<T>(
    attempt: (timeout: number) => Promise<T>,
    first: unknown,
    subject: string,
    bytes: number,
    hasMsgId: boolean,
  ): Promise<T> {
    const budget = this.options.publishRetryMs ?? DEFAULT_PUBLISH_RETRY_MS;
    const deadline = Date.now() + budget;
    const signal = AbortSignal.timeout(budget);
    let last = first;
    this.log.debug({ subject, err: (first as Error).message }, "publish failed; retrying while the bus recovers");
    try {
      return await retry(
        // An attempt ends by the deadline, whatever the client's own publish timeout.
        () => attempt(Math.max(MIN_PUBLISH_ATTEMPT_MS, Math.min(this.publishTimeoutMs, deadline - Date.now()))),
        {
          policy: PUBLISH_RETRY_BACKOFF,
          maxAttempts: Number.POSITIVE_INFINITY,
          signal,
          isRetryable: (err) => {
            last = err;
            return this.isTransientPublishFailure(err, hasMsgId);
          },
        },
      );
    } catch (err) {
      throw this.publishError(signal.aborted ? last : err, subject, bytes);
    }
  }

  /**
   * A failure another attempt may overcome: the client between two servers, no stream leader (no responders, 503, a JetStream
   * API 5xx), or no answer in time. A timeout may hide a stored message, so it is retried only with a Nats-Msg-Id.
   */
  private isTransientPublishFailure(err: unknown, hasMsgId: boolean): boolean {
    if (this.closed) return false;
    // Waiting makes sense for a reconnect; a bus that never reached a server (not ready) says so at once.
    if (err instanceof BusUnavailableError) return this.nc !== undefined;
    if ((err as { code?: string }).code === ErrorCode.NoResponders) return true;
    return hasMsgId && isTransientBusFailure(err);
  }

  /**
   * Stores a dead letter on `deadletter.v1.<consumer>` with the reason in its headers: how a sink gives up on a
   * message and how a source parks data that can never become telemetry. Fails like `publishBatch`
   * (BusUnavailableError while the bus is down, MessageTooLargeError), so the caller keeps the original until it is stored.
   */
  async publishDeadLetter(letter: DeadLetter): Promise<{ seq: number; duplicate: boolean }> {
    return this.publishStored(deadLetterSubject(letter.consumer), letter.data, deadLetterHeaders(letter), letter.msgId);
  }

  /**
   * Stores a replayed dead letter on its original telemetry subject (DeadLetters.replay builds the headers and the
   * msgId); fails like publishBatch.
   */
  async publishReplay(subject: string, data: Uint8Array, h: MsgHdrs, msgId: string): Promise<{ seq: number; duplicate: boolean }> {
    return this.publishStored(subject, data, h, msgId);
  }

  /**
   * Stores a command on `command.v1.<platform>.<connection>.<device>.<name>` (stream CLOUD_TO_DEVICE); resolves once
   * stored. Nats-Msg-Id is its subject and request id, so a platform's redelivery within the duplicate window is
   * stored once. Fails like publishBatch, or with InvalidCloudToDeviceMessageError when the id, target or name is missing.
   */
  async publishCommand(cmd: Command): Promise<{ seq: number; duplicate: boolean }> {
    const { subject, msgId } = commandAddress(cmd);
    return this.publishStored(subject, encodeCommand(cmd), schemaHeaders(COMMAND_SCHEMA), msgId);
  }

  /**
   * Stores a writable-property update on `property.v1.<platform>.<connection>.<device>`; resolves once stored.
   * Nats-Msg-Id is device, component, name and desired version: the same change seen again is stored once.
   */
  async publishWritablePropertyUpdate(update: WritablePropertyUpdate): Promise<{ seq: number; duplicate: boolean }> {
    const { subject, msgId } = writablePropertyAddress(update);
    return this.publishStored(subject, encodeWritablePropertyUpdate(update), schemaHeaders(WRITABLE_PROPERTY_UPDATE_SCHEMA), msgId);
  }

  /**
   * Sends a command's response on `command-response.v1.<platform>.<connection>.<request id>` over core NATS: nothing
   * stores it, its life is the command's deadline. Whoever holds the command answers whether the response reached the
   * platform; with no answer within `waitMs` (no instance holds it: answered already, or its deadline passed) or no
   * subscriber at all, it was not delivered.
   */
  async respondToCommand(
    platform: Platform,
    connection: string,
    response: CommandResponse,
    options: { waitMs?: number } = {},
  ): Promise<{ delivered: boolean }> {
    checkCommandResponse(response);
    if (!this.isConnected) throw new BusUnavailableError();
    const subject = commandResponseSubject(platform, connection, response.requestId);
    const data = encodeCommandResponse(response);
    try {
      const reply = await this.connection().request(subject, data, {
        timeout: options.waitMs ?? DEFAULT_COMMAND_RESPONSE_WAIT_MS,
        headers: schemaHeaders(COMMAND_RESPONSE_SCHEMA),
      });
      return { delivered: decodeDelivered(reply.data) };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === ErrorCode.NoResponders || code === ErrorCode.Timeout) return { delivered: false };
      throw this.publishError(err, subject, data.length);
    }
  }

  /**
   * The command responses of one connection of a platform, or of all its connections (`connection` undefined), as
   * they are published from now on. The subscription exists once this returns (not at the first iteration), so a
   * response sent after the call is not missed; it follows reconnects. A message that is not a CommandResponse is
   * skipped with a warning. Ends when the signal aborts.
   */
  commandResponses(platform: Platform, connection: string | undefined, signal: AbortSignal): AsyncIterable<CommandResponseMessage> {
    const nc = this.connection();
    const sub = nc.subscribe(commandResponseFilterSubject(platform, connection));
    const stop = () => sub.unsubscribe();
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
    const log = this.log;
    return (async function* () {
      try {
        for await (const m of sub) {
          const at = parseCommandResponseSubject(m.subject);
          let response: CommandResponse;
          try {
            response = decodeCommandResponse(m.data);
          } catch (err) {
            log.warn({ err, subject: m.subject }, "not a CommandResponse; skipped");
            continue;
          }
          if (!at || (response.requestId && response.requestId !== at.requestId)) {
            log.warn(
              { subject: m.subject, requestId: response.requestId },
              "command response whose request id is not its subject's; skipped",
            );
            continue;
          }
          if (!response.requestId) response.requestId = at.requestId;
          yield {
            connection: at.connection,
            response,
            answer: (delivered: boolean) => {
              if (m.reply) m.respond(encodeDelivered(delivered));
            },
          };
        }
      } finally {
        signal.removeEventListener("abort", stop);
        sub.unsubscribe();
      }
    })();
  }

  /** Commands matching the filter as they are stored from now on (or from `startTime`), in stream order; like subscribe. */
  async *watchCommands(filter: CloudToDeviceFilter, options: SubscribeOptions = {}): AsyncGenerator<Command> {
    for await (const m of this.ordered(STREAMS.cloudToDevice, commandFilterSubject(filter), options)) {
      const cmd = this.decodeStored(m, decodeCommand);
      if (cmd) yield cmd;
    }
  }

  /** Writable-property updates matching the filter as they are stored from now on (or from `startTime`); like subscribe. */
  async *watchWritableProperties(
    filter: Omit<CloudToDeviceFilter, "name">,
    options: SubscribeOptions = {},
  ): AsyncGenerator<WritablePropertyUpdate> {
    for await (const m of this.ordered(STREAMS.cloudToDevice, writablePropertyFilterSubject(filter), options)) {
      const update = this.decodeStored(m, decodeWritablePropertyUpdate);
      if (update) yield update;
    }
  }

  /** A stored message that does not decode would otherwise end every watcher of its subject: it is skipped, with a warning. */
  private decodeStored<T>(m: StreamMessage, decode: (data: Uint8Array) => T): T | undefined {
    try {
      return decode(m.data);
    } catch (err) {
      this.log.warn({ err, subject: m.subject, seq: m.seq }, "stored message does not decode; skipped");
      return undefined;
    }
  }

  private publishError(err: unknown, subject: string, bytes: number): Error {
    if (err instanceof BusUnavailableError) return err;
    if (isPermissionError(err)) return new BusPermissionError(subject, { cause: err });
    if ((err as { code?: string }).code === ErrorCode.MaxPayloadExceeded) return new MessageTooLargeError(subject, bytes, { cause: err });
    return new BusUnavailableError(`publish to ${subject} failed: ${(err as Error).message}`, { cause: err });
  }

  /**
   * Publishes events as one bus message per (platform, connection), keeping their order, in chunks of at most
   * MAX_EVENTS_PER_MESSAGE events / MAX_MESSAGE_BYTES (the contract is in subjects.ts at telemetrySubject). The message
   * id is derived from `batchId` when the source has one (an iDigi block, an Omnia page), else from the subject and the
   * event ids, with `:<chunk>` after the first chunk, so publishing the same events again is recognised as a duplicate.
   */
  async publishEvents(events: TelemetryEvent[], batchId?: string): Promise<PublishResult> {
    const groups = new Map<string, TelemetryEvent[]>();
    for (const e of events) {
      const s = e.source;
      if (!s) throw new Error(`event ${e.id} has no source`);
      // The platform is a number, so the first ':' ends it: no two (platform, connection) pairs share a key.
      const key = `${s.platform}:${s.connection}`;
      const list = groups.get(key);
      if (list) list.push(e);
      else groups.set(key, [e]);
    }
    const messages: Array<{ subject: string; batch: TelemetryBatch; data: Uint8Array | undefined }> = [];
    for (const [key, group] of groups) {
      const chunkId = (chunk: TelemetryEvent[], subject: string) =>
        batchId === undefined
          ? digest(`${subject}\n${chunk.map((e) => e.id).join("\n")}`)
          : groups.size === 1
            ? batchId
            : `${batchId}:${digest(key).slice(0, 16)}`;
      // Most calls fit one message: encoding it sizes it, and only a group that does not fit is sized for chunking.
      if (group.length <= MAX_EVENTS_PER_MESSAGE) {
        const subject = messageSubject(group);
        const batch = makeBatch(chunkId(group, subject), group);
        const data = encodeBatchWithin(batch, MAX_MESSAGE_BYTES);
        if (data) {
          messages.push({ subject, batch, data });
          continue;
        }
      }
      chunkEvents(group).forEach((chunk, i) => {
        const subject = messageSubject(chunk);
        const id = chunkId(chunk, subject);
        messages.push({ subject, batch: makeBatch(i === 0 ? id : `${id}:${i}`, chunk), data: undefined });
      });
    }
    const results = await Promise.all(
      messages.map((m) => this.publishStored(m.subject, m.data ?? encodeBatch(m.batch), schemaHeaders(TELEMETRY_BATCH_SCHEMA), m.batch.id)),
    );
    let duplicates = 0;
    for (const r of results) if (r.duplicate) duplicates++;
    return { stored: results.length - duplicates, duplicates };
  }

  /**
   * Live events matching the filter, in stream order (an ordered consumer: no server-side state to
   * clean up, re-created by the client after a reconnect without gaps). Replayed dead letters are skipped.
   */
  async *subscribe(filter: Parameters<typeof telemetryFilterSubject>[0], options: SubscribeOptions = {}): AsyncGenerator<TelemetryEvent> {
    const selection = telemetrySelection(filter);
    for await (const m of this.ordered(STREAMS.telemetry, selection.subject, options)) {
      // A replayed dead letter is for one sink; live telemetry showed the original when it was first published.
      if (m.headers?.get(REPLAY_CONSUMER_HEADER)) continue;
      // Another device's own message: nothing in it is the filter's.
      if (selection.events && !subjectMayHold(m.subject, selection.events)) continue;
      const batch = decodeBatch(m.data);
      for (const event of batch.events) {
        if (sourceMatches(filter as never, event.source)) yield event;
      }
    }
  }

  /**
   * A stream's messages on a subject filter through Meridian's ordered consumer (ordered.ts), from the next one stored
   * (or from `startTime`, never from the start of the stream), until the signal aborts or the caller stops iterating.
   */
  private async *ordered(stream: string, filterSubject: string, options: SubscribeOptions): AsyncGenerator<StreamMessage> {
    await this.ready;
    yield* orderedMessages(
      this.connection(),
      this.jsm(),
      this.options.inboxPrefix ?? `_INBOX.${encodeToken(this.options.name)}`,
      { ...options, stream, filterSubject },
      this.log,
    );
  }

  /**
   * Checks a durable consumer's backlog until the signal aborts (DurableConsumer does this while it delivers): its
   * age, and messages the stream discarded before the consumer acknowledged them. See backlog() and warnings().
   */
  watchBacklog(target: BacklogTarget, signal: AbortSignal): void {
    this.backlogMonitor.watch(target, signal);
  }

  /**
   * Tells the backlog check that this process handed a message back for redelivery after `delayMs`: until then no
   * one can acknowledge it, so if the stream discards it meanwhile, its data is lost.
   */
  noteRedelivery(stream: string, durable: string, seq: number, delayMs: number): void {
    this.backlogMonitor.noteRedelivery(stream, durable, seq, delayMs);
  }

  /** The watched consumers' backlogs as of their last check, for metrics. */
  backlog(): BacklogState[] {
    return this.backlogMonitor.snapshot();
  }

  /**
   * One durable consumer's backlog as of its last check (a pipeline's lag in its status), or undefined while no loop of
   * this process delivers from it.
   */
  backlogOf(durable: string, stream: string = STREAMS.telemetry): BacklogState | undefined {
    return this.backlogMonitor.stateOf(stream, durable);
  }

  /** Checks the watched consumers now instead of at the next interval. */
  checkBacklog(): Promise<void> {
    return this.backlogMonitor.check();
  }

  /** What an operator should look at now (an old backlog, discarded messages), for the service's status. */
  warnings(): BusWarning[] {
    return this.backlogMonitor.warnings();
  }

  /** Drains subscriptions and closes; safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.backlogMonitor.stop();
    this.setConnected(false);
    const nc = this.nc;
    if (nc && !nc.isClosed()) {
      try {
        await nc.drain();
      } catch (err) {
        this.log.warn({ err }, "NATS drain failed; closing");
        await nc.close();
      }
    }
  }
}

function schemaHeaders(schema: string): MsgHdrs {
  const h = headers();
  h.set(SCHEMA_HEADER, schema);
  return h;
}

/**
 * The publish call's events of one (platform, connection) as bus messages: in order, each chunk at most
 * MAX_EVENTS_PER_MESSAGE events and MAX_MESSAGE_BYTES encoded (an event larger than that alone is one chunk, which the
 * bus refuses as too large, as before).
 */
export function chunkEvents(events: TelemetryEvent[]): TelemetryEvent[][] {
  if (events.length <= MAX_EVENTS_PER_MESSAGE) {
    let bytes = 0;
    for (const e of events) bytes += encodedEventSize(e);
    if (bytes <= MAX_MESSAGE_BYTES) return [events];
  }
  const chunks: TelemetryEvent[][] = [];
  let chunk: TelemetryEvent[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = encodedEventSize(e);
    if (chunk.length > 0 && (chunk.length === MAX_EVENTS_PER_MESSAGE || bytes + size > MAX_MESSAGE_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(e);
    bytes += size;
  }
  chunks.push(chunk);
  return chunks;
}

/** The device's own subject when every event is of one device, else the connection's several-devices subject. */
function messageSubject(events: TelemetryEvent[]): string {
  const first = events[0]!.source!;
  for (const e of events) if (e.source!.device !== first.device) return severalDevicesSubject(first.platform, first.connection);
  return telemetrySubject(first);
}

function digest(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 32);
}

export { isNotFound };

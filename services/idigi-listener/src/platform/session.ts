import { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";
import { backoffDelay, sleep } from "@meridian/retry";
import { type PushSessionConfig, type PushSessionOptions, validatePushSessionOptions } from "./config.js";
import {
  IdigiAckError,
  IdigiConfigError,
  type IdigiConnectRefusedError,
  IdigiError,
  IdigiFrameError,
  IdigiNetworkError,
  IdigiPayloadError,
} from "./errors.js";
import {
  decodeConnectResponse,
  decodePublishMessage,
  encodeConnectRequest,
  encodePublishMessageReceived,
  FrameReader,
  FrameType,
  inflatePayload,
  interpretConnectResponse,
  type PayloadFormat,
  STATUS_OK,
} from "./frames.js";
import { type PushEvent, parsePayload } from "./payload.js";

/**
 * A push-monitor TCP session (shared/protocols/idigi.md §2): connect to port 3201 (TLS) or 3200 (plain), send a
 * ConnectRequest, then receive PublishMessage blocks until stopped, reconnecting with capped exponential backoff.
 *
 * API choice: an **EventEmitter** (`state`, `batch`, `invalidBatch`, `warning`), not an async iterator, because
 * connection state and data are separate streams and acking is decoupled from delivery: a consumer may hold
 * several batches in flight and ack each once it is durably stored. Backpressure comes from `maxUnacked` (the
 * socket is paused while that many blocks are unacked). The session never emits `error`, so an unattended
 * session cannot crash the process; failures arrive as `state` events.
 *
 * Acking is **explicit**: nothing is acked until `batch.ack()` / `session.ack(blockId)` is called. Block ids are
 * per connection (the server restarts them at 0), so an ack for a batch of a connection that has since closed
 * is refused with `IdigiAckError("stale_connection")` rather than acking an unrelated block of the new connection;
 * with auto-replay the server re-delivers that block.
 */

export type SessionState =
  | { state: "idle" }
  | { state: "connecting"; attempt: number }
  | { state: "connected"; connectionId: number; status: number; protocolVersion: number }
  /** The connection ended; a new attempt follows after `retryInMs`. `error` says why when it was not a plain close. */
  | { state: "disconnected"; reason: string; error?: Error; retryInMs: number }
  /** Terminal: a non-retryable ConnectResponse (bad credentials, unknown monitor, …) or reconnect attempts ran out. */
  | { state: "failed"; error: IdigiConnectRefusedError | IdigiNetworkError | IdigiFrameError | Error }
  /** Terminal: `stop()` was called. */
  | { state: "stopped" };

export interface PushBatch {
  monitorId: number;
  /** The connection this block arrived on (1, 2, …); acks are only valid on the same connection. */
  connectionId: number;
  blockId: number;
  /** The Msg count announced in the frame header. */
  count: number;
  events: PushEvent[];
  /** The payload exactly as received (zlib-compressed when `compressed`). */
  rawBytes: Buffer;
  compressed: boolean;
  format: PayloadFormat;
  /** Acks this block (status 200 by default) once it is durably stored; resolves when the ack is written. */
  ack(status?: number): Promise<void>;
}

/** A block whose frame was fine but whose payload could not be inflated or parsed. Ack it to skip it (dead-letter). */
export interface InvalidBatch extends Omit<PushBatch, "events" | "count"> {
  count: number;
  error: IdigiPayloadError;
}

export interface PushSessionEvents {
  state: [SessionState];
  batch: [PushBatch];
  invalidBatch: [InvalidBatch];
  /** Non-fatal problems: a listener threw, an ack could not be written, the announced count differs. */
  warning: [Error];
}

export interface PushSessionExtraOptions {
  /** Pause reading while this many blocks are unacked (default 0 = never pause). */
  maxUnacked?: number;
  /** Injected randomness for backoff jitter (tests). */
  random?: () => number;
}

interface Connection {
  id: number;
  socket: net.Socket;
  pending: Map<number, number>;
  unacked: number;
}

type Outcome = { kind: "refused"; error: IdigiConnectRefusedError } | { kind: "closed"; reason: string; error?: Error; handshook: boolean };

export class PushSession extends EventEmitter<PushSessionEvents> {
  readonly #config: PushSessionConfig;
  readonly #maxUnacked: number;
  readonly #random: () => number;
  #state: SessionState = { state: "idle" };
  #stopping = false;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #current: Connection | undefined;
  #socket: net.Socket | undefined;
  #connectionSeq = 0;

  /** Validates options (throws `IdigiConfigError`); does not connect until `start()`. */
  constructor(options: PushSessionOptions & PushSessionExtraOptions) {
    super();
    this.#config = validatePushSessionOptions(options);
    const max = options.maxUnacked ?? 0;
    if (!Number.isInteger(max) || max < 0) throw new IdigiConfigError("maxUnacked", "must be a non-negative integer");
    this.#maxUnacked = max;
    this.#random = options.random ?? Math.random;
  }

  get monitorId(): number {
    return this.#config.monitorId;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Block ids delivered on the current connection and not yet acked. */
  get pendingAcks(): number[] {
    return this.#current ? [...this.#current.pending.keys()] : [];
  }

  /** Starts connecting (idempotent). */
  start(): this {
    if (!this.#running && !this.#stopping) this.#running = this.#run();
    return this;
  }

  /** Closes the connection and stops reconnecting; resolves once the socket is closed. Unacked blocks stay unacked. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort(new IdigiError("session stopped"));
    const socket = this.#socket;
    if (socket && !socket.destroyed) {
      if (socket.connecting) socket.destroy();
      else socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    if (this.#running) await this.#running;
    else this.#setState({ state: "stopped" });
  }

  /** Acks `blockId` on the current connection. Rejects with `IdigiAckError` when it is not pending there. */
  ack(blockId: number, status: number = STATUS_OK): Promise<void> {
    return this.#ack(undefined, blockId, status);
  }

  #ack(connectionId: number | undefined, blockId: number, status: number): Promise<void> {
    const cur = this.#current;
    if (!cur) return Promise.reject(new IdigiAckError(blockId, connectionId === undefined ? "not_connected" : "stale_connection"));
    if (connectionId !== undefined && cur.id !== connectionId) return Promise.reject(new IdigiAckError(blockId, "stale_connection"));
    const n = cur.pending.get(blockId);
    if (!n) return Promise.reject(new IdigiAckError(blockId, "not_pending"));
    let frame: Buffer;
    try {
      frame = encodePublishMessageReceived(blockId, status);
    } catch (err) {
      return Promise.reject(err);
    }
    if (n === 1) cur.pending.delete(blockId);
    else cur.pending.set(blockId, n - 1);
    cur.unacked--;
    if (this.#maxUnacked > 0 && cur.unacked < this.#maxUnacked && cur.socket.isPaused()) cur.socket.resume();
    return new Promise((resolve, reject) => {
      cur.socket.write(frame, (err) => {
        if (err) reject(new IdigiNetworkError(`ack of block ${blockId} could not be written`, { cause: err }));
        else resolve();
      });
    });
  }

  #setState(s: SessionState): void {
    this.#state = s;
    this.#emitSafe("state", s);
  }

  #emitSafe<K extends keyof PushSessionEvents>(event: K, ...args: PushSessionEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: PushSessionEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      if (event !== "warning") this.#emitSafe("warning", new IdigiError(`a '${event}' listener threw`, { cause: err }));
    }
  }

  async #run(): Promise<void> {
    const cfg = this.#config;
    let failures = 0;
    try {
      while (!this.#stopping) {
        this.#setState({ state: "connecting", attempt: failures + 1 });
        const outcome = await this.#connectOnce();
        if (this.#stopping) break;
        if (outcome.kind === "refused" && !outcome.error.retryable) {
          this.#setState({ state: "failed", error: outcome.error });
          return;
        }
        if (outcome.kind === "closed" && outcome.handshook) failures = 0;
        failures++;
        if (failures > cfg.maxReconnectAttempts) {
          const last = outcome.kind === "refused" ? outcome.error : (outcome.error ?? new IdigiNetworkError(outcome.reason));
          this.#setState({ state: "failed", error: last });
          return;
        }
        const delay = backoffDelay(failures, cfg.backoff, this.#random);
        const reason = outcome.kind === "refused" ? outcome.error.message : outcome.reason;
        const error = outcome.kind === "refused" ? outcome.error : outcome.error;
        this.#setState(
          error ? { state: "disconnected", reason, error, retryInMs: delay } : { state: "disconnected", reason, retryInMs: delay },
        );
        try {
          await sleep(delay, this.#abort.signal);
        } catch {
          break;
        }
      }
      this.#setState({ state: "stopped" });
    } finally {
      this.#running = undefined;
    }
  }

  #connectOnce(): Promise<Outcome> {
    const cfg = this.#config;
    return new Promise<Outcome>((resolve) => {
      const id = ++this.#connectionSeq;
      const reader = new FrameReader({ maxFrameSize: cfg.maxFrameSize });
      let handshook = false;
      let refused: IdigiConnectRefusedError | undefined;
      let error: Error | undefined;
      let reason = "connection closed by peer";
      let handshakeTimer: NodeJS.Timeout | undefined;

      const socket: net.Socket = cfg.tls
        ? tls.connect({
            host: cfg.host,
            port: cfg.port,
            rejectUnauthorized: !cfg.insecure,
            ...(cfg.ca ? { ca: cfg.ca } : {}),
            ...(cfg.servername ? { servername: cfg.servername } : net.isIP(cfg.host) ? {} : { servername: cfg.host }),
          })
        : net.connect({ host: cfg.host, port: cfg.port });
      this.#socket = socket;

      const fail = (why: string, err?: Error) => {
        if (!error) {
          reason = why;
          error = err;
        }
        socket.destroy();
      };
      const connectTimer = setTimeout(() => fail("connect timed out", new IdigiNetworkError("connect timed out")), cfg.connectTimeoutMs);

      socket.once(cfg.tls ? "secureConnect" : "connect", () => {
        clearTimeout(connectTimer);
        socket.setNoDelay(true);
        if (cfg.keepAliveMs > 0) socket.setKeepAlive(true, cfg.keepAliveMs);
        socket.write(encodeConnectRequest({ username: cfg.username, password: cfg.password, monitorId: cfg.monitorId }));
        handshakeTimer = setTimeout(
          () => fail("no ConnectResponse in time", new IdigiNetworkError("handshake timed out")),
          cfg.handshakeTimeoutMs,
        );
      });

      socket.on("data", (chunk: Buffer) => {
        try {
          // feed() yields each whole frame before throwing for a bad header behind it in the same chunk.
          for (const frame of reader.feed(chunk)) {
            if (socket.destroyed) return;
            if (!handshook) {
              if (frame.type !== FrameType.ConnectResponse) {
                throw new IdigiFrameError("unexpected_type", `expected a ConnectResponse, got frame type ${frame.type}`, frame.type);
              }
              const result = interpretConnectResponse(decodeConnectResponse(frame.body));
              if (!result.ok) {
                refused = result.error;
                socket.destroy();
                return;
              }
              handshook = true;
              clearTimeout(handshakeTimer);
              this.#current = { id, socket, pending: new Map(), unacked: 0 };
              this.#setState({ state: "connected", connectionId: id, status: result.status, protocolVersion: result.protocolVersion });
            } else {
              if (frame.type !== FrameType.PublishMessage) {
                throw new IdigiFrameError("unexpected_type", `expected a PublishMessage, got frame type ${frame.type}`, frame.type);
              }
              this.#deliver(id, frame.body);
            }
          }
        } catch (err) {
          if (socket.destroyed) return;
          fail(err instanceof IdigiFrameError ? `frame error: ${err.message}` : String(err), err as Error);
        }
      });

      socket.on("error", (err) => {
        if (!error) {
          error = err;
          reason = err.message;
        }
      });

      socket.on("close", () => {
        clearTimeout(connectTimer);
        clearTimeout(handshakeTimer);
        if (this.#current?.id === id) this.#current = undefined;
        if (this.#socket === socket) this.#socket = undefined;
        if (refused) resolve({ kind: "refused", error: refused });
        else if (error) resolve({ kind: "closed", reason, error, handshook });
        else resolve({ kind: "closed", reason: handshook ? reason : "connection closed before the ConnectResponse", handshook });
      });
    });
  }

  #deliver(connectionId: number, body: Buffer): void {
    const cfg = this.#config;
    const cur = this.#current!;
    const msg = decodePublishMessage(body);
    cur.pending.set(msg.blockId, (cur.pending.get(msg.blockId) ?? 0) + 1);
    cur.unacked++;
    const base = {
      monitorId: cfg.monitorId,
      connectionId,
      blockId: msg.blockId,
      count: msg.count,
      rawBytes: Buffer.from(msg.payload),
      compressed: msg.compression === "zlib",
      format: msg.format,
      ack: (status: number = STATUS_OK) => this.#ack(connectionId, msg.blockId, status),
    };
    let events: PushEvent[];
    try {
      events = parsePayload(inflatePayload(msg, cfg.maxInflatedSize), msg.format);
    } catch (err) {
      const error = err instanceof IdigiPayloadError ? err : new IdigiPayloadError("bad_envelope", String(err), { cause: err });
      this.#emitSafe("invalidBatch", { ...base, error });
      this.#maybePause(cur);
      return;
    }
    if (events.length !== msg.count) {
      this.#emitSafe("warning", new IdigiError(`block ${msg.blockId} announces ${msg.count} messages but holds ${events.length}`));
    }
    this.#emitSafe("batch", { ...base, events });
    this.#maybePause(cur);
  }

  #maybePause(cur: Connection): void {
    if (this.#maxUnacked > 0 && cur.unacked >= this.#maxUnacked && !cur.socket.isPaused()) cur.socket.pause();
  }
}

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
 * Back-pressure is the only flow control the protocol has: the client stops reading its socket, the server's writes
 * back up, and the server keeps what it has not sent (and, with explicit acks, what was sent and not acked). The
 * session stops reading while `maxUnacked` blocks of the connection are unacked, or while the blocks it handed out and
 * that were not acked yet hold `maxHeldBytes` (counted across connections: a block of a connection that has gone is
 * held until its `ack()` is called, even though that ack can no longer be sent). Frames that arrived in the same read
 * wait in the frame reader; nothing is dropped.
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
  /** The document the events were parsed from: the payload decoded (Base64) and inflated, as the seed's callback gets it. */
  document: Buffer;
  /** Acks this block (status 200 by default) once it is durably stored; resolves when the ack is written. */
  ack(status?: number): Promise<void>;
}

/** A block whose frame was fine but whose payload could not be inflated or parsed. Ack it to skip it (dead-letter). */
export interface InvalidBatch extends Omit<PushBatch, "events" | "count" | "document"> {
  count: number;
  error: IdigiPayloadError;
}

/** `maxHeldBytes` started (`atLimit`) or stopped holding back reading. */
export interface HeldBytesChange {
  atLimit: boolean;
  heldBytes: number;
  maxHeldBytes: number;
}

export interface PushSessionEvents {
  state: [SessionState];
  batch: [PushBatch];
  invalidBatch: [InvalidBatch];
  /** Non-fatal problems: a listener threw, an ack could not be written, the announced count differs. */
  warning: [Error];
  heldBytes: [HeldBytesChange];
}

export interface PushSessionExtraOptions {
  /** Pause reading while this many blocks are unacked (default 0 = never pause). */
  maxUnacked?: number;
  /**
   * Pause reading while the blocks handed out and not acked hold this many bytes: each counts its payload as received
   * plus its payload inflated (default 0 = no limit). A block is always taken when none is held, so one larger than
   * the limit still passes, alone.
   */
  maxHeldBytes?: number;
  /** Injected randomness for backoff jitter (tests). */
  random?: () => number;
}

/** A delivered block's claim on the held bytes, given back once (when it is acked, or its ack is given up). */
interface Held {
  release(): void;
}

interface Connection {
  id: number;
  socket: net.Socket;
  reader: FrameReader;
  handshook: boolean;
  /** Reading stopped for back-pressure; frames already received wait in the reader. */
  paused: boolean;
  /** Block id → the delivered, unacked blocks with that id (several after the u16 id wraps), oldest first. */
  pending: Map<number, Held[]>;
  unacked: number;
  /** Acks written in this tick are held back and leave in one write (one segment instead of one per block). */
  corked: boolean;
  handshakeTimer?: NodeJS.Timeout;
  refused?: IdigiConnectRefusedError;
  error?: Error;
  reason: string;
}

const NOTHING = Buffer.alloc(0);

type Outcome = { kind: "refused"; error: IdigiConnectRefusedError } | { kind: "closed"; reason: string; error?: Error; handshook: boolean };

export class PushSession extends EventEmitter<PushSessionEvents> {
  readonly #config: PushSessionConfig;
  readonly #maxUnacked: number;
  readonly #maxHeldBytes: number;
  readonly #random: () => number;
  #state: SessionState = { state: "idle" };
  #stopping = false;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  /** The connection whose handshake succeeded: the only one acks go to. */
  #current: Connection | undefined;
  /** The connection being opened or in use. */
  #live: Connection | undefined;
  #connectionSeq = 0;
  #heldBytes = 0;
  #heldBlocks = 0;
  #atHeldLimit = false;

  /** Validates options (throws `IdigiConfigError`); does not connect until `start()`. */
  constructor(options: PushSessionOptions & PushSessionExtraOptions) {
    super();
    this.#config = validatePushSessionOptions(options);
    const max = options.maxUnacked ?? 0;
    if (!Number.isInteger(max) || max < 0) throw new IdigiConfigError("maxUnacked", "must be a non-negative integer");
    this.#maxUnacked = max;
    const maxBytes = options.maxHeldBytes ?? 0;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new IdigiConfigError("maxHeldBytes", "must be a non-negative integer");
    this.#maxHeldBytes = maxBytes;
    this.#random = options.random ?? Math.random;
  }

  /** Bytes the blocks handed out and not yet acked hold, plus what waits in the frame reader. */
  get heldBytes(): number {
    return this.#heldBytes + (this.#live?.reader.buffered ?? 0);
  }

  /** Whether `maxHeldBytes` holds reading back. */
  get atHeldLimit(): boolean {
    return this.#atHeldLimit;
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
    const live = this.#live;
    const socket = live?.socket;
    if (live && socket && !socket.destroyed) {
      if (socket.connecting) socket.destroy();
      else {
        // Read on to the server's close; what arrives now is not handed out (the server keeps it, unacked).
        if (live.paused) {
          live.paused = false;
          socket.resume();
        }
        socket.end();
      }
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    if (this.#running) await this.#running;
    else this.#setState({ state: "stopped" });
  }

  /** Acks `blockId` on the current connection. Rejects with `IdigiAckError` when it is not pending there. */
  ack(blockId: number, status: number = STATUS_OK): Promise<void> {
    return this.#ack(undefined, blockId, status);
  }

  /** Acks the oldest pending block `blockId` of the connection, or `own` (a batch acking itself) when it is pending. */
  #ack(connectionId: number | undefined, blockId: number, status: number, own?: Held): Promise<void> {
    const cur = this.#current;
    if (!cur) return Promise.reject(new IdigiAckError(blockId, connectionId === undefined ? "not_connected" : "stale_connection"));
    if (connectionId !== undefined && cur.id !== connectionId) return Promise.reject(new IdigiAckError(blockId, "stale_connection"));
    const list = cur.pending.get(blockId);
    // A batch acked twice must not ack a later block that got the same id after the u16 wrapped.
    const at = own ? (list?.indexOf(own) ?? -1) : 0;
    if (!list || at < 0 || at >= list.length) return Promise.reject(new IdigiAckError(blockId, "not_pending"));
    let frame: Buffer;
    try {
      frame = encodePublishMessageReceived(blockId, status);
    } catch (err) {
      return Promise.reject(err);
    }
    const [held] = list.splice(at, 1);
    if (list.length === 0) cur.pending.delete(blockId);
    cur.unacked--;
    held?.release();
    this.#flow(cur);
    if (!cur.corked) {
      cur.corked = true;
      cur.socket.cork();
      process.nextTick(() => {
        cur.corked = false;
        cur.socket.uncork();
      });
    }
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
      const socket: net.Socket = cfg.tls
        ? tls.connect({
            host: cfg.host,
            port: cfg.port,
            rejectUnauthorized: !cfg.insecure,
            ...(cfg.ca ? { ca: cfg.ca } : {}),
            ...(cfg.servername ? { servername: cfg.servername } : net.isIP(cfg.host) ? {} : { servername: cfg.host }),
          })
        : net.connect({ host: cfg.host, port: cfg.port });
      const conn: Connection = {
        id: ++this.#connectionSeq,
        socket,
        reader: new FrameReader({ maxFrameSize: cfg.maxFrameSize }),
        handshook: false,
        paused: false,
        pending: new Map(),
        unacked: 0,
        corked: false,
        reason: "connection closed by peer",
      };
      this.#live = conn;
      const connectTimer = setTimeout(
        () => this.#fail(conn, "connect timed out", new IdigiNetworkError("connect timed out")),
        cfg.connectTimeoutMs,
      );

      socket.once(cfg.tls ? "secureConnect" : "connect", () => {
        clearTimeout(connectTimer);
        socket.setNoDelay(true);
        if (cfg.keepAliveMs > 0) socket.setKeepAlive(true, cfg.keepAliveMs);
        socket.write(encodeConnectRequest({ username: cfg.username, password: cfg.password, monitorId: cfg.monitorId }));
        conn.handshakeTimer = setTimeout(
          () => this.#fail(conn, "no ConnectResponse in time", new IdigiNetworkError("handshake timed out")),
          cfg.handshakeTimeoutMs,
        );
      });

      socket.on("data", (chunk: Buffer) => this.#read(conn, chunk));

      socket.on("error", (err) => {
        if (!conn.error) {
          conn.error = err;
          conn.reason = err.message;
        }
      });

      socket.on("close", () => {
        clearTimeout(connectTimer);
        clearTimeout(conn.handshakeTimer);
        if (this.#current === conn) this.#current = undefined;
        if (this.#live === conn) this.#live = undefined;
        // Frames not handed out are the server's to send again; blocks handed out stay held until acked.
        conn.reader.reset();
        this.#flow(undefined);
        const { refused, error, handshook } = conn;
        if (refused) resolve({ kind: "refused", error: refused });
        else if (error) resolve({ kind: "closed", reason: conn.reason, error, handshook });
        else resolve({ kind: "closed", reason: handshook ? conn.reason : "connection closed before the ConnectResponse", handshook });
      });
    });
  }

  #fail(conn: Connection, why: string, err?: Error): void {
    if (!conn.error) {
      conn.reason = why;
      conn.error = err;
    }
    conn.socket.destroy();
  }

  /**
   * Takes `chunk` into the connection's reader and hands out the frames it completes, until back-pressure holds
   * reading back: the frames after that stay in the reader until `#flow` resumes.
   */
  #read(conn: Connection, chunk: Buffer): void {
    // While stopping, what arrives is not kept: the server sends it again (unacked) to the next session.
    if (conn.socket.destroyed || this.#stopping) return;
    try {
      // feed() takes the chunk now and yields each whole frame before throwing for a bad header behind it.
      const frames = conn.reader.feed(chunk);
      if (conn.paused) return;
      for (const frame of frames) {
        if (conn.socket.destroyed) return;
        if (!conn.handshook) this.#handshake(conn, frame);
        else {
          if (frame.type !== FrameType.PublishMessage) {
            throw new IdigiFrameError("unexpected_type", `expected a PublishMessage, got frame type ${frame.type}`, frame.type);
          }
          this.#deliver(conn, frame.body);
        }
        if (conn.socket.destroyed || this.#flow(conn)) return;
      }
      // A frame still being received counts against maxHeldBytes too.
      this.#flow(conn);
    } catch (err) {
      if (conn.socket.destroyed) return;
      this.#fail(conn, err instanceof IdigiFrameError ? `frame error: ${err.message}` : String(err), err as Error);
    }
  }

  #handshake(conn: Connection, frame: { type: number; body: Buffer }): void {
    if (frame.type !== FrameType.ConnectResponse) {
      throw new IdigiFrameError("unexpected_type", `expected a ConnectResponse, got frame type ${frame.type}`, frame.type);
    }
    const result = interpretConnectResponse(decodeConnectResponse(frame.body));
    if (!result.ok) {
      conn.refused = result.error;
      conn.socket.destroy();
      return;
    }
    conn.handshook = true;
    clearTimeout(conn.handshakeTimer);
    this.#current = conn;
    this.#setState({ state: "connected", connectionId: conn.id, status: result.status, protocolVersion: result.protocolVersion });
  }

  /**
   * Pauses or resumes reading `conn` after what is unacked or held changed; reports `maxHeldBytes` starting or
   * stopping to hold back. Returns whether reading is held back. Without a connection only the report is updated.
   */
  #flow(conn: Connection | undefined): boolean {
    const max = this.#maxHeldBytes;
    // Nothing held means a block may always come in, even one larger than the limit, so the session never stalls.
    const atLimit = max > 0 && this.#heldBlocks > 0 && this.#heldBytes + (conn?.reader.buffered ?? 0) >= max;
    if (atLimit !== this.#atHeldLimit) {
      this.#atHeldLimit = atLimit;
      this.#emitSafe("heldBytes", { atLimit, heldBytes: this.heldBytes, maxHeldBytes: max });
    }
    if (!conn?.handshook || conn.socket.destroyed || this.#stopping) return false;
    const hold = atLimit || (this.#maxUnacked > 0 && conn.unacked >= this.#maxUnacked);
    if (hold && !conn.paused) {
      conn.paused = true;
      conn.socket.pause();
    } else if (!hold && conn.paused) {
      conn.paused = false;
      conn.socket.resume();
      // Frames that were already in the reader when reading stopped; not from inside an ack() call.
      setImmediate(() => this.#read(conn, NOTHING));
    }
    return hold;
  }

  #deliver(conn: Connection, body: Buffer): void {
    const cfg = this.#config;
    const msg = decodePublishMessage(body);
    const rawBytes = Buffer.from(msg.payload);
    let inflated: Buffer | undefined;
    let events: PushEvent[] | undefined;
    let failure: IdigiPayloadError | undefined;
    try {
      inflated = inflatePayload(msg, cfg.maxInflatedSize);
      events = parsePayload(inflated, msg.format);
    } catch (err) {
      failure = err instanceof IdigiPayloadError ? err : new IdigiPayloadError("bad_envelope", String(err), { cause: err });
    }
    const size = rawBytes.length + (inflated?.length ?? 0);
    let released = false;
    const held: Held = {
      release: () => {
        if (released) return;
        released = true;
        this.#heldBytes -= size;
        this.#heldBlocks--;
        this.#flow(this.#live);
      },
    };
    this.#heldBytes += size;
    this.#heldBlocks++;
    const list = conn.pending.get(msg.blockId);
    if (list) list.push(held);
    else conn.pending.set(msg.blockId, [held]);
    conn.unacked++;
    const base = {
      monitorId: cfg.monitorId,
      connectionId: conn.id,
      blockId: msg.blockId,
      count: msg.count,
      rawBytes,
      compressed: msg.compression === "zlib",
      format: msg.format,
      // The block is no longer held once its ack is asked for, also when that ack can no longer be sent.
      ack: (status: number = STATUS_OK) => {
        const acked = this.#ack(conn.id, msg.blockId, status, held);
        held.release();
        return acked;
      },
    };
    if (!events) {
      this.#emitSafe("invalidBatch", { ...base, error: failure! });
      return;
    }
    if (events.length !== msg.count) {
      this.#emitSafe("warning", new IdigiError(`block ${msg.blockId} announces ${msg.count} messages but holds ${events.length}`));
    }
    this.#emitSafe("batch", { ...base, events, document: inflated! });
  }
}

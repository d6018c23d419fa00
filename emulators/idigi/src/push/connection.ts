/**
 * One TCP or TLS push connection: frames in (the decoder, the handshake timeout, the slowReads fault), frames out
 * (in order, split by the splitFrames fault), the blocks it sent and awaits acks for, and how it ends. Whether a
 * ConnectRequest is accepted, and what an ack means for the monitor, the engine decides.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { FaultSet } from "../faults.js";
import {
  type Ack,
  ClientFrameDecoder,
  type ConnectRequest,
  encodeConnectResponse,
  FrameTooLargeError,
  PROTOCOL_VERSION,
} from "./frames.js";
import type { ResolvedPushOptions } from "./options.js";
import type { MonitorQueue, QueuedEvent } from "./queue.js";

/** A client frame may not be larger than this: the largest legitimate one, a ConnectRequest, is far smaller. */
const MAX_CLIENT_FRAME = 64 * 1024;

export interface SentBlock {
  blockId: number;
  count: number;
  /** Kept only for explicit-ack monitors (for replay). */
  items: QueuedEvent[];
  sentAt: number;
}

/** What the engine does with what a session receives. */
export interface SessionEvents {
  connectRequest(s: Session, req: ConnectRequest): void;
  ack(s: Session, ack: Ack): void;
  /** The socket drained after back-pressure: sending may go on. */
  writable(s: Session): void;
  closed(s: Session): void;
}

let sessionSeq = 0;

export class Session {
  readonly id = ++sessionSeq;
  monitorId: number | undefined;
  /** The monitor's queue once the ConnectRequest was accepted. */
  queue: MonitorQueue<Session> | undefined;
  established = false;
  closed = false;
  nextBlockId: number;
  blocksSent = 0;
  /** blockId → block, in send order. For `off` monitors only ids are tracked (items dropped). */
  readonly outstanding = new Map<number, SentBlock>();
  /** The socket's buffer is full: stop rendering blocks until `drain`. */
  blocked = false;
  readonly connectedAt = new Date().toISOString();
  private readonly decoder: ClientFrameDecoder;
  private writeChain: Promise<void> | undefined;
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    readonly tls: boolean,
    private readonly opts: ResolvedPushOptions,
    private readonly faults: FaultSet,
    private readonly log: Logger,
  ) {
    this.decoder = new ClientFrameDecoder({ acceptLegacyAck: opts.acceptLegacyAck, maxFrameSize: MAX_CLIENT_FRAME });
    this.nextBlockId = opts.firstBlockId;
  }

  get remote(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /** Wires the socket to `events`; from here on the session lives until the socket closes. */
  start(events: SessionEvents): void {
    const { socket } = this;
    socket.setNoDelay(true);
    const handshake = setTimeout(() => {
      if (!this.established) {
        this.log.info({ session: this.id, remote: this.remote }, "no ConnectRequest in time, closing");
        socket.destroy();
      }
    }, this.opts.handshakeTimeoutMs);
    handshake.unref();
    socket.on("data", (chunk: Buffer) => {
      const slow = this.established ? this.faults.peek("slowReads", this.monitorId) : undefined;
      if (slow && slow.spec.delayMs > 0) {
        socket.pause();
        setTimeout(() => {
          this.receive(chunk, events);
          if (!socket.destroyed) socket.resume();
        }, slow.spec.delayMs);
        return;
      }
      this.receive(chunk, events);
    });
    socket.on("drain", () => {
      this.blocked = false;
      events.writable(this);
    });
    socket.on("error", (err) => this.log.debug({ session: this.id, err: err.message }, "socket error"));
    socket.on("close", () => {
      clearTimeout(handshake);
      events.closed(this);
    });
  }

  private receive(chunk: Buffer, events: SessionEvents): void {
    // A session being hung up by a fault reads nothing more: its acks "never arrive".
    if (this.socket.destroyed || (this.closed && this.established)) return;
    let frames: ReturnType<ClientFrameDecoder["push"]>;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        this.log.info({ session: this.id, err: err.message }, "oversized frame, closing");
        if (!this.established) this.refuse(this.opts.connectStatuses.malformed, "oversized frame");
        else this.socket.destroy();
        return;
      }
      throw err;
    }
    const statuses = this.opts.connectStatuses;
    for (const f of frames) {
      if (this.socket.destroyed || (this.closed && this.established)) return;
      if (!this.established) {
        if (f.kind === "connect") events.connectRequest(this, f);
        else if (f.kind === "malformed")
          this.refuse(f.version !== undefined && f.version !== PROTOCOL_VERSION ? statuses.badVersion : statuses.malformed, f.reason);
        else
          this.refuse(statuses.malformed, `expected ConnectRequest, got ${f.kind === "ack" ? "PublishMessageReceived" : `type ${f.type}`}`);
        if (!this.established) return;
        continue;
      }
      if (f.kind === "ack") events.ack(this, f);
      else this.log.info({ session: this.id, kind: f.kind }, "ignoring unexpected frame after handshake");
    }
  }

  /** Answers a ConnectRequest with a refusal (or, `silent`, with nothing) and closes. */
  refuse(status: number, reason: string, silent = this.opts.refuseSilently): void {
    this.log.info({ session: this.id, remote: this.remote, status, reason, silent }, "ConnectRequest refused");
    if (silent) this.socket.destroy();
    else this.socket.end(encodeConnectResponse(status));
    this.closed = true;
  }

  /** Accepts the ConnectRequest: one 10-byte write, promptly (the Python client does a single recv(10)). */
  accept(monitorId: number, queue: MonitorQueue<Session>): void {
    this.monitorId = monitorId;
    this.queue = queue;
    this.established = true;
    this.socket.write(encodeConnectResponse(200));
  }

  /** Writes a frame, honouring the splitFrames fault; keeps order with earlier split writes. */
  write(buf: Buffer, done?: () => void): boolean {
    const split = this.faults.peek("splitFrames", this.monitorId);
    if (!split && !this.writeChain) {
      const ok = this.socket.write(buf, done ? () => done() : undefined);
      if (!ok) this.blocked = true;
      return ok;
    }
    const chunk = split?.spec.chunkBytes ?? buf.length;
    const delay = split?.spec.delayMs ?? 5;
    const prev = this.writeChain ?? Promise.resolve();
    const chain = prev.then(async () => {
      for (let off = 0; off < buf.length && !this.closed; off += chunk) {
        this.socket.write(buf.subarray(off, Math.min(buf.length, off + chunk)));
        if (off + chunk < buf.length) await new Promise((r) => setTimeout(r, delay));
      }
      done?.();
    });
    this.writeChain = chain;
    void chain.then(() => {
      if (this.writeChain === chain) this.writeChain = undefined;
    });
    return true;
  }

  /** Closes the session when its oldest unacked block waits longer than `timeoutMs`. */
  startAckTimer(timeoutMs: number): void {
    if (timeoutMs <= 0) return;
    this.ackTimer = setInterval(
      () => {
        const first = this.outstanding.values().next();
        if (!first.done && first.value.items.length > 0 && Date.now() - first.value.sentAt > timeoutMs) {
          this.log.info({ session: this.id, monitorId: this.monitorId, blockId: first.value.blockId }, "ack timeout, closing session");
          this.socket.destroy();
        }
      },
      Math.max(10, Math.min(1000, timeoutMs / 2)),
    );
    this.ackTimer.unref();
  }

  /**
   * Ends the connection after what was written (FIN, not RST, so the peer gets every byte already
   * sent even if it has unread acks in flight); nothing more is read or sent. Destroyed after 2 s.
   */
  hangUp(): void {
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  stopTimers(): void {
    if (this.ackTimer) clearInterval(this.ackTimer);
  }
}

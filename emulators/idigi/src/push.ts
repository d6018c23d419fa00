/**
 * The push engine: per-monitor queues and batching, TCP/TLS sessions (ConnectRequest →
 * ConnectResponse → PublishMessage stream ← PublishMessageReceived), explicit/off ack handling,
 * replay on reconnect, status transitions and fault injection (protocol notes §2, §6).
 *
 * Performance: no timer per event. Events are appended to a per-monitor queue and flushed in
 * blocks of monBatchSize; one timer per monitor covers monBatchDuration; socket back-pressure and
 * the optional in-flight window pause flushing until `drain` / an ack.
 */
import type { Socket } from "node:net";
import { deflateSync } from "node:zlib";
import type { Logger } from "pino";
import {
  type DeviceSim,
  type EventSpec,
  jsonDocument,
  jsonMsg,
  type RenderContext,
  renderRecord,
  uuidFor,
  xmlDocument,
  xmlMsg,
} from "./events.js";
import type { FaultSet } from "./faults.js";
import {
  type Ack,
  ClientFrameDecoder,
  Compression,
  type ConnectRequest,
  encodeConnectResponse,
  encodePublishMessage,
  encodeRawFrame,
  Format,
  FrameTooLargeError,
  PROTOCOL_VERSION,
} from "./frames.js";
import { type Monitor, type MonitorStore, parseSubscription, type Subscription, subscriptionMatches } from "./monitors.js";

export interface User {
  username: string;
  password: string;
  cstId: number;
}

/** ConnectResponse status per refusal reason. Which code DRM really sends is [I] in the notes. */
export interface ConnectStatuses {
  badCredentials: number;
  /** The monitor belongs to another customer. */
  foreignMonitor: number;
  unknownMonitor: number;
  /** The monitor exists but is not a tcp monitor. */
  notTcp: number;
  badVersion: number;
  /** The first frame is not a well-formed ConnectRequest. */
  malformed: number;
  disabled: number;
  /** A session is already open for the monitor and `duplicateSession` is `reject`. */
  duplicate: number;
}

export const DEFAULT_CONNECT_STATUSES: ConnectStatuses = {
  badCredentials: 403,
  foreignMonitor: 403,
  unknownMonitor: 400,
  notTcp: 400,
  badVersion: 400,
  malformed: 400,
  disabled: 400,
  duplicate: 400,
};

export interface PushOptions {
  connectStatuses?: Partial<ConnectStatuses>;
  /** On a refused ConnectRequest close without any ConnectResponse. Default false. */
  refuseSilently?: boolean;
  /** Close a connection that has not sent a ConnectRequest within this time. Default 60000. */
  handshakeTimeoutMs?: number;
  /** Explicit-ack monitors: max unacked blocks in flight, 0 = unlimited (default). */
  maxInFlight?: number;
  /** Explicit-ack monitors: close the session when a block stays unacked this long, 0 = never (default). */
  ackTimeoutMs?: number;
  /** Accept the legacy 6-byte Python ack (`00 04 id status`). Default true; false = strict. */
  acceptLegacyAck?: boolean;
  /** zlib monitors: only compress payloads of at least this many bytes (smaller go out with byte 0). Default 0. */
  compressMinBytes?: number;
  /** A second ConnectRequest for a monitor that already has a session: `takeover` (default) closes the old one. */
  duplicateSession?: "takeover" | "reject";
  /** Include `"group":"*"` in JSON Msgs. Default true. */
  jsonGroup?: boolean;
  /** XML blocks start with an `<?xml ...?>` prolog. Default true. */
  xmlProlog?: boolean;
  /** How many recent blocks / acks to keep per monitor for `state`. Default 1000. */
  historyLimit?: number;
  /** Block id of a connection's first PublishMessage. Default 0 (the 2012 capture starts at 0 [I]); for wrap tests. */
  firstBlockId?: number;
}

/** A queue item: the event and whether it goes out flagged `replay="true"`. */
interface Item {
  e: EventSpec;
  replay: boolean;
}

/** Array-backed FIFO with O(1) amortised shift. */
class Fifo<T> {
  private a: T[] = [];
  private h = 0;
  get length(): number {
    return this.a.length - this.h;
  }
  push(x: T): void {
    this.a.push(x);
  }
  peek(): T | undefined {
    return this.a[this.h];
  }
  take(n: number): T[] {
    const out = this.a.slice(this.h, this.h + n);
    this.h += out.length;
    if (this.h > 4096 && this.h * 2 > this.a.length) {
      this.a = this.a.slice(this.h);
      this.h = 0;
    }
    return out;
  }
  unshiftAll(xs: T[]): void {
    this.a = xs.concat(this.a.slice(this.h));
    this.h = 0;
  }
  forEach(f: (x: T) => void): void {
    for (let i = this.h; i < this.a.length; i++) f(this.a[i]!);
  }
  clear(): number {
    const n = this.length;
    this.a = [];
    this.h = 0;
    return n;
  }
}

interface SentBlock {
  blockId: number;
  count: number;
  /** Kept only for explicit-ack monitors (for replay). */
  items: Item[];
  sentAt: number;
}

export interface BlockRecord {
  blockId: number;
  sessionId: number;
  count: number;
  replayed: number;
  compressed: boolean;
  bytes: number;
  at: string;
}

export interface AckRecord {
  blockId: number;
  status: number;
  form: "spec" | "legacy";
  sessionId: number;
  matched: boolean;
  at: string;
}

export interface MonitorStats {
  eventsEmitted: number;
  eventsSent: number;
  eventsReplayed: number;
  eventsAcked: number;
  eventsDropped: number;
  blocksSent: number;
  blocksAcked: number;
  blocksNacked: number;
  acksReceived: number;
  specAcks: number;
  legacyAcks: number;
  unknownAcks: number;
  sessions: number;
}

function zeroStats(): MonitorStats {
  return {
    eventsEmitted: 0,
    eventsSent: 0,
    eventsReplayed: 0,
    eventsAcked: 0,
    eventsDropped: 0,
    blocksSent: 0,
    blocksAcked: 0,
    blocksNacked: 0,
    acksReceived: 0,
    specAcks: 0,
    legacyAcks: 0,
    unknownAcks: 0,
    sessions: 0,
  };
}

class MonitorRuntime {
  session: Session | undefined;
  queue = new Fifo<Item>();
  subs: Subscription[];
  timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  timerIsImmediate = false;
  forceDue = false;
  stalledUntil = 0;
  stallTimer: NodeJS.Timeout | undefined;
  stats = zeroStats();
  blocks: BlockRecord[] = [];
  acks: AckRecord[] = [];
  ackedBlockIds: number[] = [];
  /** Round-robin position over the monitor's resources for targeted emits. */
  rr = 0;

  constructor(public m: Monitor) {
    this.subs = m.topics.map(parseSubscription);
  }

  clearTimer(): void {
    if (this.timer) {
      if (this.timerIsImmediate) clearImmediate(this.timer as NodeJS.Immediate);
      else clearTimeout(this.timer as NodeJS.Timeout);
    }
    this.timer = undefined;
  }
}

let sessionSeq = 0;

export class Session {
  readonly id = ++sessionSeq;
  monitorId: number | undefined;
  runtime: MonitorRuntime | undefined;
  established = false;
  closed = false;
  nextBlockId = 0;
  blocksSent = 0;
  /** blockId → block, in send order. For `off` monitors only ids are tracked (items dropped). */
  outstanding = new Map<number, SentBlock>();
  blocked = false;
  private writeChain: Promise<void> | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  readonly connectedAt = new Date().toISOString();
  readonly decoder: ClientFrameDecoder;

  constructor(
    readonly socket: Socket,
    readonly tls: boolean,
    private readonly engine: PushEngine,
    acceptLegacyAck: boolean,
  ) {
    this.decoder = new ClientFrameDecoder({ acceptLegacyAck, maxFrameSize: 64 * 1024 });
  }

  get remote(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /** Writes a frame, honouring the splitFrames fault; keeps order with earlier split writes. */
  write(buf: Buffer, done?: () => void): boolean {
    const split = this.engine.faults.peek("splitFrames", this.monitorId);
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

  startAckTimer(timeoutMs: number): void {
    if (timeoutMs <= 0) return;
    this.ackTimer = setInterval(
      () => {
        const first = this.outstanding.values().next();
        if (!first.done && first.value.items.length > 0 && Date.now() - first.value.sentAt > timeoutMs) {
          this.engine.log.info(
            { session: this.id, monitorId: this.monitorId, blockId: first.value.blockId },
            "ack timeout, closing session",
          );
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

export interface EmitRequest {
  monitorId?: number;
  topic?: string;
  count: number;
  device?: string;
  operation?: string;
  record?: Record<string, unknown>;
}

export interface EmitResult {
  emitted: number;
  deliveries: Record<string, number>;
}

export class UnknownMonitorError extends Error {
  constructor(readonly monitorId: number) {
    super(`monitor ${monitorId} not found`);
    this.name = "UnknownMonitorError";
  }
}

export class PushEngine {
  private readonly runtimes = new Map<number, MonitorRuntime>();
  private readonly sessions = new Set<Session>();
  private readonly statuses: ConnectStatuses;
  private readonly opts: Required<Omit<PushOptions, "connectStatuses">>;
  private totalEmitted = 0;

  constructor(
    private readonly store: MonitorStore,
    private readonly users: User[],
    readonly sim: DeviceSim,
    readonly faults: FaultSet,
    readonly log: Logger,
    options: PushOptions = {},
  ) {
    this.statuses = { ...DEFAULT_CONNECT_STATUSES, ...options.connectStatuses };
    this.opts = {
      refuseSilently: options.refuseSilently ?? false,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 60_000,
      maxInFlight: options.maxInFlight ?? 0,
      ackTimeoutMs: options.ackTimeoutMs ?? 0,
      acceptLegacyAck: options.acceptLegacyAck ?? true,
      compressMinBytes: options.compressMinBytes ?? 0,
      duplicateSession: options.duplicateSession ?? "takeover",
      jsonGroup: options.jsonGroup ?? true,
      xmlProlog: options.xmlProlog ?? true,
      historyLimit: options.historyLimit ?? 1000,
      firstBlockId: (options.firstBlockId ?? 0) & 0xffff,
    };
  }

  // ---------------------------------------------------------------- monitor lifecycle (from REST)

  runtime(m: Monitor): MonitorRuntime {
    let rt = this.runtimes.get(m.id);
    if (!rt) {
      rt = new MonitorRuntime(m);
      this.runtimes.set(m.id, rt);
    }
    return rt;
  }

  monitorCreated(m: Monitor): void {
    this.runtime(m);
  }

  /** DELETE: close the monitor's sessions [I] and forget its state. */
  monitorDeleted(id: number): void {
    const rt = this.runtimes.get(id);
    if (!rt) return;
    rt.clearTimer();
    if (rt.stallTimer) clearTimeout(rt.stallTimer);
    const s = rt.session;
    rt.session = undefined;
    this.runtimes.delete(id);
    if (s) this.closeSession(s, "monitor deleted");
  }

  /** PUT / v1 reset: "any PUT resets monitor state" — queues, unacked blocks and sessions go; DISABLED → INACTIVE. */
  monitorReset(m: Monitor): void {
    const rt = this.runtime(m);
    rt.subs = m.topics.map(parseSubscription);
    const s = rt.session;
    rt.session = undefined;
    rt.clearTimer();
    rt.forceDue = false;
    rt.queue.clear();
    rt.stalledUntil = 0;
    if (s) this.closeSession(s, "monitor reset");
    m.status = "INACTIVE";
  }

  /** Marks a monitor DISABLED (as DRM does to an HTTP monitor unreachable for 24 h): no recording, connects refused. */
  disable(id: number): boolean {
    const rt = this.runtimes.get(id);
    if (!rt) return false;
    const s = rt.session;
    rt.session = undefined;
    rt.stats.eventsDropped += rt.queue.clear();
    rt.clearTimer();
    if (s) this.closeSession(s, "monitor disabled");
    rt.m.status = "DISABLED";
    return true;
  }

  reset(): void {
    for (const s of [...this.sessions]) this.closeSession(s, "emulator reset");
    for (const rt of this.runtimes.values()) {
      rt.clearTimer();
      if (rt.stallTimer) clearTimeout(rt.stallTimer);
    }
    this.runtimes.clear();
    this.totalEmitted = 0;
  }

  // ---------------------------------------------------------------- events

  emit(req: EmitRequest): EmitResult {
    const deliveries: Record<string, number> = {};
    const touched = new Map<MonitorRuntime, number>();
    let target: MonitorRuntime | undefined;
    if (req.monitorId !== undefined) {
      const m = this.store.get(req.monitorId);
      if (!m) throw new UnknownMonitorError(req.monitorId);
      target = this.runtime(m);
    }
    const resourceOf = (t: string) => parseSubscription(t).resource;
    const fixed = req.topic ? resourceOf(req.topic) : undefined;
    const opts: { device?: string; operation?: string; record?: Record<string, unknown> } = {};
    if (req.device) opts.device = req.device;
    if (req.operation) opts.operation = req.operation;
    if (req.record) opts.record = req.record;
    const resources = target ? target.subs.map((s) => s.resource) : [];
    for (let i = 0; i < req.count; i++) {
      if (target) {
        const resource = fixed ?? resources[target.rr++ % Math.max(1, resources.length)] ?? "DataPoint";
        const e = this.sim.next(resource, opts);
        this.deliver(target, e, touched);
      } else {
        const e = this.sim.next(fixed ?? "DataPoint", opts);
        for (const rt of this.runtimes.values()) {
          if (this.matches(rt, e)) this.deliver(rt, e, touched);
        }
      }
      this.totalEmitted++;
    }
    for (const [rt, n] of touched) {
      deliveries[String(rt.m.id)] = n;
      this.scheduleFlush(rt);
    }
    return { emitted: req.count, deliveries };
  }

  /** Resources subscribed by any monitor (for auto-emit), DataPoint when none. */
  subscribedResources(): string[] {
    const set = new Set<string>();
    for (const rt of this.runtimes.values()) for (const s of rt.subs) set.add(s.resource);
    return set.size > 0 ? [...set] : ["DataPoint"];
  }

  private matches(rt: MonitorRuntime, e: EventSpec): boolean {
    if (rt.m.transport !== "tcp") return false;
    let keyPath: string[] | undefined;
    for (const sub of rt.subs) {
      if (sub.path && !keyPath) keyPath = renderRecord(e, rt.m.cstId, this.sim).key.split("/");
      if (subscriptionMatches(sub, e.resource, e.operation, keyPath ?? [])) return true;
    }
    return false;
  }

  private deliver(rt: MonitorRuntime, e: EventSpec, touched: Map<MonitorRuntime, number>): void {
    rt.stats.eventsEmitted++;
    touched.set(rt, (touched.get(rt) ?? 0) + 1);
    const status = rt.m.status;
    if (rt.session) {
      rt.queue.push({ e, replay: false });
    } else if (status === "SUSPENDED" || (rt.m.autoReplay && status !== "DISABLED")) {
      // Disconnected but recording: replayed with replay="true" on the next connect.
      rt.queue.push({ e, replay: true });
      if (rt.m.status !== "SUSPENDED" && rt.m.transport === "tcp") rt.m.status = "SUSPENDED";
    } else {
      rt.stats.eventsDropped++;
    }
  }

  // ---------------------------------------------------------------- batching

  private scheduleFlush(rt: MonitorRuntime): void {
    if (!rt.session) return;
    this.flush(rt);
    if (rt.queue.length > 0 && !rt.timer && !rt.forceDue) {
      const due = () => {
        rt.timer = undefined;
        rt.forceDue = true;
        this.flush(rt);
      };
      if (rt.m.batchDuration === 0) {
        rt.timerIsImmediate = true;
        rt.timer = setImmediate(due);
      } else {
        rt.timerIsImmediate = false;
        rt.timer = setTimeout(due, rt.m.batchDuration * 1000);
      }
    }
  }

  private canSend(rt: MonitorRuntime, s: Session): boolean {
    if (s.closed || s.blocked || !s.established) return false;
    if (rt.stalledUntil > Date.now()) return false;
    if (rt.m.ackOption === "explicit" && this.opts.maxInFlight > 0 && s.outstanding.size >= this.opts.maxInFlight) return false;
    return true;
  }

  flush(rt: MonitorRuntime): void {
    const s = rt.session;
    if (!s) return;
    // `count` is a u16 on the wire, so no block can hold more than 65535 Msgs.
    const size = Math.min(0xffff, Math.max(1, rt.m.batchSize));
    while (rt.queue.length > 0 && this.canSend(rt, s)) {
      const full = rt.queue.length >= size;
      if (!full && !rt.forceDue && !rt.queue.peek()!.replay) break;
      this.sendBlock(rt, s, rt.queue.take(size));
    }
    if (rt.queue.length === 0) {
      rt.forceDue = false;
      rt.clearTimer();
    }
  }

  private render(rt: MonitorRuntime, items: Item[]): { payload: Buffer; compressed: boolean } {
    const ctx: RenderContext = { cstId: rt.m.cstId, sim: this.sim, group: this.opts.jsonGroup, xmlProlog: this.opts.xmlProlog };
    const text =
      rt.m.format === "xml"
        ? xmlDocument(
            items.map((it) => xmlMsg(it.e, it.replay, ctx)),
            this.opts.xmlProlog,
          )
        : jsonDocument(items.map((it) => jsonMsg(it.e, it.replay, ctx)));
    const raw = Buffer.from(text, "utf8");
    if (rt.m.compression === "zlib" && raw.length >= this.opts.compressMinBytes) return { payload: deflateSync(raw), compressed: true };
    return { payload: raw, compressed: false };
  }

  private sendBlock(rt: MonitorRuntime, s: Session, items: Item[]): void {
    const blockId = s.nextBlockId;
    s.nextBlockId = (s.nextBlockId + 1) & 0xffff;
    const { payload, compressed } = this.render(rt, items);
    const frame = encodePublishMessage({
      blockId,
      count: items.length,
      compression: compressed ? Compression.zlib : Compression.none,
      format: rt.m.format === "xml" ? Format.xml : Format.json,
      payload,
    });
    const mid = rt.m.id;
    const bad = this.faults.take("badFrameType", mid);
    if (bad) s.write(encodeRawFrame(bad.frameType ?? 0x0009, Buffer.from([0, 0, 0, 0])));

    const explicit = rt.m.ackOption === "explicit";
    s.outstanding.set(blockId, { blockId, count: items.length, items: explicit ? items : [], sentAt: Date.now() });
    if (s.outstanding.size > 65536) s.outstanding.delete(s.outstanding.keys().next().value!);
    const replayed = items.reduce((n, it) => n + (it.replay ? 1 : 0), 0);
    rt.stats.blocksSent++;
    rt.stats.eventsSent += items.length;
    rt.stats.eventsReplayed += replayed;
    s.blocksSent++;
    const now = new Date();
    rt.m.lastSent = now.toISOString();
    rt.m.lastSentUuid = uuidFor(items[items.length - 1]!.e.seq);
    this.pushCapped(rt.blocks, {
      blockId,
      sessionId: s.id,
      count: items.length,
      replayed,
      compressed,
      bytes: frame.length,
      at: rt.m.lastSent,
    });

    const drop = this.faults.take("dropMidFrame", mid);
    if (drop) {
      const n = Math.min(drop.afterBytes, frame.length);
      this.log.info({ session: s.id, monitorId: mid, blockId, bytes: n }, "fault: dropping connection mid-frame");
      s.write(frame.subarray(0, n), () => s.hangUp());
      s.closed = true; // nothing more goes out on this socket
      return;
    }
    if (this.faults.take("dropAfterBatch", mid)) {
      this.log.info({ session: s.id, monitorId: mid, blockId }, "fault: dropping connection after batch, before ack");
      s.write(frame, () => s.hangUp());
      s.closed = true;
      return;
    }
    s.write(frame);
  }

  private pushCapped<T>(arr: T[], x: T): void {
    arr.push(x);
    if (arr.length > this.opts.historyLimit) arr.splice(0, arr.length - this.opts.historyLimit);
  }

  // ---------------------------------------------------------------- sessions

  /** Entry point for a freshly accepted plain or TLS socket. */
  accept(socket: Socket, tls: boolean): void {
    const s = new Session(socket, tls, this, this.opts.acceptLegacyAck);
    s.nextBlockId = this.opts.firstBlockId;
    this.sessions.add(s);
    socket.setNoDelay(true);
    const hs = setTimeout(() => {
      if (!s.established) {
        this.log.info({ session: s.id, remote: s.remote }, "no ConnectRequest in time, closing");
        socket.destroy();
      }
    }, this.opts.handshakeTimeoutMs);
    hs.unref();
    socket.on("data", (chunk: Buffer) => {
      const slow = s.established ? this.faults.peek("slowReads", s.monitorId) : undefined;
      if (slow && slow.spec.delayMs > 0) {
        socket.pause();
        setTimeout(() => {
          this.onData(s, chunk);
          if (!socket.destroyed) socket.resume();
        }, slow.spec.delayMs);
        return;
      }
      this.onData(s, chunk);
    });
    socket.on("drain", () => {
      s.blocked = false;
      if (s.runtime && s.runtime.session === s) this.flush(s.runtime);
    });
    socket.on("error", (err) => this.log.debug({ session: s.id, err: err.message }, "socket error"));
    socket.on("close", () => {
      clearTimeout(hs);
      this.detach(s);
      this.sessions.delete(s);
    });
  }

  private onData(s: Session, chunk: Buffer): void {
    // A session being hung up by a fault reads nothing more: its acks "never arrive".
    if (s.socket.destroyed || (s.closed && s.established)) return;
    let frames: ReturnType<ClientFrameDecoder["push"]>;
    try {
      frames = s.decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        this.log.info({ session: s.id, err: err.message }, "oversized frame, closing");
        if (!s.established) this.refuse(s, this.statuses.malformed, "oversized frame");
        else s.socket.destroy();
        return;
      }
      throw err;
    }
    for (const f of frames) {
      if (s.socket.destroyed || (s.closed && s.established)) return;
      if (!s.established) {
        if (f.kind === "connect") this.handleConnect(s, f);
        else if (f.kind === "malformed")
          this.refuse(
            s,
            f.version !== undefined && f.version !== PROTOCOL_VERSION ? this.statuses.badVersion : this.statuses.malformed,
            f.reason,
          );
        else
          this.refuse(
            s,
            this.statuses.malformed,
            `expected ConnectRequest, got ${f.kind === "ack" ? "PublishMessageReceived" : `type ${f.type}`}`,
          );
        if (!s.established) return;
        continue;
      }
      if (f.kind === "ack") this.handleAck(s, f);
      else this.log.info({ session: s.id, kind: f.kind }, "ignoring unexpected frame after handshake");
    }
  }

  private refuse(s: Session, status: number, reason: string, silent = this.opts.refuseSilently): void {
    this.log.info({ session: s.id, remote: s.remote, status, reason, silent }, "ConnectRequest refused");
    if (silent) s.socket.destroy();
    else s.socket.end(encodeConnectResponse(status));
    s.closed = true;
  }

  /** Why a ConnectRequest must be refused, or the monitor it may attach to. */
  private checkConnect(req: ConnectRequest): { m: Monitor } | { status: number; reason: string; silent?: boolean } {
    const fault = this.faults.take("refuseConnect", req.monitorId);
    if (fault) return { status: fault.status ?? 403, reason: "fault: refuseConnect", silent: fault.silent ?? false };
    if (req.version !== PROTOCOL_VERSION) return { status: this.statuses.badVersion, reason: `protocol version ${req.version}` };
    const user = this.users.find((u) => u.username === req.username && u.password === req.password);
    if (!user) return { status: this.statuses.badCredentials, reason: "bad credentials" };
    const m = this.store.get(req.monitorId);
    if (!m) return { status: this.statuses.unknownMonitor, reason: `unknown monitor ${req.monitorId}` };
    if (m.cstId !== user.cstId) return { status: this.statuses.foreignMonitor, reason: `monitor ${m.id} belongs to another customer` };
    if (m.transport !== "tcp") return { status: this.statuses.notTcp, reason: `monitor ${m.id} is not a tcp monitor` };
    if (m.status === "DISABLED") return { status: this.statuses.disabled, reason: `monitor ${m.id} is disabled` };
    const rt = this.runtimes.get(m.id);
    if (rt?.session && !rt.session.closed && this.opts.duplicateSession === "reject")
      return { status: this.statuses.duplicate, reason: `monitor ${m.id} already has a session` };
    return { m };
  }

  private handleConnect(s: Session, req: ConnectRequest): void {
    const verdict = this.checkConnect(req);
    if (!("m" in verdict)) {
      this.refuse(s, verdict.status, verdict.reason, verdict.silent);
      return;
    }
    const m = verdict.m;
    const rt = this.runtime(m);
    if (rt.session) {
      this.log.info({ session: rt.session.id, by: s.id, monitorId: m.id }, "session taken over by a new connection");
      this.closeSession(rt.session, "taken over");
    }
    s.monitorId = m.id;
    s.runtime = rt;
    s.established = true;
    // One 10-byte write, promptly (the Python client does a single recv(10)).
    s.socket.write(encodeConnectResponse(200));
    rt.session = s;
    rt.stats.sessions++;
    m.status = "ACTIVE";
    m.lastConnect = new Date().toISOString();
    if (m.ackOption === "explicit") s.startAckTimer(this.opts.ackTimeoutMs);
    this.log.info({ session: s.id, monitorId: m.id, remote: s.remote, tls: s.tls, queued: rt.queue.length }, "session established");
    this.scheduleFlush(rt);
  }

  private handleAck(s: Session, a: Ack): void {
    const rt = s.runtime;
    if (!rt) return;
    rt.stats.acksReceived++;
    if (a.form === "spec") rt.stats.specAcks++;
    else rt.stats.legacyAcks++;
    const block = s.outstanding.get(a.blockId);
    this.pushCapped(rt.acks, {
      blockId: a.blockId,
      status: a.status,
      form: a.form,
      sessionId: s.id,
      matched: !!block,
      at: new Date().toISOString(),
    });
    if (!block) {
      rt.stats.unknownAcks++;
      return;
    }
    if (a.status >= 200 && a.status < 300) {
      s.outstanding.delete(a.blockId);
      rt.stats.blocksAcked++;
      rt.stats.eventsAcked += block.count;
      this.pushCapped(rt.ackedBlockIds, a.blockId);
    } else {
      // A non-200 ack is never sent by a real client; [I]: treat it as "not processed" and keep the
      // block for replay on the next connect.
      rt.stats.blocksNacked++;
    }
    if (rt.session === s) this.flush(rt);
  }

  private closeSession(s: Session, reason: string): void {
    this.log.info({ session: s.id, monitorId: s.monitorId, reason }, "closing session");
    this.detach(s);
    s.socket.destroy();
  }

  /** Idempotent: a session leaves its monitor; unacked explicit blocks are kept for replay or dropped. */
  private detach(s: Session): void {
    if (s.closed && !s.established) return;
    const wasEstablished = s.established;
    s.closed = true;
    s.established = false;
    s.stopTimers();
    const rt = s.runtime;
    s.runtime = undefined;
    if (!wasEstablished || !rt) return;
    const unacked: Item[] = [];
    for (const b of s.outstanding.values()) for (const it of b.items) unacked.push(it);
    s.outstanding.clear();
    if (rt.session !== s) {
      // The monitor was reset, disabled or deleted first: its state is gone, so are these blocks.
      rt.stats.eventsDropped += unacked.length;
      return;
    }
    rt.session = undefined;
    rt.clearTimer();
    rt.forceDue = false;
    if (!this.runtimes.has(rt.m.id)) return;
    if (rt.m.autoReplay) {
      // SUSPENDED: keep recording; unacked blocks first, then everything not yet sent, all flagged replay.
      for (const it of unacked) it.replay = true;
      rt.queue.forEach((it) => {
        it.replay = true;
      });
      if (unacked.length > 0) rt.queue.unshiftAll(unacked);
      rt.m.status = "SUSPENDED";
    } else {
      rt.stats.eventsDropped += unacked.length + rt.queue.clear();
      rt.m.status = "INACTIVE";
    }
    this.log.info({ session: s.id, monitorId: rt.m.id, status: rt.m.status, kept: rt.queue.length }, "session closed");
  }

  // ---------------------------------------------------------------- faults applied at once

  stall(ms: number, monitorId?: number): number[] {
    const hit: number[] = [];
    for (const rt of this.runtimes.values()) {
      if (monitorId !== undefined && rt.m.id !== monitorId) continue;
      rt.stalledUntil = Date.now() + ms;
      if (rt.stallTimer) clearTimeout(rt.stallTimer);
      rt.stallTimer = setTimeout(() => {
        rt.stallTimer = undefined;
        rt.stalledUntil = 0;
        this.flush(rt);
      }, ms);
      hit.push(rt.m.id);
    }
    return hit;
  }

  clearStalls(): void {
    for (const rt of this.runtimes.values()) {
      if (rt.stallTimer) clearTimeout(rt.stallTimer);
      rt.stallTimer = undefined;
      if (rt.stalledUntil) {
        rt.stalledUntil = 0;
        this.flush(rt);
      }
    }
  }

  // ---------------------------------------------------------------- state

  monitorState(id: number) {
    const rt = this.runtimes.get(id);
    if (!rt) return undefined;
    const s = rt.session;
    const pending = s && rt.m.ackOption === "explicit" ? [...s.outstanding.keys()] : [];
    return {
      id,
      status: rt.m.status,
      ackOption: rt.m.ackOption,
      autoReplay: rt.m.autoReplay,
      session: s?.id ?? null,
      queued: rt.queue.length,
      pendingBlocks: pending,
      unackedBlocks: pending.length,
      stalled: rt.stalledUntil > Date.now(),
      ...rt.stats,
      ackedBlockIds: rt.ackedBlockIds,
      recentBlocks: rt.blocks,
      recentAcks: rt.acks,
    };
  }

  state() {
    return {
      eventsEmitted: this.totalEmitted,
      monitors: [...this.runtimes.keys()].map((id) => this.monitorState(id)!),
      sessions: [...this.sessions].map((s) => ({
        id: s.id,
        monitorId: s.monitorId ?? null,
        remote: s.remote,
        tls: s.tls,
        established: s.established,
        connectedAt: s.connectedAt,
        nextBlockId: s.nextBlockId,
        blocksSent: s.blocksSent,
        outstanding: s.outstanding.size,
      })),
    };
  }

  closeAll(): void {
    for (const s of [...this.sessions]) s.socket.destroy();
    for (const rt of this.runtimes.values()) {
      rt.clearTimer();
      if (rt.stallTimer) clearTimeout(rt.stallTimer);
    }
  }
}

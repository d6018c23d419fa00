/**
 * The push engine: monitors ↔ sessions. It accepts or refuses ConnectRequests, routes emitted events to monitor
 * queues, renders and sends blocks (batch size, batch duration, in-flight window, back-pressure), books acks, and on
 * a disconnect keeps or drops what was not acked (auto-replay), moving monitor status along (protocol notes §2, §6).
 * One queue per monitor (queue.ts), one session per connection (connection.ts).
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
} from "../events.js";
import type { FaultSet } from "../faults.js";
import { type Monitor, type MonitorStore, parseSubscription, subscriptionMatches } from "../monitors.js";
import type { User } from "../users.js";
import { Session, type SessionEvents } from "./connection.js";
import { type Ack, Compression, type ConnectRequest, encodePublishMessage, encodeRawFrame, Format, PROTOCOL_VERSION } from "./frames.js";
import { type PushOptions, type ResolvedPushOptions, resolvePushOptions } from "./options.js";
import { MonitorQueue, type QueuedEvent } from "./queue.js";

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

/** Past this many unacked blocks a session forgets the oldest: block ids are u16, so older ids are reused anyway. */
const MAX_OUTSTANDING = 65536;

export class PushEngine {
  private readonly queues = new Map<number, MonitorQueue<Session>>();
  private readonly sessions = new Set<Session>();
  private readonly opts: ResolvedPushOptions;
  private totalEmitted = 0;
  private readonly events: SessionEvents = {
    connectRequest: (s, req) => this.handleConnect(s, req),
    ack: (s, a) => this.handleAck(s, a),
    writable: (s) => {
      if (s.queue && s.queue.session === s) this.flush(s.queue);
    },
    closed: (s) => {
      this.detach(s);
      this.sessions.delete(s);
    },
  };

  constructor(
    private readonly store: MonitorStore,
    private readonly users: User[],
    readonly sim: DeviceSim,
    readonly faults: FaultSet,
    readonly log: Logger,
    options: PushOptions = {},
  ) {
    this.opts = resolvePushOptions(options);
  }

  // ---------------------------------------------------------------- monitor lifecycle (from REST)

  private queue(m: Monitor): MonitorQueue<Session> {
    let q = this.queues.get(m.id);
    if (!q) {
      q = new MonitorQueue<Session>(m, this.opts.historyLimit);
      this.queues.set(m.id, q);
    }
    return q;
  }

  monitorCreated(m: Monitor): void {
    this.queue(m);
  }

  /** DELETE: close the monitor's sessions [I] and forget its state. */
  monitorDeleted(id: number): void {
    const q = this.queues.get(id);
    if (!q) return;
    q.stopTimers();
    const s = q.session;
    q.session = undefined;
    this.queues.delete(id);
    if (s) this.closeSession(s, "monitor deleted");
  }

  /** PUT / v1 reset: "any PUT resets monitor state" — queues, unacked blocks and sessions go; DISABLED → INACTIVE. */
  monitorReset(m: Monitor): void {
    const q = this.queue(m);
    q.subs = m.topics.map(parseSubscription);
    const s = q.session;
    q.session = undefined;
    q.clearTimer();
    q.forceDue = false;
    q.events.clear();
    q.stalledUntil = 0;
    if (s) this.closeSession(s, "monitor reset");
    m.status = "INACTIVE";
  }

  /** Marks a monitor DISABLED (as DRM does to an HTTP monitor unreachable for 24 h): no recording, connects refused. */
  disable(id: number): boolean {
    const q = this.queues.get(id);
    if (!q) return false;
    const s = q.session;
    q.session = undefined;
    q.stats.eventsDropped += q.events.clear();
    q.clearTimer();
    if (s) this.closeSession(s, "monitor disabled");
    q.m.status = "DISABLED";
    return true;
  }

  reset(): void {
    for (const s of [...this.sessions]) this.closeSession(s, "emulator reset");
    for (const q of this.queues.values()) q.stopTimers();
    this.queues.clear();
    this.totalEmitted = 0;
  }

  // ---------------------------------------------------------------- events

  emit(req: EmitRequest): EmitResult {
    const deliveries: Record<string, number> = {};
    const touched = new Map<MonitorQueue<Session>, number>();
    let target: MonitorQueue<Session> | undefined;
    if (req.monitorId !== undefined) {
      const m = this.store.get(req.monitorId);
      if (!m) throw new UnknownMonitorError(req.monitorId);
      target = this.queue(m);
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
        this.deliver(target, this.sim.next(resource, opts), touched);
      } else {
        const e = this.sim.next(fixed ?? "DataPoint", opts);
        for (const q of this.queues.values()) if (this.matches(q, e)) this.deliver(q, e, touched);
      }
      this.totalEmitted++;
    }
    for (const [q, n] of touched) {
      deliveries[String(q.m.id)] = n;
      this.scheduleFlush(q);
    }
    return { emitted: req.count, deliveries };
  }

  /** Resources subscribed by any monitor (for auto-emit), DataPoint when none. */
  subscribedResources(): string[] {
    const set = new Set<string>();
    for (const q of this.queues.values()) for (const s of q.subs) set.add(s.resource);
    return set.size > 0 ? [...set] : ["DataPoint"];
  }

  private matches(q: MonitorQueue<Session>, e: EventSpec): boolean {
    if (q.m.transport !== "tcp") return false;
    let keyPath: string[] | undefined;
    for (const sub of q.subs) {
      if (sub.path && !keyPath) keyPath = renderRecord(e, q.m.cstId, this.sim).key.split("/");
      if (subscriptionMatches(sub, e.resource, e.operation, keyPath ?? [])) return true;
    }
    return false;
  }

  private deliver(q: MonitorQueue<Session>, e: EventSpec, touched: Map<MonitorQueue<Session>, number>): void {
    q.stats.eventsEmitted++;
    touched.set(q, (touched.get(q) ?? 0) + 1);
    const status = q.m.status;
    if (q.session) {
      q.events.push({ e, replay: false });
    } else if (status === "SUSPENDED" || (q.m.autoReplay && status !== "DISABLED")) {
      // Disconnected but recording: replayed with replay="true" on the next connect.
      q.events.push({ e, replay: true });
      if (q.m.status !== "SUSPENDED" && q.m.transport === "tcp") q.m.status = "SUSPENDED";
    } else {
      q.stats.eventsDropped++;
    }
  }

  // ---------------------------------------------------------------- batching

  private scheduleFlush(q: MonitorQueue<Session>): void {
    if (!q.session) return;
    this.flush(q);
    if (q.events.length > 0 && !q.timerArmed && !q.forceDue)
      q.armTimer(() => {
        q.forceDue = true;
        this.flush(q);
      });
  }

  private canSend(q: MonitorQueue<Session>, s: Session): boolean {
    if (s.closed || s.blocked || !s.established) return false;
    if (q.stalledUntil > Date.now()) return false;
    if (q.m.ackOption === "explicit" && this.opts.maxInFlight > 0 && s.outstanding.size >= this.opts.maxInFlight) return false;
    return true;
  }

  private flush(q: MonitorQueue<Session>): void {
    const s = q.session;
    if (!s) return;
    // `count` is a u16 on the wire, so no block can hold more than 65535 Msgs.
    const size = Math.min(0xffff, Math.max(1, q.m.batchSize));
    while (q.events.length > 0 && this.canSend(q, s)) {
      const full = q.events.length >= size;
      if (!full && !q.forceDue && !q.events.peek()!.replay) break;
      this.sendBlock(q, s, q.events.take(size));
    }
    if (q.events.length === 0) {
      q.forceDue = false;
      q.clearTimer();
    }
  }

  private render(q: MonitorQueue<Session>, items: QueuedEvent[]): { payload: Buffer; compressed: boolean } {
    const ctx: RenderContext = { cstId: q.m.cstId, sim: this.sim, group: this.opts.jsonGroup, xmlProlog: this.opts.xmlProlog };
    const text =
      q.m.format === "xml"
        ? xmlDocument(
            items.map((it) => xmlMsg(it.e, it.replay, ctx)),
            this.opts.xmlProlog,
          )
        : jsonDocument(items.map((it) => jsonMsg(it.e, it.replay, ctx)));
    const raw = Buffer.from(text, "utf8");
    const zipped = q.m.compression === "zlib" && raw.length >= this.opts.compressMinBytes;
    const payload = zipped ? deflateSync(raw) : raw;
    if (!this.opts.base64Payloads) return { payload, compressed: zipped };
    return { payload: Buffer.from(payload.toString("base64"), "ascii"), compressed: zipped && this.opts.base64CompressionByte };
  }

  private sendBlock(q: MonitorQueue<Session>, s: Session, items: QueuedEvent[]): void {
    const blockId = s.nextBlockId;
    s.nextBlockId = (s.nextBlockId + 1) & 0xffff;
    const { payload, compressed } = this.render(q, items);
    const frame = encodePublishMessage({
      blockId,
      count: items.length,
      compression: compressed ? Compression.zlib : Compression.none,
      format: q.m.format === "xml" ? Format.xml : Format.json,
      payload,
    });
    const mid = q.m.id;
    const bad = this.faults.take("badFrameType", mid);
    if (bad) s.write(encodeRawFrame(bad.frameType ?? 0x0009, Buffer.from([0, 0, 0, 0])));

    const explicit = q.m.ackOption === "explicit";
    s.outstanding.set(blockId, { blockId, count: items.length, items: explicit ? items : [], sentAt: Date.now() });
    if (s.outstanding.size > MAX_OUTSTANDING) s.outstanding.delete(s.outstanding.keys().next().value!);
    const replayed = items.reduce((n, it) => n + (it.replay ? 1 : 0), 0);
    q.stats.blocksSent++;
    q.stats.eventsSent += items.length;
    q.stats.eventsReplayed += replayed;
    s.blocksSent++;
    q.m.lastSent = new Date().toISOString();
    q.m.lastSentUuid = uuidFor(items[items.length - 1]!.e.seq);
    q.remember(q.blocks, { blockId, sessionId: s.id, count: items.length, replayed, compressed, bytes: frame.length, at: q.m.lastSent });

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

  // ---------------------------------------------------------------- sessions

  /** Entry point for a freshly accepted plain or TLS socket. */
  accept(socket: Socket, tls: boolean): void {
    const s = new Session(socket, tls, this.opts, this.faults, this.log);
    this.sessions.add(s);
    s.start(this.events);
  }

  /** Why a ConnectRequest must be refused, or the monitor it may attach to. */
  private checkConnect(req: ConnectRequest): { m: Monitor } | { status: number; reason: string; silent?: boolean } {
    const statuses = this.opts.connectStatuses;
    const fault = this.faults.take("refuseConnect", req.monitorId);
    if (fault) return { status: fault.status ?? 403, reason: "fault: refuseConnect", silent: fault.silent ?? false };
    if (req.version !== PROTOCOL_VERSION) return { status: statuses.badVersion, reason: `protocol version ${req.version}` };
    const user = this.users.find((u) => u.username === req.username && u.password === req.password);
    if (!user) return { status: statuses.badCredentials, reason: "bad credentials" };
    const m = this.store.get(req.monitorId);
    if (!m) return { status: statuses.unknownMonitor, reason: `unknown monitor ${req.monitorId}` };
    if (m.cstId !== user.cstId) return { status: statuses.foreignMonitor, reason: `monitor ${m.id} belongs to another customer` };
    if (m.transport !== "tcp") return { status: statuses.notTcp, reason: `monitor ${m.id} is not a tcp monitor` };
    if (m.status === "DISABLED") return { status: statuses.disabled, reason: `monitor ${m.id} is disabled` };
    const q = this.queues.get(m.id);
    if (q?.session && !q.session.closed && this.opts.duplicateSession === "reject")
      return { status: statuses.duplicate, reason: `monitor ${m.id} already has a session` };
    return { m };
  }

  private handleConnect(s: Session, req: ConnectRequest): void {
    const verdict = this.checkConnect(req);
    if (!("m" in verdict)) {
      s.refuse(verdict.status, verdict.reason, verdict.silent);
      return;
    }
    const m = verdict.m;
    const q = this.queue(m);
    if (q.session) {
      this.log.info({ session: q.session.id, by: s.id, monitorId: m.id }, "session taken over by a new connection");
      this.closeSession(q.session, "taken over");
    }
    s.accept(m.id, q);
    q.session = s;
    q.stats.sessions++;
    m.status = "ACTIVE";
    m.lastConnect = new Date().toISOString();
    if (m.ackOption === "explicit") s.startAckTimer(this.opts.ackTimeoutMs);
    this.log.info({ session: s.id, monitorId: m.id, remote: s.remote, tls: s.tls, queued: q.events.length }, "session established");
    this.scheduleFlush(q);
  }

  private handleAck(s: Session, a: Ack): void {
    const q = s.queue;
    if (!q) return;
    q.stats.acksReceived++;
    if (a.form === "spec") q.stats.specAcks++;
    else q.stats.legacyAcks++;
    const block = s.outstanding.get(a.blockId);
    q.remember(q.acks, {
      blockId: a.blockId,
      status: a.status,
      form: a.form,
      sessionId: s.id,
      matched: !!block,
      at: new Date().toISOString(),
    });
    if (!block) {
      q.stats.unknownAcks++;
      return;
    }
    if (a.status >= 200 && a.status < 300) {
      s.outstanding.delete(a.blockId);
      q.stats.blocksAcked++;
      q.stats.eventsAcked += block.count;
      q.remember(q.ackedBlockIds, a.blockId);
    } else {
      // A non-200 ack is never sent by a real client; [I]: treat it as "not processed" and keep the
      // block for replay on the next connect.
      q.stats.blocksNacked++;
    }
    if (q.session === s) this.flush(q);
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
    const q = s.queue;
    s.queue = undefined;
    if (!wasEstablished || !q) return;
    const unacked: QueuedEvent[] = [];
    for (const b of s.outstanding.values()) for (const it of b.items) unacked.push(it);
    s.outstanding.clear();
    if (q.session !== s) {
      // The monitor was reset, disabled or deleted first: its state is gone, so are these blocks.
      q.stats.eventsDropped += unacked.length;
      return;
    }
    q.session = undefined;
    q.clearTimer();
    q.forceDue = false;
    if (!this.queues.has(q.m.id)) return;
    if (q.m.autoReplay) {
      // SUSPENDED: keep recording; unacked blocks first, then everything not yet sent, all flagged replay.
      for (const it of unacked) it.replay = true;
      q.events.forEach((it) => {
        it.replay = true;
      });
      if (unacked.length > 0) q.events.unshiftAll(unacked);
      q.m.status = "SUSPENDED";
    } else {
      q.stats.eventsDropped += unacked.length + q.events.clear();
      q.m.status = "INACTIVE";
    }
    this.log.info({ session: s.id, monitorId: q.m.id, status: q.m.status, kept: q.events.length }, "session closed");
  }

  // ---------------------------------------------------------------- faults applied at once

  /** The `stall` fault: nothing goes out to the monitor(s) for `ms`; queued events wait. Returns the monitors hit. */
  stall(ms: number, monitorId?: number): number[] {
    const hit: number[] = [];
    for (const q of this.queues.values()) {
      if (monitorId !== undefined && q.m.id !== monitorId) continue;
      q.stalledUntil = Date.now() + ms;
      if (q.stallTimer) clearTimeout(q.stallTimer);
      q.stallTimer = setTimeout(() => {
        q.stallTimer = undefined;
        q.stalledUntil = 0;
        this.flush(q);
      }, ms);
      hit.push(q.m.id);
    }
    return hit;
  }

  clearStalls(): void {
    for (const q of this.queues.values()) {
      if (q.stallTimer) clearTimeout(q.stallTimer);
      q.stallTimer = undefined;
      if (q.stalledUntil) {
        q.stalledUntil = 0;
        this.flush(q);
      }
    }
  }

  // ---------------------------------------------------------------- state

  monitorState(id: number) {
    const q = this.queues.get(id);
    if (!q) return undefined;
    const s = q.session;
    const pending = s && q.m.ackOption === "explicit" ? [...s.outstanding.keys()] : [];
    return {
      id,
      status: q.m.status,
      ackOption: q.m.ackOption,
      autoReplay: q.m.autoReplay,
      session: s?.id ?? null,
      queued: q.events.length,
      pendingBlocks: pending,
      unackedBlocks: pending.length,
      stalled: q.stalledUntil > Date.now(),
      ...q.stats,
      ackedBlockIds: q.ackedBlockIds,
      recentBlocks: q.blocks,
      recentAcks: q.acks,
    };
  }

  state() {
    return {
      eventsEmitted: this.totalEmitted,
      monitors: [...this.queues.keys()].map((id) => this.monitorState(id)!),
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

  /** At stop: every session closed, every timer off. */
  closeAll(): void {
    for (const s of [...this.sessions]) s.socket.destroy();
    for (const q of this.queues.values()) q.stopTimers();
  }
}

/**
 * One monitor's side of the push engine: the events waiting to go out, the batch timer, a stall, counters and the
 * recent history shown in `state`. No timer per event: events are appended here and flushed in blocks.
 */
import type { EventSpec } from "../events.js";
import { type Monitor, parseSubscription, type Subscription } from "../monitors.js";

/** An event waiting to go out, and whether it goes out flagged `replay="true"`. */
export interface QueuedEvent {
  e: EventSpec;
  replay: boolean;
}

/** Array-backed FIFO with O(1) amortised shift: a queue may hold millions of events while a client is away. */
export class Fifo<T> {
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

/** `S` is the connection type that serves the queue: the queue only holds it, the engine uses it. */
export class MonitorQueue<S = unknown> {
  /** The session this monitor sends on, while one is established. */
  session: S | undefined;
  readonly events = new Fifo<QueuedEvent>();
  subs: Subscription[];
  /** Set once the batch duration has passed: what is queued goes out even if short of a full block. */
  forceDue = false;
  stalledUntil = 0;
  stallTimer: NodeJS.Timeout | undefined;
  stats = zeroStats();
  readonly blocks: BlockRecord[] = [];
  readonly acks: AckRecord[] = [];
  readonly ackedBlockIds: number[] = [];
  /** Round-robin position over the monitor's resources for targeted emits. */
  rr = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private timerIsImmediate = false;

  constructor(
    public m: Monitor,
    private readonly historyLimit: number,
  ) {
    this.subs = m.topics.map(parseSubscription);
  }

  get timerArmed(): boolean {
    return this.timer !== undefined;
  }

  /** Calls `due` once the monitor's batch duration has passed (duration 0: at the end of this tick). */
  armTimer(due: () => void): void {
    const fire = () => {
      this.timer = undefined;
      due();
    };
    this.timerIsImmediate = this.m.batchDuration === 0;
    this.timer = this.timerIsImmediate ? setImmediate(fire) : setTimeout(fire, this.m.batchDuration * 1000);
  }

  clearTimer(): void {
    if (this.timer) {
      if (this.timerIsImmediate) clearImmediate(this.timer as NodeJS.Immediate);
      else clearTimeout(this.timer as NodeJS.Timeout);
    }
    this.timer = undefined;
  }

  /** Every timer off: the monitor goes away or the emulator stops. */
  stopTimers(): void {
    this.clearTimer();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  /** Keeps the last `historyLimit` entries of a history list. */
  remember<T>(list: T[], entry: T): void {
    list.push(entry);
    if (list.length > this.historyLimit) list.splice(0, list.length - this.historyLimit);
  }
}

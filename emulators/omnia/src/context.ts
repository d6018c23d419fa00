/**
 * What the routes share: settings, the store, the authenticator, faults, counters, access rules, live growth and
 * the streaming events; and the state document of `GET /_emulator/state`.
 */
import { Authenticator } from "./auth.js";
import { ApiError } from "./errors.js";
import { Faults } from "./faults.js";
import type { ResolvedOptions } from "./options.js";
import type { Limits } from "./query.js";
import { RateLimiter } from "./rate-limit.js";
import { liveValue, seedStore } from "./seed.js";
import { type Datapoint, type Series, Store } from "./store.js";
import { formatTime, msToNs, parseTime } from "./time.js";

export interface Counters {
  requests: number;
  byOperation: Record<string, number>;
  /** By request path below the version (lower case); at most MAX_PATHS distinct paths, the rest under `(other)`. */
  byPath: Record<string, number>;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
  authRefusals: number;
  pointsWritten: number;
  pointsDeleted: number;
  livePoints: number;
  latePoints: number;
}

const MAX_PATHS = 500;
const MAX_STREAM_EVENTS = 10_000;

export interface SeedConfig {
  seed: string | false;
  points: number;
  stepSeconds: number;
  endTime: string;
}

export interface AccessRule {
  facility?: string;
  id?: string;
}

export interface StreamEvent {
  schema: "equinor/plant/schemas/ingest/datapoints_v2";
  data: { items: { id: string; datapoints: { time: string; value: number; status: number }[] }[] };
}

const newCounters = (): Counters => ({
  requests: 0,
  byOperation: {},
  byPath: {},
  byStatus: {},
  faults: {},
  authRefusals: 0,
  pointsWritten: 0,
  pointsDeleted: 0,
  livePoints: 0,
  latePoints: 0,
});

export class EmulatorContext {
  readonly store: Store;
  readonly auth: Authenticator;
  readonly faults = new Faults();
  readonly rateLimiter: RateLimiter;
  counters = newCounters();
  denied: AccessRule[] = [];
  streamEvents: StreamEvent[] = [];
  liveIds: string[] = [];
  /** Ids of the seeded series, in seed order. */
  seededIds: string[] = [];
  readonly limits: Limits;
  private liveTimer: NodeJS.Timeout | undefined;
  private lastLiveNs = 0n;

  constructor(
    readonly opts: ResolvedOptions,
    readonly caPem: string | undefined,
  ) {
    this.store = new Store(opts.facilities);
    this.auth = new Authenticator(opts.auth);
    this.rateLimiter = new RateLimiter(opts.rateLimit);
    this.limits = {
      defaultLimit: opts.defaultLimit,
      maxLimit: opts.maxLimit,
      maxBuckets: opts.maxBuckets,
      endInclusive: opts.endInclusive,
    };
    if (opts.faults) this.faults.set(opts.faults);
    this.seedConfig = { seed: opts.seed, points: opts.seedPoints, stepSeconds: opts.seedStepSeconds, endTime: opts.seedEndTime };
    this.seed();
    if (opts.liveIntervalMs > 0) {
      this.liveTimer = setInterval(() => this.liveTick(), opts.liveIntervalMs);
      this.liveTimer.unref();
    }
  }

  /** The seed in use: the settings', until `POST /_emulator/seed` changes it. */
  seedConfig: SeedConfig;

  seed(): void {
    this.store.clear();
    this.liveIds = [];
    this.seededIds = [];
    const c = this.seedConfig;
    if (c.seed === false) return;
    const endNs = parseTime(c.endTime);
    if (endNs === undefined) throw new Error(`seedEndTime: not a time: ${c.endTime}`);
    const ids = seedStore(this.store, { seed: c.seed, points: c.points, endNs, stepNs: BigInt(c.stepSeconds) * 1_000_000_000n }, endNs);
    this.seededIds = ids;
    this.liveIds = ids.slice(0, this.opts.liveSeries ?? ids.length);
  }

  reset(): void {
    this.seed();
    this.counters = newCounters();
    this.faults.clear();
    this.denied = [];
    this.streamEvents = [];
    this.lastLiveNs = 0n;
  }

  /** One point stamped now on every live series; returns the time used. */
  liveTick(): bigint {
    let now = msToNs(Date.now());
    if (now <= this.lastLiveNs) now = this.lastLiveNs + 100n;
    this.lastLiveNs = now;
    this.liveIds.forEach((id, i) => {
      const s = this.store.get(id);
      if (!s) return;
      const p = { t: now, value: liveValue(now, i), status: 192 };
      s.upsert(p);
      this.trim(s);
      this.counters.livePoints++;
      this.emitStream(s, [p]);
    });
    return now;
  }

  /** Upserts points into a series (writes, late arrivals), and streams them to subscribers. */
  write(s: Series, points: Datapoint[]): void {
    for (const p of points) s.upsert(p);
    this.trim(s);
    this.counters.pointsWritten += points.length;
    this.emitStream(s, points);
  }

  private trim(s: Series): void {
    const over = s.points.length - this.opts.maxPointsPerSeries;
    if (over > 0) s.points.splice(0, over);
  }

  private emitStream(s: Series, points: Datapoint[]): void {
    if (!this.store.streamingDestination || !this.store.subscriptions.has(s.meta.id.toLowerCase()) || points.length === 0) return;
    this.streamEvents.push({
      schema: "equinor/plant/schemas/ingest/datapoints_v2",
      data: { items: [{ id: s.meta.id, datapoints: points.map((p) => ({ time: formatTime(p.t), value: p.value, status: p.status })) }] },
    });
    if (this.streamEvents.length > MAX_STREAM_EVENTS) this.streamEvents.splice(0, this.streamEvents.length - MAX_STREAM_EVENTS);
  }

  /** 403 when an access rule denies this series (by id or by facility). */
  checkAccess(s: Series): void {
    for (const r of this.denied) {
      if (r.id && r.id.toLowerCase() === s.meta.id.toLowerCase())
        throw new ApiError(403, `Forbidden. No access to timeseries '${s.meta.id}'.`);
      if (r.facility && this.store.facility(r.facility)?.code === s.meta.facility)
        throw new ApiError(403, `Forbidden. No access to facility '${s.meta.facility}'.`);
    }
  }

  allowed(s: Series): boolean {
    try {
      this.checkAccess(s);
      return true;
    } catch {
      return false;
    }
  }

  count(operation: string, apiPath: string): void {
    this.counters.requests++;
    this.counters.byOperation[operation] = (this.counters.byOperation[operation] ?? 0) + 1;
    const key = apiPath.toLowerCase().replace(/\/+$/, "") || "/";
    const bp = this.counters.byPath;
    if (bp[key] !== undefined || Object.keys(bp).length < MAX_PATHS) bp[key] = (bp[key] ?? 0) + 1;
    else bp["(other)"] = (bp["(other)"] ?? 0) + 1;
  }

  state(q: { points?: boolean; id?: string; maxPoints?: number }) {
    const series = this.store
      .ordered()
      .filter((s) => !q.id || s.meta.id.toLowerCase() === q.id.toLowerCase())
      .map((s) => {
        const first = s.points[0];
        const last = s.points[s.points.length - 1];
        return {
          ...s.meta,
          pointCount: s.points.length,
          firstTime: first ? formatTime(first.t) : null,
          lastTime: last ? formatTime(last.t) : null,
          live: this.liveIds.includes(s.meta.id),
          ...(q.points
            ? {
                points: s.points
                  .slice(-(q.maxPoints ?? s.points.length))
                  .map((p) => ({ time: formatTime(p.t), timeNs: p.t.toString(), value: p.value, status: p.status })),
              }
            : {}),
        };
      });
    return {
      counters: this.counters,
      faults: this.faults.get(),
      rateLimit: this.rateLimiter.limit ?? null,
      auth: { mode: this.auth.mode, audiences: this.opts.auth.audiences, lastKeyError: this.auth.lastKeyError ?? null },
      denied: this.denied,
      facilities: this.store.facilities,
      streaming: {
        destination: this.store.streamingDestination ? "(set)" : null,
        subscriptions: [...this.store.subscriptions.values()],
        events: this.streamEvents.length,
      },
      series,
    };
  }

  stop(): void {
    if (this.liveTimer) clearInterval(this.liveTimer);
  }
}

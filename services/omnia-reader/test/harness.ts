/** What omnia-reader's integration tests share: an in-process Omnia with faults, a bus reader. */
import type { Bus } from "@meridian/bus";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type Collected, collectInBackground } from "@meridian/testing";
import type { OmniaApi } from "../src/pipeline/omnia-api.js";
import {
  type Datapoint,
  type DatapointsPage,
  type DatapointsQuery,
  type DatapointWrite,
  OmniaBadRequestError,
  OmniaNotFoundError,
  OmniaServerError,
  OmniaThrottledError,
  type TimeInput,
  type Timeseries,
  type TimeseriesCreate,
  type TimeseriesSearch,
} from "../src/platform/index.js";

function ns(t: TimeInput | undefined, fallback: bigint): bigint {
  if (t === undefined) return fallback;
  if (typeof t === "bigint") return t;
  return BigInt(new Date(t).getTime()) * 1_000_000n;
}

function iso(timeNs: bigint): string {
  const ms = Number(timeNs / 1_000_000n);
  const frac = (timeNs % 1_000_000_000n).toString().padStart(9, "0").slice(0, 7);
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/**
 * An Omnia of the test's own, standing in for the client on the emulator while neither exists: series with
 * datapoints, [start, end) reads paged by an opaque token, name search with * wildcards, and faults the next calls
 * answer with (429 with Retry-After, 503), as the platform client would throw them after its own retries.
 */
export class FakeOmnia {
  readonly series = new Map<string, Timeseries>();
  readonly points = new Map<string, Map<bigint, Datapoint>>();
  readonly facilities = new Set(["JSV", "SNA"]);
  faults: Array<"429" | "503"> = [];
  /** Faults of writes only. */
  writeFaults: Array<"429" | "503"> = [];
  /** How often each point (`<series id>@<time ns>`) was written. */
  readonly writes = new Map<string, number>();
  dataCalls = 0;
  /** Called before each data read's answer: a test stops the reader mid-poll here. */
  onRead: ((call: number) => Promise<void> | void) | undefined;

  addSeries(t: Omit<Timeseries, "id"> & { id?: string }): Timeseries {
    const id = t.id ?? `00000000-0000-0000-0000-${String(this.series.size + 1).padStart(12, "0")}`;
    const s = { ...t, id } as Timeseries;
    this.series.set(id, s);
    this.points.set(id, new Map());
    return s;
  }

  write(id: string, points: readonly { timeNs: bigint; value: number; status?: number }[]): void {
    const m = this.points.get(id);
    if (!m) throw new Error(`no series ${id}`);
    for (const p of points) m.set(p.timeNs, { time: iso(p.timeNs), timeNs: p.timeNs, value: p.value, status: p.status ?? 192 });
  }

  private fault(list: Array<"429" | "503"> = this.faults): void {
    const f = list.shift();
    if (f === "429") throw new OmniaThrottledError("429 Too Many Requests", { ms: 20, requestedMs: 20 }, { status: 429 });
    if (f === "503") throw new OmniaServerError("503 Service Unavailable", { status: 503 });
  }

  private get(id: string): Timeseries {
    const s = this.series.get(id);
    if (!s) throw new OmniaNotFoundError(`timeseries ${id} not found`, { status: 404 });
    return s;
  }

  readonly api: OmniaApi = {
    getDatapoints: async (id: string, q: DatapointsQuery = {}): Promise<DatapointsPage> => {
      this.dataCalls++;
      this.fault();
      await this.onRead?.(this.dataCalls);
      this.get(id);
      if (q.limit !== undefined && (q.limit < 1 || q.limit > 100_000))
        throw new OmniaBadRequestError("limit must be between 1 and 100000", { status: 400, platformMessage: "Invalid limit." });
      const start = ns(q.startTime, -(2n ** 62n));
      const end = ns(q.endTime, 2n ** 62n);
      const all = [...(this.points.get(id)?.values() ?? [])]
        .filter((p) => p.timeNs >= start && p.timeNs < end)
        .sort((a, b) => (a.timeNs < b.timeNs ? -1 : 1));
      const offset = q.continuationToken ? Number(q.continuationToken) : 0;
      const limit = q.limit ?? 1000;
      const page = all.slice(offset, offset + limit);
      const next = offset + limit < all.length ? String(offset + limit) : undefined;
      return { items: [{ id, datapoints: page }], ...(next ? { continuationToken: next } : {}) };
    },
    searchTimeseries: async (q: TimeseriesSearch) => {
      this.fault();
      const re = q.name ? new RegExp(`^${q.name.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`) : /.*/;
      const items = [...this.series.values()].filter((s) => re.test(s.name) && (!q.facility || s.facility === q.facility));
      return { items };
    },
    getTimeseries: async (id: string) => {
      this.fault();
      return this.get(id);
    },
    createTimeseries: async (item: TimeseriesCreate) => {
      if (!this.facilities.has(item.facility))
        throw new OmniaBadRequestError("400 Facility not found.", { status: 400, platformMessage: "Facility not found." });
      return this.addSeries(item);
    },
    getOrAddTimeseries: async (items: readonly TimeseriesCreate[]) =>
      items.map((i) => [...this.series.values()].find((s) => s.name === i.name && s.facility === i.facility) ?? this.addSeries(i)),
    patchTimeseries: async (id: string, patch: Partial<TimeseriesCreate>) => Object.assign(this.get(id), patch),
    deleteTimeseries: async (id: string) => {
      this.get(id);
      this.series.delete(id);
      return {};
    },
    writeMultipleDatapoints: async (items: readonly { id: string; datapoints: readonly DatapointWrite[] }[]) => {
      this.fault(this.writeFaults);
      for (const i of items)
        for (const p of i.datapoints) {
          const key = `${i.id}@${ns(p.time, 0n)}`;
          this.writes.set(key, (this.writes.get(key) ?? 0) + 1);
        }
      for (const i of items)
        this.write(
          i.id,
          i.datapoints.map((p) => ({ timeNs: ns(p.time, 0n), value: p.value, status: p.status })),
        );
      return { httpStatus: 200, accepted: false };
    },
    deleteDatapoints: async () => ({}),
    getFirstDatapoint: async () => undefined,
    getLatestDatapoint: async () => undefined,
    getAggregates: async () => ({ items: [] }),
    queryDatapoints: async () => ({ items: [] }),
  };
}

/** Every event of a reader on the bus from `since`, collected in the background by an independent reader. */
export function collect(bus: Bus, readerId: string, since: Date): Collected<TelemetryEvent> {
  return collectInBackground((signal) => bus.subscribe({ platform: Platform.OMNIA, connection: readerId }, { startTime: since, signal }));
}

/**
 * What paused Meridian's service processes over one phase of a bench, from their own /metrics (prom-client's default
 * metrics): the event loop's delay and the time spent in each kind of garbage collection. A latency tail shows up as
 * a request that waited; these say whether its process was busy with something else at the time.
 *
 * prom-client samples the event loop with a 10 ms timer and resets that histogram whenever /metrics is read, so
 * reading it at the start of a phase leaves only the phase in it; the GC figures are totals, taken as a difference.
 */

/** prom-client's eventLoopMonitoringPrecision: its histogram holds whole timer intervals, not the delay beyond them. */
const SAMPLING_MS = 10;

export interface GcFigures {
  count: number;
  ms: number;
}

export interface Pauses {
  /** The longest and 99th-percentile time the loop was late, beyond its 10 ms sampling timer. */
  eventLoopDelayMaxMs: number;
  eventLoopDelayP99Ms: number;
  /** Collections over the phase by prom-client's kind (minor = scavenge, major = mark-compact, incremental marking). */
  gc: Record<string, GcFigures>;
}

/** The figures of one /metrics text this module uses. */
export function readMetrics(text: string): { lagMaxS: number; lagP99S: number; gc: Record<string, { sumS: number; count: number }> } {
  let lagMaxS = 0;
  let lagP99S = 0;
  const gc: Record<string, { sumS: number; count: number }> = {};
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ([-+0-9.eE]+|NaN)$/.exec(line.trim());
    if (!m) continue;
    const [, name, labels, raw] = m;
    const value = Number(raw);
    if (name === "nodejs_eventloop_lag_max_seconds") lagMaxS = value;
    else if (name === "nodejs_eventloop_lag_p99_seconds") lagP99S = value;
    else if (name === "nodejs_gc_duration_seconds_sum" || name === "nodejs_gc_duration_seconds_count") {
      const kind = /kind="([^"]+)"/.exec(labels ?? "")?.[1];
      if (!kind) continue;
      gc[kind] ??= { sumS: 0, count: 0 };
      if (name.endsWith("_sum")) gc[kind].sumS = value;
      else gc[kind].count = value;
    }
  }
  return { lagMaxS, lagP99S, gc };
}

/** The pauses between two readings (`start` read first: its event-loop figures are discarded, being before the phase). */
export function pausesBetween(start: ReturnType<typeof readMetrics>, end: ReturnType<typeof readMetrics>): Pauses {
  const late = (s: number) => Number(Math.max(0, s * 1000 - SAMPLING_MS).toFixed(1));
  const gc: Record<string, GcFigures> = {};
  for (const [kind, e] of Object.entries(end.gc)) {
    const s = start.gc[kind] ?? { sumS: 0, count: 0 };
    gc[kind] = { count: e.count - s.count, ms: Number(((e.sumS - s.sumS) * 1000).toFixed(1)) };
  }
  return { eventLoopDelayMaxMs: late(end.lagMaxS), eventLoopDelayP99Ms: late(end.lagP99S), gc };
}

/** Read each process's /metrics now; close() reads them again and says what paused each one in between. */
export class PauseWindow {
  private constructor(
    private readonly urls: Record<string, string>,
    private readonly start: Record<string, ReturnType<typeof readMetrics>>,
  ) {}

  static async open(urls: Record<string, string>): Promise<PauseWindow> {
    return new PauseWindow(urls, await readAll(urls));
  }

  async close(): Promise<Record<string, Pauses>> {
    const end = await readAll(this.urls);
    return Object.fromEntries(Object.keys(this.urls).map((name) => [name, pausesBetween(this.start[name]!, end[name]!)]));
  }
}

async function readAll(urls: Record<string, string>): Promise<Record<string, ReturnType<typeof readMetrics>>> {
  const entries = await Promise.all(
    Object.entries(urls).map(async ([name, url]) => {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${name} ${url}: ${res.status}`);
      return [name, readMetrics(await res.text())] as const;
    }),
  );
  return Object.fromEntries(entries);
}

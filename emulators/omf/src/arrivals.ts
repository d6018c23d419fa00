/**
 * Bench-only arrival log (`recordArrivals` / OMF_EMULATOR_RECORD_ARRIVALS): when each data value was written, by
 * container and index key, so that a benchmark can measure send → in the sink from an index it set to its send time,
 * and count every value it was promised against what arrived (lost, duplicated). Off by default: then the ingest path
 * does not touch it at all.
 */
export interface ArrivalGroup {
  /** Epoch ms, sub-millisecond (performance.timeOrigin + performance.now()), when the values were written. */
  atMs: number;
  /** The container id as the client sent it. */
  containerId: string;
  /** Index keys of the values written (`YYYY-MM-DDThh:mm:ss.fffffffZ` for a date-time index), in message order. */
  keys: string[];
}

/**
 * The clock arrival times are read on. Each process's performance.timeOrigin is the wall clock at its own start, so two
 * processes' clocks can differ by whatever the wall clock was stepped or slewed in between (6 ms seen in a bench run on
 * this machine): a bench in another process reads this one (`GET /_emulator/arrivals/clock`) to measure the offset.
 */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export class Arrivals {
  #groups: ArrivalGroup[] = [];
  #values = 0;

  record(containerId: string, keys: string[]): void {
    if (keys.length === 0) return;
    // Sub-millisecond: a bench measures latencies of a few ms, against send times taken the same way.
    this.#groups.push({ atMs: nowMs(), containerId, keys });
    this.#values += keys.length;
  }

  /**
   * The document of `GET /_emulator/arrivals`: groups as `[atMs, containerId, keys]` tuples (compact: a bench run reads
   * millions of values).
   */
  snapshot(): { values: number; groups: Array<[number, string, string[]]> } {
    return { values: this.#values, groups: this.#groups.map((g) => [g.atMs, g.containerId, g.keys]) };
  }

  /** The document of `GET /_emulator/arrivals/clock`: now, on the clock of `atMs`. */
  clock(): { nowMs: number } {
    return { nowMs: nowMs() };
  }

  clear(): void {
    this.#groups = [];
    this.#values = 0;
  }
}

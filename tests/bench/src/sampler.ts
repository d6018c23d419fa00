import { readFileSync } from "node:fs";

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process used so far, in seconds, or undefined once it is gone. */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    // Fields 14 and 15 of /proc/<pid>/stat, after the command name in parentheses (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process now, in MiB, or undefined once it is gone. */
export function procRssMiB(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/**
 * Proportional set size of a process now, in MiB (its private pages plus its share of pages mapped by others, from
 * /proc/<pid>/smaps_rollup), or undefined once it is gone. Unlike RSS, the PSS of a group of processes that share memory
 * (a browser's) adds up to what the group holds.
 */
export function procPssMiB(pid: number): number | undefined {
  try {
    const kb = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** A figure per named process and their sum. */
export interface PerProcess {
  perProcess: Record<string, number>;
  total: number;
}

/** CPU seconds used so far by each process, at one moment. */
export interface ProcessMark {
  atMs: number;
  cpuSeconds: Record<string, number>;
}

function perProcess(values: Record<string, number>, digits: number): PerProcess {
  const round = (v: number) => Number(v.toFixed(digits));
  let total = 0;
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(values)) {
    out[name] = round(v);
    total += v;
  }
  return { perProcess: out, total: round(total) };
}

/**
 * Samples `/proc/<pid>` of named processes (Linux): idle RSS when started (before any load), peak RSS every
 * `intervalMs` from then on, and CPU seconds between marks, so that a bench can say what each process cost per event.
 * A process that exits keeps its last figures.
 */
export class ProcessSampler {
  readonly #pids: Record<string, number>;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #idle: Record<string, number> = {};
  #peak: Record<string, number> = {};
  #lastCpu: Record<string, number> = {};
  #lastMark: ProcessMark | undefined;

  constructor(pids: Record<string, number>, options: { intervalMs?: number } = {}) {
    const intervalMs = options.intervalMs ?? 250;
    if (!Number.isFinite(intervalMs) || intervalMs < 10 || intervalMs > 60_000)
      throw new Error(`intervalMs ${intervalMs}: from 10 to 60000`);
    for (const [name, pid] of Object.entries(pids)) {
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`process "${name}": pid ${pid} is not a process id`);
    }
    this.#pids = { ...pids };
    this.#intervalMs = intervalMs;
  }

  /** Records idle RSS now, then samples peak RSS every interval until stop(). Call it before the load starts. */
  start(): this {
    if (this.#timer) return this;
    for (const [name, pid] of Object.entries(this.#pids)) {
      const rss = procRssMiB(pid);
      if (rss === undefined) throw new Error(`process "${name}" (pid ${pid}) is not running`);
      this.#idle[name] = rss;
      this.#peak[name] = rss;
    }
    this.#timer = setInterval(() => this.sample(), this.#intervalMs);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample();
  }

  /** One sample now (the timer calls it; a bench may call it at the end of a phase too). */
  sample(): void {
    for (const [name, pid] of Object.entries(this.#pids)) {
      const rss = procRssMiB(pid);
      if (rss !== undefined && rss > (this.#peak[name] ?? 0)) this.#peak[name] = rss;
    }
  }

  /** CPU seconds of every process now; the default start of cpuSeconds() and cpuMicrosPerEvent(). */
  mark(): ProcessMark {
    const cpuSeconds: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      const cpu = procCpuSeconds(pid) ?? this.#lastCpu[name] ?? 0;
      this.#lastCpu[name] = cpu;
      cpuSeconds[name] = cpu;
    }
    this.#lastMark = { atMs: performance.now(), cpuSeconds };
    return this.#lastMark;
  }

  /** CPU seconds used between two marks (default: the last mark and now). */
  cpuSeconds(from?: ProcessMark, to?: ProcessMark): PerProcess {
    const start = from ?? this.#lastMark;
    if (!start) throw new Error("cpuSeconds: no mark yet (call mark() when the phase starts)");
    const end = to ?? this.mark();
    const used: Record<string, number> = {};
    for (const name of Object.keys(this.#pids)) used[name] = (end.cpuSeconds[name] ?? 0) - (start.cpuSeconds[name] ?? 0);
    return perProcess(used, 3);
  }

  /** CPU microseconds per event between two marks (default: the last mark and now), per process and summed. */
  cpuMicrosPerEvent(events: number, from?: ProcessMark, to?: ProcessMark): PerProcess {
    if (!(events > 0)) throw new Error(`cpuMicrosPerEvent: events ${events} must be above 0`);
    const { perProcess: seconds } = this.cpuSeconds(from, to);
    const micros: Record<string, number> = {};
    for (const [name, s] of Object.entries(seconds)) micros[name] = (s * 1e6) / events;
    return perProcess(micros, 2);
  }

  /** RSS in MiB when start() was called. */
  idleRssMiB(): PerProcess {
    return perProcess(this.#idle, 1);
  }

  /** Highest RSS in MiB sampled since start() or the last resetPeak(). */
  peakRssMiB(): PerProcess {
    this.sample();
    return perProcess(this.#peak, 1);
  }

  /** Starts a new peak from the current RSS (between phases whose peaks are reported apart). */
  resetPeak(): void {
    for (const [name, pid] of Object.entries(this.#pids)) this.#peak[name] = procRssMiB(pid) ?? 0;
  }
}

/**
 * What the iDigi benches (idigi.ts, slice.ts) share: a sustained load on the iDigi emulator, kept just ahead of what
 * the far end has taken, and percentiles of the latencies they measure.
 */
import { percentile, rate } from "./common.js";

/** One bounded setting from the environment: a clear error instead of a run with a nonsense figure. */
export function envNumber(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`${name}=${raw}: a number from ${min} to ${max}`);
  return value;
}

/** POSTs `/_emulator/emit`: `count` DataPoint events for the monitor, queued at the emulator at once. */
export function emitter(httpUrl: string, monitorId: number): (count: number) => Promise<void> {
  return async (count) => {
    const res = await fetch(`${httpUrl}/_emulator/emit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ monitorId, topic: "DataPoint", count }),
    });
    if (!res.ok) throw new Error(`emit: ${res.status} ${await res.text()}`);
  };
}

export interface SustainOptions {
  emit(count: number): Promise<void>;
  /** Events the far end has taken so far (a counter that only grows). */
  delivered(): Promise<number>;
  warmupMs: number;
  measureMs: number;
  /** Events emitted and not yet taken, at most: enough to keep every stage busy, bounded so that nothing piles up. */
  maxOutstanding: number;
  /** Events per emit call. */
  chunk: number;
  /** How long the backlog may take to drain after the measured phase before the run fails. */
  drainTimeoutMs: number;
  /** Called as the measured phase starts and ends (CPU marks, peak RSS). */
  onStart?(): void;
  onEnd?(): void;
}

export interface SustainResult {
  /** Events taken during the measured phase. */
  events: number;
  seconds: number;
  eventsPerSec: number;
  warmupSeconds: number;
  /** Every event emitted (warm-up, measured phase, tail) and taken at the end: nothing lost on the way. */
  emitted: number;
  deliveredAtEnd: number;
}

/**
 * Keeps the emulator `maxOutstanding` events ahead of the far end for a warm-up and then a measured phase, then lets
 * the backlog drain. The measured figure is what the far end took between the phase's two instants.
 */
export async function sustain(o: SustainOptions): Promise<SustainResult> {
  const base = await o.delivered();
  let emitted = 0;
  const t0 = performance.now();
  let start: { at: number; delivered: number } | undefined;
  let end: { at: number; delivered: number } | undefined;
  while (!end) {
    const delivered = (await o.delivered()) - base;
    const now = performance.now();
    if (!start && now - t0 >= o.warmupMs) {
      start = { at: now, delivered };
      o.onStart?.();
    } else if (start && now - start.at >= o.measureMs) {
      end = { at: now, delivered };
      o.onEnd?.();
      break;
    }
    const room = o.maxOutstanding - (emitted - delivered);
    if (room >= o.chunk) {
      await o.emit(o.chunk);
      emitted += o.chunk;
    } else await new Promise((r) => setTimeout(r, 20));
  }
  const deadline = performance.now() + o.drainTimeoutMs;
  let deliveredAtEnd = (await o.delivered()) - base;
  while (deliveredAtEnd < emitted && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    deliveredAtEnd = (await o.delivered()) - base;
  }
  const ms = end.at - start!.at;
  const events = end.delivered - start!.delivered;
  return {
    events,
    seconds: Number((ms / 1000).toFixed(1)),
    eventsPerSec: rate(events, ms),
    warmupSeconds: Number(((start!.at - t0) / 1000).toFixed(1)),
    emitted,
    deliveredAtEnd,
  };
}

/** p50 / p99 / max of a set of latencies in ms (sorted here), with how many there were. */
export function latencySummary(values: number[]): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (v: number) => Number(v.toFixed(1));
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted.at(-1) ?? 0),
  };
}

import { type Agent, request } from "node:http";
import { cpus, totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Platform, Quality, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { PerProcess, ProcessSampler } from "./sampler.js";

/** A realistic ~300-byte event: 4 points with units and quality, 2 attributes. */
export function sampleEvent(n: number, device: string, connection = "bench"): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:${n.toString().padStart(10, "0")}`,
    source: { platform: Platform.API, connection, device },
    observedTime: timestampFromDate(new Date(1_700_000_000_000 + n)),
    receivedTime: timestampFromDate(new Date()),
    points: [
      { name: "pressure", value: { case: "doubleValue", value: 4 + (n % 100) / 100 }, unit: "bar", quality: Quality.GOOD },
      { name: "temperature", value: { case: "doubleValue", value: 80 + (n % 50) / 10 }, unit: "degC", quality: Quality.GOOD },
      { name: "cycle_count", value: { case: "intValue", value: BigInt(n) }, quality: Quality.GOOD },
      { name: "running", value: { case: "boolValue", value: n % 7 !== 0 }, quality: Quality.GOOD },
    ],
    attributes: { site: "rotterdam-plant-2", line: "press-line-a" },
  });
}

/** What every benchmark prints with its numbers: the hardware they came from. */
export function machine() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
  };
}

export function rate(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * A bench setting from the environment: a number from `min` to `max`, or `fallback` when unset. Anything else stops
 * the bench before it starts, naming the variable, rather than measuring something other than what was asked.
 */
export function envNumber(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name}=${raw}: a number from ${min} to ${max}`);
  return n;
}

/** How long a throughput phase runs: a warm-up with the load on, then the window that is counted. */
export interface PhaseLengths {
  warmupSeconds: number;
  seconds: number;
}

/** What a result's figures are worth: 30 s or more after 5 s or more of warm-up, or a shortened (smoke) run. */
export const FULL_PHASE: PhaseLengths = { warmupSeconds: 5, seconds: 30 };

/**
 * Phase lengths of a bench: BENCH_<PREFIX>_SECONDS / BENCH_<PREFIX>_WARMUP_SECONDS, else BENCH_SECONDS /
 * BENCH_WARMUP_SECONDS (one pair shortens every bench for a smoke run), else 30 s after 5 s.
 */
export function phaseLengths(prefix: string): PhaseLengths {
  const seconds = envNumber(`BENCH_${prefix}_SECONDS`, envNumber("BENCH_SECONDS", FULL_PHASE.seconds, 1, 3600), 1, 3600);
  const warmupSeconds = envNumber(
    `BENCH_${prefix}_WARMUP_SECONDS`,
    envNumber("BENCH_WARMUP_SECONDS", FULL_PHASE.warmupSeconds, 0, 600),
    0,
    600,
  );
  return { warmupSeconds, seconds };
}

/** Whether phases of these lengths make figures to compare (false: a smoke run, its figures only prove it runs). */
export function fullLength(p: PhaseLengths): boolean {
  return p.seconds >= FULL_PHASE.seconds && p.warmupSeconds >= FULL_PHASE.warmupSeconds;
}

/** A sustained window: what was counted in it, its rate, and every sampled process's CPU per counted unit. */
export interface SustainedWindow {
  warmupSeconds: number;
  seconds: number;
  count: number;
  perSec: number;
  /** What the extra counters counted in the same window, and their per-second rates. */
  also: Record<string, number>;
  alsoPerSec: Record<string, number>;
  cpuSeconds: PerProcess;
  /** CPU µs per counted unit, per process and summed; null when nothing was counted (the load stalled). */
  cpuMicrosPer: PerProcess | null;
}

/**
 * Runs the window of a sustained phase whose load the caller has started and keeps on: waits out the warm-up, then
 * reads `count` (what reached the sink so far) and every process's CPU at the window's start and end. The load must
 * not run dry before the end: the caller bounds it in count as well as time, and says so when it did.
 */
export async function sustainedWindow(
  p: PhaseLengths,
  sampler: ProcessSampler,
  count: () => number | Promise<number>,
  extra: Record<string, () => number | Promise<number>> = {},
): Promise<SustainedWindow> {
  await sleep(p.warmupSeconds * 1000);
  const readExtra = async () => Object.fromEntries(await Promise.all(Object.entries(extra).map(async ([k, f]) => [k, await f()] as const)));
  const c0 = await count();
  const e0 = await readExtra();
  const m0 = sampler.mark();
  await sleep(p.seconds * 1000);
  const c1 = await count();
  const e1 = await readExtra();
  const m1 = sampler.mark();
  const ms = m1.atMs - m0.atMs;
  const n = c1 - c0;
  return {
    warmupSeconds: p.warmupSeconds,
    seconds: Number((ms / 1000).toFixed(2)),
    count: n,
    perSec: rate(n, ms),
    also: Object.fromEntries(Object.keys(extra).map((k) => [k, (e1[k] ?? 0) - (e0[k] ?? 0)])),
    alsoPerSec: Object.fromEntries(Object.keys(extra).map((k) => [k, rate((e1[k] ?? 0) - (e0[k] ?? 0), ms)])),
    cpuSeconds: sampler.cpuSeconds(m0, m1),
    cpuMicrosPer: n > 0 ? sampler.cpuMicrosPerEvent(n, m0, m1) : null,
  };
}

/** The median (the mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * POSTs a JSON body to 127.0.0.1 over a keep-alive agent as a Connect unary call would (connect-protocol-version 1);
 * resolves to the HTTP status or the error's code, never rejects, so a load loop counts outcomes instead of catching.
 */
export function postJson(
  agent: Agent,
  target: { port: number; path: string; headers?: Record<string, string> },
  body: string,
  timeoutMs: number,
): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: target.port,
        path: target.path,
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "connect-protocol-version": "1",
          "content-length": Buffer.byteLength(body),
          ...target.headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
        res.once("error", (err) => resolve((err as NodeJS.ErrnoException).code ?? "error"));
      },
    );
    req.once("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.once("error", (err) => resolve((err as NodeJS.ErrnoException).code ?? "error"));
    req.end(body);
  });
}

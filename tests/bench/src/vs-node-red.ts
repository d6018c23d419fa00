/**
 * npm run bench:vs-node-red — Meridian against Node-RED on Node-RED's own job, in one run, alternating the two.
 *
 * The job: a client (this process; node:http keep-alive) POSTs batches of 100 events (10 devices × 4 points: 2 doubles,
 * an int64, a bool) as the Connect JSON of `PublishRequest`, the same body to both, and every value must reach the OMF
 * emulator (its own process, PI Web API mode: Basic auth, OMF 1.2). The emulator logs when each value arrived
 * (OMF_EMULATOR_RECORD_ARRIVALS); each event's observed time is its send time (to 100 ns, made unique per event), so
 * arrival − index is send → in the sink, and arrivals are counted per event against what the client was answered 2xx.
 * The sink stamps arrivals on its own clock; the difference to this process's, probed after each phase
 * (clock-offset.ts), is taken out and shown per round (`sinkClockOffsetMs`).
 *  - Meridian: nats-server, gateway and omf-sender as their own processes; an OMF route created through the gateway's
 *    RouteService; the client calls the gateway's `Publish` with an API key (auth on, as deployed).
 *  - Meridian on a cluster (BENCH_VS_CLUSTER, 1; 0 skips it): the same on three nats-server processes routed into one
 *    JetStream cluster, R3 stream and KV, every service given all three URLs — the production shape, beside the single node.
 *  - Node-RED (node_modules/node-red, headless with tests/bench/node-red/settings.cjs, a throwaway --userDir, flow
 *    tests/bench/node-red/flow.json, core nodes only): http in → function (OMF data per container, omf-sender's type
 *    and container ids) → http request (Basic auth, the OMF headers) → function → http response after the sink's 2xx.
 *  The type and the 10 containers are created once at the start by the bench, the same for both.
 *
 * Per round and system (each round starts with another system):
 *  1. throughput: BENCH_VS_CONCURRENCY (32) requests in flight, BENCH_VS_WARMUP_SECONDS (5) then BENCH_VS_SECONDS (30)
 *     measured: events/s into the sink (arrivals in the window), CPU µs per event of each process over the window;
 *  2. latency: BENCH_VS_RATE (5000) events/s at a fixed rate, BENCH_VS_WARMUP_SECONDS then BENCH_VS_LATENCY_SECONDS
 *     (30): p50 / p99 / p99.9 send → in the sink of the events sent after the warm-up, and send → answered (for
 *     Meridian: stored by JetStream; the rest of send → in the sink is what the bus and omf-sender add), and CPU µs per
 *     event of each process at that rate (what an event costs when the system is not saturated);
 *  3. sink down: the same fixed rate for BENCH_VS_OUTAGE_MARGIN_SECONDS (10), then the emulator drops every OMF
 *     request (reads it, closes the connection, stores nothing) for BENCH_VS_OUTAGE_SECONDS (10), then the margin
 *     again: events answered 2xx that never arrived (lost), arrived twice (duplicated), refused (non-2xx, errors,
 *     timeouts after BENCH_VS_REQUEST_TIMEOUT_MS), and how long after the sink came back everything sent before arrived.
 *  After each phase the bench waits until every event answered 2xx arrived (at most BENCH_VS_DRAIN_SECONDS, 120), so
 *  lost and duplicated are counts, not estimates. Reported: the median of the BENCH_VS_ROUNDS (3) rounds, each round's
 *  figures, idle RSS (before any load) and peak RSS (sampled every 250 ms over the run) per process, the raw bus
 *  figure of the same run on its own nats-server (BENCH_VS_RAW_MESSAGES, 30000) as the yardstick, and Meridian/Node-RED
 *  ratios. Appended to tests/bench/results/vs-node-red.jsonl (BENCH_RESULTS_DIR elsewhere for a trial).
 * BENCH_VS_OMF_COMPRESSION (1): 0 has omf-sender send OMF bodies plain, as Node-RED's flow does (gzip is its default).
 * Smoke run: BENCH_VS_ROUNDS=1 BENCH_VS_WARMUP_SECONDS=1 BENCH_VS_SECONDS=3 BENCH_VS_LATENCY_SECONDS=3
 *            BENCH_VS_OUTAGE_MARGIN_SECONDS=2 BENCH_VS_OUTAGE_SECONDS=3 BENCH_RESULTS_DIR=/tmp/bench-results
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Bus, consumerBacklog, routeConsumerName, STREAMS } from "@meridian/bus";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { containerIdFor, typeForShape } from "@meridian/omf-sender/platform";
import { freePort, startNatsCluster, startNatsServer, TEST_KEYS } from "@meridian/testing";
import { pino } from "pino";
import { measureClockOffset } from "./clock-offset.js";
import { envNumber, median, percentile, postJson } from "./common.js";
import { PauseWindow } from "./pauses.js";
import { callGateway, natsPid, REPO_ROOT, type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { type PerProcess, type ProcessMark, ProcessSampler } from "./sampler.js";

const WARMUP_SECONDS = envNumber("BENCH_VS_WARMUP_SECONDS", 5, 0, 600);
const SECONDS = envNumber("BENCH_VS_SECONDS", 30, 1, 3600);
const ROUNDS = Math.round(envNumber("BENCH_VS_ROUNDS", 3, 1, 20));
const CONCURRENCY = Math.round(envNumber("BENCH_VS_CONCURRENCY", 32, 1, 1024));
const RATE = envNumber("BENCH_VS_RATE", 5000, 100, 1_000_000);
const LATENCY_SECONDS = envNumber("BENCH_VS_LATENCY_SECONDS", 30, 1, 3600);
const OUTAGE_SECONDS = envNumber("BENCH_VS_OUTAGE_SECONDS", 10, 1, 600);
const OUTAGE_MARGIN_SECONDS = envNumber("BENCH_VS_OUTAGE_MARGIN_SECONDS", 10, 1, 600);
const DRAIN_SECONDS = envNumber("BENCH_VS_DRAIN_SECONDS", 120, 5, 3600);
/** 1 (default): Meridian also runs on a 3-node JetStream cluster (R3), beside the single node; 0 skips it. */
const CLUSTER = envNumber("BENCH_VS_CLUSTER", 1, 0, 1) === 1;
const RAW_MESSAGES = Math.round(envNumber("BENCH_VS_RAW_MESSAGES", 30_000, 1000, 10_000_000));
const REQUEST_TIMEOUT_MS = Math.round(envNumber("BENCH_VS_REQUEST_TIMEOUT_MS", 30_000, 1000, 600_000));
/**
 * omf-sender gzips OMF bodies by default (the endpoint's `compression`); Node-RED's flow sends them plain. 0 declares the
 * bench's endpoint with `compression: false`, the same work as Node-RED's on this loopback.
 */
const OMF_COMPRESSION = envNumber("BENCH_VS_OMF_COMPRESSION", 1, 0, 1) === 1;

const DEVICES = 10;
const EVENTS_PER_REQUEST = 100;
const CONNECTION = "vsnr";
const ROUTE_ID = "vs-node-red";
const PUBLISH_PATH = "/meridian.telemetry.v1.TelemetryService/Publish";
const PI_USER = { username: "meridian", password: "meridian" };
/** The points of the job, as omf-sender sees them: their shape gives the type id both systems write into. */
const SHAPE = [
  { name: "pressure", kind: "double" },
  { name: "temperature", kind: "double" },
  { name: "cycle_count", kind: "int" },
  { name: "running", kind: "bool" },
] as const;
const logger = pino({ level: "warn" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- time: send times as event indexes, to 100 ns ("ticks"), relative to the run's start so they stay exact numbers

/** Epoch ms with sub-ms precision, taken the way the emulator stamps arrivals. */
const nowMs = () => performance.timeOrigin + performance.now();
const EPOCH_MS = Math.floor(nowMs());
const TICKS_PER_MS = 10_000;

/**
 * Hands out index ticks: a request's base is its send time rounded up to a multiple of EVENTS_PER_REQUEST ticks (10 µs),
 * its events base + 0..99, never reused in the run; so an event's tick also says its place j in the request (and device).
 */
class TickClock {
  #next = 0;
  take(count: number): number {
    const now = Math.floor((nowMs() - EPOCH_MS) * TICKS_PER_MS);
    const base = Math.ceil(Math.max(now, this.#next) / EVENTS_PER_REQUEST) * EVENTS_PER_REQUEST;
    this.#next = base + count;
    return base;
  }
}
const clock = new TickClock();
const tickMs = (tick: number) => EPOCH_MS + tick / TICKS_PER_MS;

const secondPrefix = new Map<number, string>();
/** RFC 3339 with 9 fractional digits (what proto JSON writes), 100 ns resolution. */
function tickIso(tick: number): string {
  const ms = EPOCH_MS + Math.floor(tick / TICKS_PER_MS);
  const sec = Math.floor(ms / 1000);
  let prefix = secondPrefix.get(sec);
  if (prefix === undefined) {
    prefix = new Date(sec * 1000).toISOString().slice(0, 19);
    secondPrefix.set(sec, prefix);
  }
  const frac = (ms - sec * 1000) * TICKS_PER_MS + (tick % TICKS_PER_MS);
  return `${prefix}.${String(frac).padStart(7, "0")}00Z`;
}

const secondMs = new Map<string, number>();
/** The emulator's index key (`YYYY-MM-DDThh:mm:ss.fffffffZ`) back to the tick it was sent as. */
function keyTick(key: string): number {
  const prefix = key.slice(0, 19);
  let ms = secondMs.get(prefix);
  if (ms === undefined) {
    ms = Date.parse(`${prefix}Z`);
    secondMs.set(prefix, ms);
  }
  return (ms - EPOCH_MS) * TICKS_PER_MS + Number(key.slice(20, 27));
}

// ---- the client

let eventCounter = 0;
/** One request of the job: event j is device j % 10; the body is the same for both systems. */
function publishBody(base: number): string {
  const parts: string[] = [];
  for (let j = 0; j < EVENTS_PER_REQUEST; j++) {
    const n = eventCounter++;
    parts.push(
      `{"source":{"platform":"PLATFORM_API","connection":"${CONNECTION}","device":"dev-${j % DEVICES}"},"observedTime":"${tickIso(base + j)}",` +
        `"points":[{"name":"pressure","doubleValue":${4 + (n % 100) / 100}},{"name":"temperature","doubleValue":${80 + (n % 50) / 10}},` +
        `{"name":"cycle_count","intValue":"${n}"},{"name":"running","boolValue":${n % 7 !== 0}}]}`,
    );
  }
  return `{"events":[${parts.join(",")}]}`;
}

/** Meridian on one nats-server, Meridian on a 3-node cluster (BENCH_VS_CLUSTER), Node-RED. */
type SystemName = "meridian" | "meridianCluster" | "nodeRed";

interface Target {
  name: SystemName;
  port: number;
  headers: Record<string, string>;
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY + 64 });

function post(target: Target, body: string): Promise<number | string> {
  return postJson(agent, { port: target.port, path: PUBLISH_PATH, headers: target.headers }, body, REQUEST_TIMEOUT_MS);
}

/** What the client sent in one phase and what it was answered. */
class Ledger {
  /** Base ticks of the requests answered 2xx (each stands for EVENTS_PER_REQUEST events). */
  readonly acked: number[] = [];
  /** Send → 2xx answer (ms) of each acked request, beside `acked`: Meridian answers once JetStream stored the events. */
  readonly answeredMs: number[] = [];
  readonly refusedBy: Record<string, number> = {};
  refusedEvents = 0;
  inflight = 0;

  async send(target: Target): Promise<void> {
    const base = clock.take(EVENTS_PER_REQUEST);
    this.inflight++;
    const outcome = await post(target, publishBody(base));
    this.inflight--;
    if (typeof outcome === "number" && outcome >= 200 && outcome < 300) {
      this.acked.push(base);
      this.answeredMs.push(nowMs() - tickMs(base));
    } else {
      this.refusedEvents += EVENTS_PER_REQUEST;
      this.refusedBy[String(outcome)] = (this.refusedBy[String(outcome)] ?? 0) + EVENTS_PER_REQUEST;
    }
  }

  get ackedEvents(): number {
    return this.acked.length * EVENTS_PER_REQUEST;
  }
}

/** Sends at a fixed rate (one request every EVENTS_PER_REQUEST / RATE s) until `until`, not waiting for answers. */
async function fixedRate(target: Target, ledger: Ledger, seconds: number, onTick?: (elapsedMs: number) => Promise<void> | void) {
  const intervalMs = (1000 * EVENTS_PER_REQUEST) / RATE;
  const start = performance.now();
  const sends: Promise<void>[] = [];
  let behind = 0;
  for (let k = 0; (k * intervalMs) / 1000 < seconds; k++) {
    const wait = start + k * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -intervalMs) behind++;
    await onTick?.(performance.now() - start);
    sends.push(ledger.send(target));
  }
  await Promise.all(sends);
  return { behind };
}

// ---- the sink

interface Sink {
  url: string;
  port: number;
  proc: ChildProcess;
}

async function startEmulator(): Promise<Sink> {
  const require = createRequire(import.meta.url);
  const main = join(dirname(require.resolve("@meridian/emulator-omf")), "main.js");
  const port = await freePort();
  const proc = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      OMF_EMULATOR_RECORD_ARRIVALS: "true",
      OMF_EMULATOR_PI_USERNAME: PI_USER.username,
      OMF_EMULATOR_PI_PASSWORD: PI_USER.password,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/_emulator/health`)).ok) return { url, port, proc };
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  proc.kill();
  throw new Error("OMF emulator did not start");
}

async function emulatorJson<T>(sink: Sink, path: string, init?: RequestInit): Promise<T> {
  const r = await fetch(`${sink.url}/_emulator/${path}`, init);
  if (!r.ok) throw new Error(`emulator ${init?.method ?? "GET"} ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

async function valuesWritten(sink: Sink): Promise<number> {
  return (await emulatorJson<{ valuesWritten: number }>(sink, "counters")).valuesWritten;
}

/** The type and containers both systems write into, created once, as omf-sender would create them. */
async function createTypeAndContainers(sink: Sink): Promise<{ typeId: string; typeTag: string; containers: string[] }> {
  const mapping = typeForShape(SHAPE, { omfVersion: "1.2", intFormat: "int64" });
  const containers = Array.from({ length: DEVICES }, (_, d) =>
    containerIdFor({ platform: "api", connection: CONNECTION, device: `dev-${d}` }, mapping.typeTag),
  );
  const auth = `Basic ${Buffer.from(`${PI_USER.username}:${PI_USER.password}`).toString("base64")}`;
  const omf = async (messagetype: string, body: unknown) => {
    const r = await fetch(`${sink.url}/piwebapi/omf`, {
      method: "POST",
      headers: {
        authorization: auth,
        "x-requested-with": "XMLHttpRequest",
        messagetype,
        action: "create",
        messageformat: "JSON",
        omfversion: "1.2",
        "content-type": "application/json",
      },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`creating OMF ${messagetype}: ${r.status} ${await r.text()}`);
  };
  await omf("type", [mapping.type]);
  await omf(
    "container",
    // As omf-sender declares them (name `connection/device`): PI refuses a second create that differs (409).
    containers.map((id, d) => ({ id, typeid: mapping.typeId, name: `${CONNECTION}/dev-${d}` })),
  );
  return { typeId: mapping.typeId, typeTag: mapping.typeTag, containers };
}

/** Waits until the sink holds `expected` values written since `before` and nothing more arrives; the time it took. */
async function drain(sink: Sink, before: number, expected: number): Promise<{ drainedMs: number; complete: boolean }> {
  const t0 = performance.now();
  let last = -1;
  let stableSince = performance.now();
  for (;;) {
    const got = (await valuesWritten(sink)) - before;
    if (got !== last) {
      last = got;
      stableSince = performance.now();
    }
    const quiet = performance.now() - stableSince;
    // Complete: everything promised is there and a second passed without more (late duplicates would show in it).
    if (got >= expected && quiet >= 1000) return { drainedMs: Math.round(stableSince - t0), complete: true };
    // A sink's retry back-off may keep it quiet for a while after an outage: only the bound ends the wait.
    if (performance.now() - t0 > DRAIN_SECONDS * 1000) return { drainedMs: Math.round(performance.now() - t0), complete: false };
    await sleep(100);
  }
}

interface Arrived {
  /** Index ticks of every value written, and when each was written (epoch ms, on this process's clock), in order. */
  ticks: Float64Array;
  atMs: Float64Array;
  /** The sink's clock minus this process's (subtracted from its arrival times), and the probe's round trip. */
  sinkClock: { offsetMs: number; roundTripMs: number };
  /** Values written to a container other than the one of their device. */
  misplaced: number;
}

/** Takes the arrival log and empties it and the stored values, so the next phase starts from nothing. */
async function takeArrivals(sink: Sink, containers: string[]): Promise<Arrived> {
  const doc = await emulatorJson<{ values: number; groups: Array<[number, string, string[]]> }>(sink, "arrivals");
  await emulatorJson(sink, "arrivals", { method: "DELETE" });
  // The sink stamps arrivals on its own clock: moved onto ours, or send → sink carries the difference of the two.
  const sinkClock = await measureClockOffset(async () => (await emulatorJson<{ nowMs: number }>(sink, "arrivals/clock")).nowMs, nowMs);
  const ticks = new Float64Array(doc.values);
  const atMs = new Float64Array(doc.values);
  let i = 0;
  let misplaced = 0;
  const deviceOf = new Map(containers.map((c, d) => [c.toLowerCase(), d]));
  for (const [at, container, keys] of doc.groups) {
    const device = deviceOf.get(container.toLowerCase());
    for (const key of keys) {
      const tick = keyTick(key);
      ticks[i] = tick;
      atMs[i++] = at - sinkClock.offsetMs;
      // Event j of a request is device j % 10 and its tick is base + j: a value in another container was misrouted.
      if (device === undefined || (tick % EVENTS_PER_REQUEST) % DEVICES !== device) misplaced++;
    }
  }
  return { ticks, atMs, sinkClock, misplaced };
}

/**
 * Every event answered 2xx against what arrived: lost (never arrived), duplicated (arrived more than once), and
 * arrived though its request was refused. Ticks are unique per event in the run, so the check is by tick.
 */
function account(ledger: Ledger, arrived: Arrived) {
  const expected = new Float64Array(ledger.ackedEvents);
  let k = 0;
  for (const base of ledger.acked) for (let j = 0; j < EVENTS_PER_REQUEST; j++) expected[k++] = base + j;
  expected.sort();
  const got = Float64Array.from(arrived.ticks).sort();
  let lost = 0;
  let duplicated = 0;
  let unpromised = 0;
  let i = 0;
  let g = 0;
  while (i < expected.length || g < got.length) {
    if (g >= got.length || (i < expected.length && expected[i]! < got[g]!)) {
      lost++;
      i++;
    } else if (i >= expected.length || got[g]! < expected[i]!) {
      // Arrived, but its request was not answered 2xx (refused, timed out): counted once, its repeats as duplicates.
      unpromised++;
      const t = got[g]!;
      while (++g < got.length && got[g] === t) duplicated++;
    } else {
      const t = got[g]!;
      i++;
      while (++g < got.length && got[g] === t) duplicated++;
    }
  }
  return { acked: ledger.ackedEvents, arrived: got.length, lost, duplicated, arrivedButRefused: unpromised, misplaced: arrived.misplaced };
}

/** Send → in the sink (ms) of the first arrival of each event whose tick is at or after `fromTick`. */
function latencies(arrived: Arrived, fromTick: number): Float64Array {
  const first = new Map<number, number>();
  for (let i = 0; i < arrived.ticks.length; i++) {
    const t = arrived.ticks[i]!;
    if (t < fromTick) continue;
    const at = arrived.atMs[i]!;
    const seen = first.get(t);
    if (seen === undefined || at < seen) first.set(t, at);
  }
  const out = new Float64Array(first.size);
  let i = 0;
  for (const [t, at] of first) out[i++] = at - tickMs(t);
  return out.sort();
}

/** The slowest send → sink of each second of the phase (by send time): when a tail happens, and whether it repeats. */
function worstBySecond(arrived: Arrived, fromTick: number): number[] {
  const worst: number[] = [];
  const t0 = tickMs(fromTick);
  for (let i = 0; i < arrived.ticks.length; i++) {
    const t = arrived.ticks[i]!;
    if (t < fromTick) continue;
    const sec = Math.floor((tickMs(t) - t0) / 1000);
    worst[sec] = Math.max(worst[sec] ?? 0, arrived.atMs[i]! - tickMs(t));
  }
  return Array.from(worst, (w) => Math.round(w ?? 0));
}

const ms = (v: number) => Number(v.toFixed(2));

// ---- the systems

interface System {
  target: Target;
  sampler: ProcessSampler;
  /** Where the events that did not arrive are, said when a drain ends incomplete: to find the cause, not to count. */
  whereUndelivered?(): Promise<Record<string, unknown>>;
  /** Meridian's services' own /metrics, to say what paused them over a phase (pauses.ts). */
  metricsUrls?: Record<string, string>;
  stop(): Promise<void>;
}

/** The drain's outcome, and with an incomplete one what the system says about the events still missing. */
async function drainOrExplain(
  sys: System,
  sink: Sink,
  before: number,
  expected: number,
): Promise<{ drainedMs: number; complete: boolean; undelivered?: Record<string, unknown> }> {
  const d = await drain(sink, before, expected);
  if (d.complete || !sys.whereUndelivered) return d;
  const undelivered = await sys.whereUndelivered().catch((err: Error) => ({ error: err.message }));
  console.error(`${sys.target.name}: drain incomplete after ${DRAIN_SECONDS} s:`, JSON.stringify(undelivered, null, 1));
  return { ...d, undelivered };
}

/**
 * Meridian on one nats-server (file storage, R1: what `docker compose up` runs), or with `cluster` on three routed into
 * one cluster with R3 streams and KV (the production shape: a publish is answered once two of the three stored it).
 */
async function startMeridian(sink: Sink, cluster = false): Promise<System> {
  const nats: { urls: string; pids: Record<string, number>; stop(): Promise<void> } = cluster
    ? await startNatsCluster().then((c) => ({
        urls: c.urls.join(","),
        pids: Object.fromEntries(c.nodes.map((n) => [`nats-server ${n.name}`, n.pid!])),
        stop: () => c.stop(),
      }))
    : await startNatsServer().then((n) => ({ urls: n.url, pids: { "nats-server": natsPid(n) }, stop: () => n.stop() }));
  const busEnv: Record<string, string> = cluster ? { NATS_URL: nats.urls, NATS_STREAM_REPLICAS: "3" } : { NATS_URL: nats.urls };
  const procs: RunningProcess[] = [];
  try {
    const dir = mkdtempSync(join(tmpdir(), "bench-vsnr-"));
    const endpointsFile = join(dir, "endpoints.json");
    // Lab endpoint, declared as an operator would: plain http (allowed for the run) and the secret by reference.
    writeFileSync(
      endpointsFile,
      JSON.stringify([
        {
          id: "pi",
          kind: "pi",
          url: `${sink.url}/piwebapi`,
          allowHttp: true,
          username: PI_USER.username,
          password: { env: "OMF_SECRET_BENCH_PI_PASSWORD" },
          ...(OMF_COMPRESSION ? {} : { compression: false }),
        },
      ]),
    );
    const omfPort = await freePort();
    const omfUrl = `http://127.0.0.1:${omfPort}`;
    procs.push(
      await startProcess(
        "omf-sender",
        "services/omf-sender",
        {
          PORT: String(omfPort),
          ...busEnv,
          OMF_ENDPOINTS_FILE: endpointsFile,
          OMF_ALLOW_INSECURE_ENDPOINTS: "true",
          OMF_SECRET_BENCH_PI_PASSWORD: PI_USER.password,
        },
        `${omfUrl}/readyz`,
      ),
    );
    const gwPort = await freePort();
    const gwUrl = `http://127.0.0.1:${gwPort}`;
    const gateway = await startProcess(
      "gateway",
      "services/gateway",
      // The per-caller rate limit is lifted: the bench measures the path, not the limit.
      { PORT: String(gwPort), ...busEnv, OMF_SENDER_URL: omfUrl, CALLER_RATE_LIMIT: "1000000", CALLER_RATE_BURST: "1000000" },
      `${gwUrl}/readyz`,
    );
    procs.push(gateway);
    await callGateway(gateway, `${gwUrl}/meridian.route.v1.RouteService/CreateRoute`, TEST_KEYS["routes:admin"], {
      route: { id: ROUTE_ID, source: { connection: CONNECTION }, sink: { platform: "PLATFORM_OMF", target: "pi" } },
    });
    // The route's consumer starts at the next message once omf-sender has made it: publish only from then on.
    const bus = Bus.connect({ servers: nats.urls.split(","), name: "bench-vsnr", logger });
    try {
      await bus.ready;
      const consumer = routeConsumerName(ROUTE_ID, Platform.OMF);
      const deadline = Date.now() + 30_000;
      while (!(await consumerBacklog(bus, consumer))) {
        if (Date.now() > deadline) throw new Error(`omf-sender did not create consumer ${consumer} in 30 s`);
        await sleep(50);
      }
    } finally {
      await bus.close();
    }
    const omf = procs[0] as RunningProcess;
    const sampler = new ProcessSampler({ gateway: gateway.proc.pid!, "omf-sender": omf.proc.pid!, ...nats.pids });
    return {
      target: {
        name: cluster ? "meridianCluster" : "meridian",
        port: gwPort,
        headers: { authorization: `Bearer ${TEST_KEYS["telemetry:publish"]}` },
      },
      sampler,
      metricsUrls: { gateway: `${gwUrl}/metrics`, "omf-sender": `${omfUrl}/metrics` },
      async whereUndelivered() {
        // The route's consumer (how far it got, what it holds unacked or was given again) and what the services said.
        const probe = Bus.connect({ servers: nats.urls.split(","), name: "bench-vsnr-probe", logger });
        try {
          await probe.ready;
          const c = await probe.jsm().consumers.info(STREAMS.telemetry, routeConsumerName(ROUTE_ID, Platform.OMF));
          const stream = await probe.jsm().streams.info(STREAMS.telemetry);
          return {
            streamLastSeq: stream.state.last_seq,
            consumer: {
              delivered: c.delivered.stream_seq,
              ackFloor: c.ack_floor.stream_seq,
              pending: c.num_pending,
              ackPending: c.num_ack_pending,
              redelivered: c.num_redelivered,
              waitingPulls: c.num_waiting,
            },
            omfSenderLog: omf.recentLog().slice(-40),
            gatewayLog: gateway.recentLog().slice(-10),
          };
        } finally {
          await probe.close();
        }
      },
      async stop() {
        sampler.stop();
        for (const p of procs.reverse()) await p.stop();
        await nats.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const p of procs.reverse()) await p.stop();
    await nats.stop();
    throw err;
  }
}

async function startNodeRed(sink: Sink, typeTag: string): Promise<System> {
  const flowFile = join(REPO_ROOT, "tests", "bench", "node-red", "flow.json");
  const flow = JSON.parse(readFileSync(flowFile, "utf8")) as Array<{ id: string; type: string; func?: string }>;
  // The flow writes into omf-sender's containers: its type tag must be the one omf-sender derives for these points.
  const tag = flow.map((n) => /const TYPE_TAG = "([0-9a-f]{8})"/.exec(n.func ?? "")?.[1]).find(Boolean);
  if (tag !== typeTag) throw new Error(`${flowFile}: TYPE_TAG is ${tag}, omf-sender's type tag for the job's points is ${typeTag}`);
  const poster = flow.find((n) => n.type === "http request");
  if (!poster) throw new Error(`${flowFile}: no http request node`);
  const userDir = mkdtempSync(join(tmpdir(), "bench-node-red-"));
  copyFileSync(flowFile, join(userDir, "flows.json"));
  // The http request node's Basic auth, as the editor would store it (plain JSON: settings.cjs has credentialSecret false).
  writeFileSync(join(userDir, "flows_cred.json"), JSON.stringify({ [poster.id]: { user: PI_USER.username, password: PI_USER.password } }));
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      join(REPO_ROOT, "node_modules", "node-red", "red.js"),
      "--settings",
      join(REPO_ROOT, "tests", "bench", "node-red", "settings.cjs"),
      "--userDir",
      userDir,
      "--port",
      String(port),
    ],
    { env: { ...process.env, OMF_EMULATOR_URL: sink.url, NODE_RED_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const keep = (chunk: Buffer) => {
    // Read everything (a full pipe would stall Node-RED), keep the tail for errors.
    output = (output + chunk.toString()).slice(-20_000);
  };
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  const deadline = Date.now() + 60_000;
  while (!output.includes("Started flows")) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill();
      throw new Error(`Node-RED did not start its flows:\n${output}`);
    }
    await sleep(100);
  }
  const sampler = new ProcessSampler({ "node-red": proc.pid! });
  return {
    target: { name: "nodeRed", port, headers: {} },
    sampler,
    async stop() {
      sampler.stop();
      if (proc.exitCode === null)
        await new Promise<void>((resolve) => {
          proc.once("exit", () => resolve());
          proc.kill("SIGTERM");
        });
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

// ---- the phases

async function throughputPhase(sys: System, sink: Sink, containers: string[]) {
  const before = await valuesWritten(sink);
  const ledger = new Ledger();
  let stop = false;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) await ledger.send(sys.target);
  });
  await sleep(WARMUP_SECONDS * 1000);
  const from = sys.sampler.mark();
  const t0 = nowMs();
  await sleep(SECONDS * 1000);
  const t1 = nowMs();
  const to = sys.sampler.mark();
  stop = true;
  await Promise.all(workers);
  const drained = await drainOrExplain(sys, sink, before, ledger.ackedEvents);
  const arrived = await takeArrivals(sink, containers);
  let inWindow = 0;
  for (const at of arrived.atMs) if (at >= t0 && at < t1) inWindow++;
  const seconds = (t1 - t0) / 1000;
  return {
    eventsPerSec: Math.round(inWindow / seconds),
    seconds: Number(seconds.toFixed(2)),
    eventsInWindow: inWindow,
    cpuSeconds: sys.sampler.cpuSeconds(from, to),
    cpuMicrosPerEvent: sys.sampler.cpuMicrosPerEvent(Math.max(1, inWindow), from, to),
    ...account(ledger, arrived),
    refused: ledger.refusedEvents,
    refusedBy: ledger.refusedBy,
    drainedMs: drained.drainedMs,
    drainComplete: drained.complete,
    ...(drained.undelivered ? { undelivered: drained.undelivered } : {}),
  };
}

async function latencyPhase(sys: System, sink: Sink, containers: string[]) {
  const before = await valuesWritten(sink);
  const ledger = new Ledger();
  const pauses = sys.metricsUrls ? await PauseWindow.open(sys.metricsUrls) : undefined;
  let fromTick = Number.POSITIVE_INFINITY;
  let from: ProcessMark | undefined;
  const { behind } = await fixedRate(sys.target, ledger, WARMUP_SECONDS + LATENCY_SECONDS, (elapsed) => {
    if (fromTick === Number.POSITIVE_INFINITY && elapsed >= WARMUP_SECONDS * 1000) {
      fromTick = clock.take(0);
      from = sys.sampler.mark();
    }
  });
  const to = sys.sampler.mark();
  const paused = await pauses?.close();
  const drained = await drainOrExplain(sys, sink, before, ledger.ackedEvents);
  const arrived = await takeArrivals(sink, containers);
  const lat = Array.from(latencies(arrived, fromTick));
  // Send → answered: for Meridian the gateway's part (decode, JetStream stored); send → in the sink minus this is what
  // the bus and omf-sender add after the client already has its answer. For Node-RED the answer follows the sink's 2xx.
  // Per request (each of EVENTS_PER_REQUEST events).
  const answered = ledger.answeredMs.filter((_, i) => ledger.acked[i]! >= fromTick).sort((a, b) => a - b);
  return {
    rateEventsPerSec: RATE,
    seconds: LATENCY_SECONDS,
    measured: lat.length,
    ticksBehindSchedule: behind,
    p50Ms: ms(percentile(lat, 50)),
    p99Ms: ms(percentile(lat, 99)),
    p999Ms: ms(percentile(lat, 99.9)),
    maxMs: ms(lat.at(-1) ?? 0),
    answeredP50Ms: ms(percentile(answered, 50)),
    answeredP99Ms: ms(percentile(answered, 99)),
    // Already taken out of the figures above; shown so that a run whose clocks disagreed can be seen.
    sinkClockOffsetMs: ms(arrived.sinkClock.offsetMs),
    sinkClockRoundTripMs: ms(arrived.sinkClock.roundTripMs),
    // The cost of an event when the system is not saturated (fixed overheads per request and per send show here).
    cpuMicrosPerEvent: sys.sampler.cpuMicrosPerEvent(Math.max(1, answered.length * EVENTS_PER_REQUEST), from, to),
    worstMsBySecond: worstBySecond(arrived, fromTick),
    ...(paused ? { pausesPerProcess: paused } : {}),
    ...account(ledger, arrived),
    refused: ledger.refusedEvents,
    refusedBy: ledger.refusedBy,
    drainComplete: drained.complete,
    ...(drained.undelivered ? { undelivered: drained.undelivered } : {}),
  };
}

async function outagePhase(sys: System, sink: Sink, containers: string[]) {
  const before = await valuesWritten(sink);
  const ledger = new Ledger();
  let state: "before" | "down" | "after" = "before";
  let downAtMs = 0;
  let upAtMs = 0;
  let upTick = 0;
  await fixedRate(sys.target, ledger, 2 * OUTAGE_MARGIN_SECONDS + OUTAGE_SECONDS, async (elapsed) => {
    if (state === "before" && elapsed >= OUTAGE_MARGIN_SECONDS * 1000) {
      state = "down";
      // Every OMF request is read, its connection closed unanswered, nothing stored: the sink is down.
      await emulatorJson(sink, "faults", { method: "POST", body: JSON.stringify({ dropConnections: Number.MAX_SAFE_INTEGER }) });
      downAtMs = nowMs();
    } else if (state === "down" && elapsed >= (OUTAGE_MARGIN_SECONDS + OUTAGE_SECONDS) * 1000) {
      state = "after";
      await emulatorJson(sink, "faults", { method: "DELETE" });
      upAtMs = nowMs();
      upTick = clock.take(0);
    }
  });
  const drained = await drainOrExplain(sys, sink, before, ledger.ackedEvents);
  const arrived = await takeArrivals(sink, containers);
  // Caught up: when the last event sent before the sink came back arrived, counted from its return.
  let lastOfBacklog = upAtMs;
  for (let i = 0; i < arrived.ticks.length; i++)
    if (arrived.ticks[i]! < upTick && arrived.atMs[i]! > lastOfBacklog) lastOfBacklog = arrived.atMs[i]!;
  return {
    rateEventsPerSec: RATE,
    downSeconds: Number(((upAtMs - downAtMs) / 1000).toFixed(2)),
    sent: ledger.ackedEvents + ledger.refusedEvents,
    ...account(ledger, arrived),
    refused: ledger.refusedEvents,
    refusedBy: ledger.refusedBy,
    caughtUpSecondsAfterSinkReturned: Number(((lastOfBacklog - upAtMs) / 1000).toFixed(2)),
    drainedMs: drained.drainedMs,
    drainComplete: drained.complete,
    ...(drained.undelivered ? { undelivered: drained.undelivered } : {}),
  };
}

// ---- figures

function medianPerProcess(xs: PerProcess[]): PerProcess {
  const perProcess: Record<string, number> = {};
  for (const name of Object.keys(xs[0]?.perProcess ?? {})) perProcess[name] = ms(median(xs.map((x) => x.perProcess[name]!)));
  return { perProcess, total: ms(median(xs.map((x) => x.total))) };
}

type Round = {
  throughput: Awaited<ReturnType<typeof throughputPhase>>;
  latency: Awaited<ReturnType<typeof latencyPhase>>;
  outage: Awaited<ReturnType<typeof outagePhase>>;
};

function summary(sys: System, rounds: Round[]) {
  const sum = (f: (r: Round) => number) => rounds.reduce((n, r) => n + f(r), 0);
  return {
    eventsPerSec: Math.round(median(rounds.map((r) => r.throughput.eventsPerSec))),
    cpuMicrosPerEvent: medianPerProcess(rounds.map((r) => r.throughput.cpuMicrosPerEvent)),
    idleRssMiB: sys.sampler.idleRssMiB(),
    peakRssMiB: sys.sampler.peakRssMiB(),
    latencyAtFixedRate: {
      rateEventsPerSec: RATE,
      p50Ms: ms(median(rounds.map((r) => r.latency.p50Ms))),
      p99Ms: ms(median(rounds.map((r) => r.latency.p99Ms))),
      p999Ms: ms(median(rounds.map((r) => r.latency.p999Ms))),
      answeredP50Ms: ms(median(rounds.map((r) => r.latency.answeredP50Ms))),
      answeredP99Ms: ms(median(rounds.map((r) => r.latency.answeredP99Ms))),
      cpuMicrosPerEvent: medianPerProcess(rounds.map((r) => r.latency.cpuMicrosPerEvent)),
    },
    sinkDown: {
      downSeconds: OUTAGE_SECONDS,
      rateEventsPerSec: RATE,
      sent: median(rounds.map((r) => r.outage.sent)),
      refused: median(rounds.map((r) => r.outage.refused)),
      lost: median(rounds.map((r) => r.outage.lost)),
      duplicated: median(rounds.map((r) => r.outage.duplicated)),
      caughtUpSecondsAfterSinkReturned: ms(median(rounds.map((r) => r.outage.caughtUpSecondsAfterSinkReturned))),
    },
    /** Over every phase of every round: each event answered 2xx arrived exactly once when lost and duplicated are 0. */
    everyEvent: {
      acked: sum((r) => r.throughput.acked + r.latency.acked + r.outage.acked),
      lost: sum((r) => r.throughput.lost + r.latency.lost + r.outage.lost),
      duplicated: sum((r) => r.throughput.duplicated + r.latency.duplicated + r.outage.duplicated),
      refused: sum((r) => r.throughput.refused + r.latency.refused + r.outage.refused),
      arrivedButRefused: sum((r) => r.throughput.arrivedButRefused + r.latency.arrivedButRefused + r.outage.arrivedButRefused),
      misplaced: sum((r) => r.throughput.misplaced + r.latency.misplaced + r.outage.misplaced),
      drainsIncomplete: sum(
        (r) => Number(!r.throughput.drainComplete) + Number(!r.latency.drainComplete) + Number(!r.outage.drainComplete),
      ),
    },
    rounds,
  };
}

const ratio = (a: number, b: number) => (b === 0 ? null : Number((a / b).toFixed(3)));

async function main() {
  // Yardstick first, on its own nats-server, so the systems' processes carry none of its load.
  const rawNats = await startNatsServer();
  let rawBus: Awaited<ReturnType<typeof measureRawBus>>;
  const rawBusConn = Bus.connect({ servers: rawNats.url, name: "bench-vsnr-raw", logger });
  try {
    await rawBusConn.ready;
    rawBus = await measureRawBus(rawBusConn, RAW_MESSAGES, logger);
  } finally {
    await rawBusConn.close();
    await rawNats.stop();
  }

  const sink = await startEmulator();
  const systems: System[] = [];
  try {
    const { typeId, typeTag, containers } = await createTypeAndContainers(sink);
    const meridian = await startMeridian(sink);
    systems.push(meridian);
    const meridianCluster = CLUSTER ? await startMeridian(sink, true) : undefined;
    if (meridianCluster) systems.push(meridianCluster);
    const nodeRed = await startNodeRed(sink, typeTag);
    systems.push(nodeRed);
    // Idle RSS now, before any load; peaks from here on.
    for (const sys of systems) sys.sampler.start();
    const rounds: Record<SystemName, Round[]> = { meridian: [], meridianCluster: [], nodeRed: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Each round in another order, so that no system always runs on the machine as the one before left it.
      const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
      for (const sys of order) {
        const throughput = await throughputPhase(sys, sink, containers);
        const latency = await latencyPhase(sys, sink, containers);
        const outage = await outagePhase(sys, sink, containers);
        rounds[sys.target.name].push({ throughput, latency, outage });
        console.error(
          `round ${r + 1}/${ROUNDS} ${sys.target.name}: ${throughput.eventsPerSec} events/s, ${throughput.cpuMicrosPerEvent.total} µs CPU/event, ` +
            `p99 ${latency.p99Ms} ms, sink down: ${outage.refused} refused, ${outage.lost} lost`,
        );
      }
    }
    const m = summary(meridian, rounds.meridian);
    const c = meridianCluster ? summary(meridianCluster, rounds.meridianCluster) : undefined;
    const n = summary(nodeRed, rounds.nodeRed);
    appendResult("vs-node-red", {
      setup: {
        job: `${EVENTS_PER_REQUEST} events per POST (${DEVICES} devices × 4 points: 2 doubles, an int64, a bool), Connect JSON PublishRequest to both`,
        client: `this process, node:http keep-alive; throughput: ${CONCURRENCY} requests in flight`,
        sink: "emulator-omf in its own process, PI Web API mode (Basic auth, OMF 1.2, create mode insert), arrivals recorded",
        meridian:
          "gateway (API key auth) → nats-server (JetStream, file storage) → omf-sender, each its own process; route via RouteService",
        meridianCluster: CLUSTER
          ? "the same, on 3 nats-server processes routed into one cluster (R3 stream and KV; NATS_URL lists all three)"
          : "not run (BENCH_VS_CLUSTER=0)",
        nodeRed: "node-red 5 headless, tests/bench/node-red/flow.json (http in → function → http request → function → http response)",
        typeId,
        sinkDown: `the emulator drops every OMF request for ${OUTAGE_SECONDS} s in the middle of ${2 * OUTAGE_MARGIN_SECONDS + OUTAGE_SECONDS} s at the fixed rate`,
      },
      settings: {
        warmupSeconds: WARMUP_SECONDS,
        seconds: SECONDS,
        rounds: ROUNDS,
        concurrency: CONCURRENCY,
        rateEventsPerSec: RATE,
        latencySeconds: LATENCY_SECONDS,
        outageSeconds: OUTAGE_SECONDS,
        outageMarginSeconds: OUTAGE_MARGIN_SECONDS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        omfCompression: OMF_COMPRESSION,
      },
      rawBus,
      ratios: {
        note: "Meridian / Node-RED, medians of the rounds",
        eventsPerSec: ratio(m.eventsPerSec, n.eventsPerSec),
        eventsPerSecToRawBusConsume: {
          meridian: ratio(m.eventsPerSec, rawBus.consumeAckPerSec),
          nodeRed: ratio(n.eventsPerSec, rawBus.consumeAckPerSec),
        },
        cpuMicrosPerEvent: ratio(m.cpuMicrosPerEvent.total, n.cpuMicrosPerEvent.total),
        cpuMicrosPerEventAtFixedRate: ratio(m.latencyAtFixedRate.cpuMicrosPerEvent.total, n.latencyAtFixedRate.cpuMicrosPerEvent.total),
        idleRssMiB: ratio(m.idleRssMiB.total, n.idleRssMiB.total),
        peakRssMiB: ratio(m.peakRssMiB.total, n.peakRssMiB.total),
        p50: ratio(m.latencyAtFixedRate.p50Ms, n.latencyAtFixedRate.p50Ms),
        p99: ratio(m.latencyAtFixedRate.p99Ms, n.latencyAtFixedRate.p99Ms),
        p999: ratio(m.latencyAtFixedRate.p999Ms, n.latencyAtFixedRate.p999Ms),
      },
      clusterRatios: c && {
        note: "Meridian on the 3-node cluster (R3) / Meridian on one node, medians of the rounds",
        eventsPerSec: ratio(c.eventsPerSec, m.eventsPerSec),
        cpuMicrosPerEvent: ratio(c.cpuMicrosPerEvent.total, m.cpuMicrosPerEvent.total),
        peakRssMiB: ratio(c.peakRssMiB.total, m.peakRssMiB.total),
        p50: ratio(c.latencyAtFixedRate.p50Ms, m.latencyAtFixedRate.p50Ms),
        p99: ratio(c.latencyAtFixedRate.p99Ms, m.latencyAtFixedRate.p99Ms),
      },
      meridian: m,
      meridianCluster: c,
      nodeRed: n,
    });
    for (const [name, x] of [
      ["Meridian", m],
      ["Meridian on the cluster", c],
    ] as const)
      if (x && (x.everyEvent.lost > 0 || x.everyEvent.duplicated > 0))
        console.error(`${name} did not deliver every event exactly once: ${x.everyEvent.lost} lost, ${x.everyEvent.duplicated} duplicated`);
  } finally {
    for (const s of systems.reverse()) await s.stop();
    sink.proc.kill();
    agent.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

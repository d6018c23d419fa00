/**
 * npm run bench:omf — events from the bus through omf-sender into the OMF emulator (PI Web API profile, Basic auth), on
 * a throwaway nats-server. omf-sender runs as deployed, its own process (dist/main.js); the emulator and nats-server are
 * processes of their own; the publisher is this process. Appends one JSON object to tests/bench/results/omf.jsonl and
 * prints it:
 *  - rawBus: the raw bus figure of the same run (raw-bus.ts), the yardstick;
 *  - throughput: an OMF route drains what this process keeps publishing (calls of 100 events of 10 devices, at most
 *    BENCH_OMF_BACKLOG events ahead of the emulator) for BENCH_OMF_SECONDS (else BENCH_SECONDS, 30) after
 *    BENCH_OMF_WARMUP_SECONDS (else BENCH_WARMUP_SECONDS, 5); counted as the emulator stores them; CPU µs per event of
 *    omf-sender, nats-server, the emulator and this process; RSS idle (before any load) and peak; afterwards every
 *    published event must be in the emulator (lost: 0), or the bench fails;
 *  - latency: publish → visible in the emulator's read-back (polled every 5 ms), at BENCH_OMF_RATE (5 000) events/s
 *    for BENCH_OMF_LATENCY_SECONDS (else the phase's seconds), with the CPU µs per event of each process at that rate.
 * Bounded: BENCH_OMF_MAX_EVENTS (20 000 000) events in the throughput phase; each drain gives up after 120 s.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Bus, consumerBacklog, routeBucket, routeConsumerName } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { freePort, startNatsServer } from "@meridian/testing";
import { pino } from "pino";
import { envNumber, fullLength, percentile, phaseLengths, sampleEvent, sustainedWindow } from "./common.js";
import { BENCH_PROCESS, natsPid, type RunningProcess, startProcess } from "./processes.js";
import { sustainRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { ProcessSampler } from "./sampler.js";

const PHASE = phaseLengths("OMF");
const MAX_EVENTS = envNumber("BENCH_OMF_MAX_EVENTS", 20_000_000, 1000, 1e9);
const BACKLOG = envNumber("BENCH_OMF_BACKLOG", 20_000, 100, 1_000_000);
const DEVICES = 10;
/** Events per publishEvents call: the shape, 100 events of 10 devices. */
const EVENTS_PER_CALL = 100;
/** publishEvents calls in flight, so that the publisher is not what limits the route. */
const PUBLISH_CONCURRENCY = 4;
const RATE = envNumber("BENCH_OMF_RATE", 5000, 100, 100_000);
const LATENCY_SECONDS = envNumber("BENCH_OMF_LATENCY_SECONDS", PHASE.seconds, 1, 3600);
/** Latency phase: publish every TICK_MS, RATE × TICK_MS / 1000 events per tick. */
const TICK_MS = 10;
const POLL_MS = 5;
const DRAIN_MS = 120_000;
const logger = pino({ level: "warn" });
async function startEmulatorProcess(): Promise<{ url: string; proc: ChildProcess }> {
  const require = createRequire(import.meta.url);
  const main = join(dirname(require.resolve("@meridian/emulator-omf")), "main.js");
  const port = await freePort();
  const proc = spawn(process.execPath, [main], {
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", OMF_EMULATOR_PI_CREATE_MODE: "insert" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/_emulator/health`)).ok) return { url, proc };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error("OMF emulator did not start");
}

type Containers = Record<string, { valueCount: number }>;
async function piContainers(url: string): Promise<Containers> {
  const r = await fetch(`${url}/_emulator/state?scope=pi&values=false`);
  return ((await r.json()) as { scopes: { pi: { containers: Containers } } }).scopes.pi.containers;
}
function sum(cs: Containers, prefix: string): number {
  let n = 0;
  for (const [id, c] of Object.entries(cs)) if (id.startsWith(prefix)) n += c.valueCount;
  return n;
}

async function counters(url: string) {
  return (await (await fetch(`${url}/_emulator/counters`)).json()) as { omfRequests: number; valuesWritten: number; bytesReceived: number };
}

function events(connection: string, from: number, count: number, at?: number): TelemetryEvent[] {
  return Array.from({ length: count }, (_, k) => {
    const n = from + k;
    const e = sampleEvent(n, `dev-${n % DEVICES}`, connection);
    if (at !== undefined) e.receivedTime = timestampFromDate(new Date(at));
    return e;
  });
}

async function main() {
  const nats = await startNatsServer();
  const emu = await startEmulatorProcess();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  // Lab endpoint, declared as an operator would: plain http (allowed for the run) and the secret by reference.
  const endpointsFile = join(mkdtempSync(join(tmpdir(), "bench-omf-")), "endpoints.json");
  writeFileSync(
    endpointsFile,
    JSON.stringify([
      {
        id: "pi",
        kind: "pi",
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        password: { env: "OMF_SECRET_BENCH_PI_PASSWORD" },
      },
    ]),
  );
  const senderPort = await freePort();
  let sender: RunningProcess | undefined;
  try {
    await bus.ready;
    sender = await startProcess(
      "omf-sender",
      "services/omf-sender",
      {
        PORT: String(senderPort),
        NATS_URL: nats.url,
        OMF_ENDPOINTS_FILE: endpointsFile,
        OMF_ALLOW_INSECURE_ENDPOINTS: "true",
        OMF_SECRET_BENCH_PI_PASSWORD: "meridian",
      },
      `http://127.0.0.1:${senderPort}/readyz`,
    );
    const pids = {
      "omf-sender": sender.proc.pid!,
      "nats-server": natsPid(nats),
      "omf-emulator": emu.proc.pid!,
      [BENCH_PROCESS]: process.pid,
    };
    const sampler = new ProcessSampler(pids).start();
    const idleRssMiB = sampler.idleRssMiB();
    const rawSampler = new ProcessSampler({ "nats-server": pids["nats-server"], [BENCH_PROCESS]: process.pid }).start();
    const rawBus = await sustainRawBus(bus, PHASE, rawSampler, logger);
    rawSampler.stop();

    // 1. Throughput: the route first, then the load; the publisher stays BACKLOG events ahead of the emulator.
    await routeBucket(bus).put(
      "bench-tput",
      create(RouteSchema, { id: "bench-tput", source: { connection: "tput" }, sink: { platform: Platform.OMF, target: "pi" } }),
    );
    await waitForConsumer(bus, "bench-tput");
    let delivered = 0;
    const deliveredNow = async () => (delivered = sum(await piContainers(emu.url), "api.tput."));
    let published = 0;
    let publishing = true;
    const polling = (async () => {
      while (publishing) {
        await deliveredNow();
        await sleep(100);
      }
    })();
    let nextEvent = 0;
    const publisher = async () => {
      while (publishing && nextEvent < MAX_EVENTS) {
        if (nextEvent - delivered >= BACKLOG) {
          await sleep(5);
          continue;
        }
        const from = nextEvent;
        nextEvent += EVENTS_PER_CALL;
        await bus.publishEvents(events("tput", from, EVENTS_PER_CALL));
        published += EVENTS_PER_CALL;
      }
    };
    const before = await counters(emu.url);
    sampler.resetPeak();
    const publishers = Array.from({ length: PUBLISH_CONCURRENCY }, publisher);
    const w = await sustainedWindow(PHASE, sampler, deliveredNow, { published: () => published });
    const peakRssMiB = sampler.peakRssMiB();
    publishing = false;
    await Promise.all(publishers);
    await polling;
    if (nextEvent >= MAX_EVENTS) throw new Error(`omf: the publisher reached BENCH_OMF_MAX_EVENTS (${MAX_EVENTS}) before the window ended`);
    // Ack-after-sink: everything published must reach the emulator, once.
    const drainUntil = performance.now() + DRAIN_MS;
    while ((await deliveredNow()) < published && performance.now() < drainUntil) await sleep(50);
    await sleep(500);
    await deliveredNow();
    const after = await counters(emu.url);
    if (delivered !== published) throw new Error(`omf: ${published} events published, ${delivered} in the emulator after the drain`);
    const requests = after.omfRequests - before.omfRequests;

    // 2. Latency at a fixed rate: publish time per (container, index); visible when the container's count covers it.
    await routeBucket(bus).put(
      "bench-lat",
      create(RouteSchema, { id: "bench-lat", source: { connection: "lat" }, sink: { platform: Platform.OMF, target: "pi" } }),
    );
    await waitForConsumer(bus, "bench-lat");
    const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
    const ticks = Math.round((LATENCY_SECONDS * 1000) / TICK_MS);
    const publishedAt = new Map<string, number[]>(); // device → publish times in order
    const seen = new Map<string, number>(); // device → values already attributed
    const latencies: number[] = [];
    let latPolling = true;
    const poller = (async () => {
      while (latPolling) {
        const cs = await piContainers(emu.url);
        const now = performance.now();
        for (const [id, c] of Object.entries(cs)) {
          if (!id.startsWith("api.lat.")) continue;
          const device = id.split(".")[2]!;
          const times = publishedAt.get(device) ?? [];
          let k = seen.get(device) ?? 0;
          for (; k < c.valueCount && k < times.length; k++) latencies.push(now - times[k]!);
          seen.set(device, k);
        }
        await sleep(POLL_MS);
      }
    })();
    const latMark = sampler.mark();
    const start = performance.now();
    let sentLat = 0;
    let behind = 0;
    for (let t = 0; t < ticks; t++) {
      const wait = start + t * TICK_MS - performance.now();
      if (wait > 0) await sleep(wait);
      else behind++;
      const batch = events("lat", sentLat, perTick);
      const at = performance.now();
      for (const e of batch) {
        const d = e.source!.device;
        let list = publishedAt.get(d);
        if (!list) {
          list = [];
          publishedAt.set(d, list);
        }
        list.push(at);
      }
      void bus.publishEvents(batch);
      sentLat += perTick;
    }
    const publishSeconds = (performance.now() - start) / 1000;
    const drainStart = performance.now();
    while (latencies.length < sentLat && performance.now() - drainStart < 30_000) await sleep(20);
    const latCpu = sampler.cpuMicrosPerEvent(sentLat, latMark);
    latPolling = false;
    await poller;
    latencies.sort((a, b) => a - b);
    sampler.stop();

    appendResult("omf", {
      fullLength: fullLength(PHASE),
      setup: {
        natsServer: "nats-server single node, file storage, loopback, its own process",
        emulator: "emulator-omf in its own Node process, PI Web API profile, plain http, Basic auth, gzip on",
        omfSender: "its own process (dist/main.js), settings at their defaults",
        publisher: `this process: Bus.publishEvents, ${EVENTS_PER_CALL} events of ${DEVICES} devices per call, ${PUBLISH_CONCURRENCY} calls in flight`,
        eventBytes: "≈300 (4 points, 2 attributes)",
      },
      rawBus,
      throughput: {
        warmupSeconds: w.warmupSeconds,
        seconds: w.seconds,
        events: w.count,
        eventsPerSec: w.perSec,
        publishedPerSec: w.alsoPerSec.published,
        backlogCap: BACKLOG,
        cpuMicrosPerEvent: w.cpuMicrosPer,
        cpuSeconds: w.cpuSeconds,
        benchProcessHolds: "the publisher and the emulator's read-back polls (every 100 ms)",
        idleRssMiB,
        peakRssMiB,
        published,
        lost: published - delivered,
        omfRequests: requests,
        avgValuesPerRequest: Math.round((after.valuesWritten - before.valuesWritten) / Math.max(1, requests)),
        avgGzipBytesPerRequest: Math.round((after.bytesReceived - before.bytesReceived) / Math.max(1, requests)),
      },
      ratioOmfToRawConsumeAck: Number((w.perSec / rawBus.consumeAckPerSec).toFixed(3)),
      latency: {
        targetEventsPerSec: RATE,
        achievedEventsPerSec: Math.round(sentLat / publishSeconds),
        seconds: LATENCY_SECONDS,
        events: sentLat,
        measured: latencies.length,
        ticksBehindSchedule: behind,
        pollIntervalMs: POLL_MS,
        p50Ms: Math.round(percentile(latencies, 50)),
        p99Ms: Math.round(percentile(latencies, 99)),
        maxMs: Math.round(latencies.at(-1) ?? 0),
        cpuMicrosPerEvent: latCpu,
      },
    });
  } finally {
    await sender?.stop();
    await bus.close();
    emu.proc.kill();
    await nats.stop();
  }
}

/** The route's consumer starts at the next message once omf-sender has created it: measure from then on. */
async function waitForConsumer(bus: Bus, route: string): Promise<void> {
  const until = performance.now() + 30_000;
  while (!(await consumerBacklog(bus, routeConsumerName(route, Platform.OMF)))) {
    if (performance.now() > until) throw new Error(`omf: omf-sender did not create the consumer of route ${route} in 30 s`);
    await sleep(20);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

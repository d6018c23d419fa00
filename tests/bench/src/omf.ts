/**
 * npm run bench:omf — events from the bus through omf-sender into the OMF emulator (PI Web API profile), on a
 * throwaway nats-server, with the emulator in its own process. Prints one JSON object:
 *  - raw bus ceiling: the same bus messages consumed and acked by a plain durable consumer (no sink);
 *  - throughput: a backlog of events drained by an OMF route into the emulator, with the batch sizes used;
 *  - latency: publish → visible in the emulator's read-back (polled), at a fixed 10k events/s for 10 s.
 * Bounded: BENCH_OMF_EVENTS events for throughput, BENCH_OMF_RATE × BENCH_OMF_SECONDS for latency.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Bus, consumerBacklog, DurableConsumer, routeBucket, telemetryFilterSubject } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { omfSenderConfig, startOmfSender } from "@meridian/omf-sender";
import { freePort, startNatsServer, testIdentitiesFile } from "@meridian/testing";
import { pino } from "pino";
import { machine, percentile, rate, sampleEvent } from "./common.js";

const EVENTS = Number(process.env.BENCH_OMF_EVENTS ?? 100_000);
const DEVICES = 10;
/** Events per publishEvents call: one bus message per device, so EVENTS_PER_CALL / DEVICES events per message. */
const EVENTS_PER_CALL = 200;
const RATE = Number(process.env.BENCH_OMF_RATE ?? 10_000);
const SECONDS = Number(process.env.BENCH_OMF_SECONDS ?? 10);
/** Latency phase: publish every TICK_MS, RATE × TICK_MS / 1000 events per tick. */
const TICK_MS = 10;
const POLL_MS = 5;
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
  await bus.ready;
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
  process.env.OMF_SECRET_BENCH_PI_PASSWORD = "meridian";
  const sender = await startOmfSender(
    omfSenderConfig.parse({
      PORT: "0",
      NATS_URL: nats.url,
      AUTH_IDENTITIES_FILE: testIdentitiesFile(),
      OMF_ENDPOINTS_FILE: endpointsFile,
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
    }),
    logger,
    { installSignalHandlers: false },
  );
  await sender.bus.ready;
  try {
    // 1. Backlog on the bus. Consumers and routes start at new messages unless given a start: this one.
    const backlogStart = new Date();
    let t0 = performance.now();
    for (let i = 0; i < EVENTS; i += EVENTS_PER_CALL) await bus.publishEvents(events("tput", i, Math.min(EVENTS_PER_CALL, EVENTS - i)));
    const publishMs = performance.now() - t0;
    const messages = Math.ceil(EVENTS / EVENTS_PER_CALL) * DEVICES;

    // 2. Raw ceiling: the same messages through a durable consumer that only acks.
    const raw = new DurableConsumer(bus, {
      durable: "bench-raw",
      filterSubject: telemetryFilterSubject({ connection: "tput" }),
      logger,
      maxAckPending: 10_000,
      startTime: backlogStart,
    });
    const ac = new AbortController();
    t0 = performance.now();
    let consumed = 0;
    let rawEvents = 0;
    for await (const d of raw.deliveries(ac.signal)) {
      rawEvents += d.batch.events.length;
      d.ack();
      if (++consumed === messages) break;
    }
    const rawMs = performance.now() - t0;
    ac.abort();
    await raw.delete();

    // 3. Throughput: an OMF route drains the backlog into PI.
    const before = await counters(emu.url);
    t0 = performance.now();
    await routeBucket(bus).put(
      "bench-tput",
      create(RouteSchema, {
        id: "bench-tput",
        source: { connection: "tput" },
        sink: { platform: Platform.OMF, target: "pi" },
        startTime: timestampFromDate(backlogStart),
      }),
    );
    for (;;) {
      if (sum(await piContainers(emu.url), "api.tput.") >= EVENTS) break;
      if (performance.now() - t0 > 120_000) throw new Error("throughput phase did not finish in 120 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const omfMs = performance.now() - t0;
    const after = await counters(emu.url);
    const tput = sender.pipelines.list().find((p) => p.route.id === "bench-tput")!.counters;

    // 4. Latency at a fixed rate: publish time per (container, index); visible when the container's count covers it.
    await routeBucket(bus).put(
      "bench-lat",
      create(RouteSchema, { id: "bench-lat", source: { connection: "lat" }, sink: { platform: Platform.OMF, target: "pi" } }),
    );
    // The route's consumer starts at the next message once omf-sender has created it: measure from then on.
    while (!(await consumerBacklog(bus, "omf-bench-lat"))) await new Promise((r) => setTimeout(r, 20));
    const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
    const ticks = Math.round((SECONDS * 1000) / TICK_MS);
    const published = new Map<string, number[]>(); // device → publish times in order
    const seen = new Map<string, number>(); // device → values already attributed
    const latencies: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const cs = await piContainers(emu.url);
        const now = performance.now();
        for (const [id, c] of Object.entries(cs)) {
          if (!id.startsWith("api.lat.")) continue;
          const device = id.split(".")[2]!;
          const times = published.get(device) ?? [];
          let k = seen.get(device) ?? 0;
          for (; k < c.valueCount && k < times.length; k++) latencies.push(now - times[k]!);
          seen.set(device, k);
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    })();
    const start = performance.now();
    let sentLat = 0;
    let behind = 0;
    for (let t = 0; t < ticks; t++) {
      const due = start + t * TICK_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else behind++;
      const batch = events("lat", sentLat, perTick);
      const at = performance.now();
      for (const e of batch) {
        const d = e.source!.device;
        let list = published.get(d);
        if (!list) {
          list = [];
          published.set(d, list);
        }
        list.push(at);
      }
      void bus.publishEvents(batch);
      sentLat += perTick;
    }
    const publishSeconds = (performance.now() - start) / 1000;
    const drainStart = performance.now();
    while (latencies.length < sentLat && performance.now() - drainStart < 30_000) await new Promise((r) => setTimeout(r, 20));
    polling = false;
    await poller;
    latencies.sort((a, b) => a - b);
    const lat = sender.pipelines.list().find((p) => p.route.id === "bench-lat")!.counters;

    const omfEventsPerSec = rate(EVENTS, omfMs);
    const rawEventsPerSec = rate(rawEvents, rawMs);
    console.log(
      JSON.stringify(
        {
          benchmark: "omf",
          machine: machine(),
          setup: {
            natsServer: "nats-server (Debian) single node, file storage, loopback",
            emulator: "emulator-omf in its own Node process, PI Web API profile, plain http, gzip on",
            omfSender:
              "in-process with the publisher; defaults (maxBatchEvents 2000, lingerMs 250, 4 batches in flight, PI data action update)",
            eventBytes: "≈300 (4 points, 2 attributes)",
            devices: DEVICES,
            eventsPerBusMessage: EVENTS_PER_CALL / DEVICES,
          },
          rawBusCeiling: {
            messages,
            events: rawEvents,
            publishEventsPerSec: rate(EVENTS, publishMs),
            consumeAckEventsPerSec: rawEventsPerSec,
          },
          throughput: {
            events: EVENTS,
            seconds: Number((omfMs / 1000).toFixed(2)),
            eventsPerSec: omfEventsPerSec,
            batches: {
              flushes: tput.flushes,
              avgEventsPerFlush: Math.round(tput.flushedEvents / Math.max(1, tput.flushes)),
              maxEventsPerFlush: tput.maxFlushEvents,
              omfRequests: after.omfRequests - before.omfRequests,
              avgValuesPerRequest: Math.round(
                (after.valuesWritten - before.valuesWritten) / Math.max(1, after.omfRequests - before.omfRequests),
              ),
              avgGzipBytesPerRequest: Math.round(
                (after.bytesReceived - before.bytesReceived) / Math.max(1, after.omfRequests - before.omfRequests),
              ),
            },
            delivered: tput.delivered,
            failed: tput.failed,
          },
          ratioOmfToRawConsume: Number((omfEventsPerSec / rawEventsPerSec).toFixed(3)),
          latency: {
            targetEventsPerSec: RATE,
            achievedEventsPerSec: Math.round(sentLat / publishSeconds),
            seconds: SECONDS,
            events: sentLat,
            measured: latencies.length,
            ticksBehindSchedule: behind,
            pollIntervalMs: POLL_MS,
            p50Ms: Math.round(percentile(latencies, 50)),
            p99Ms: Math.round(percentile(latencies, 99)),
            maxMs: Math.round(latencies.at(-1) ?? 0),
            flushes: lat.flushes,
            avgEventsPerFlush: Math.round(lat.flushedEvents / Math.max(1, lat.flushes)),
          },
        },
        null,
        2,
      ),
    );
  } finally {
    await sender.stop();
    await bus.close();
    emu.proc.kill();
    await nats.stop();
  }
}

await main();
process.exit(0);

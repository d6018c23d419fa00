/**
 * npm run bench:soak — the side-by-side benchmark's job on Meridian alone, for long: a client POSTs batches of 100 events
 * (10 devices × 4 points: 2 doubles, an int64, a bool) as Connect JSON to the gateway's Publish at a fixed rate; JetStream;
 * omf-sender; the OMF emulator in PI Web API mode (Basic auth). gateway, omf-sender, nats-server and the emulator are
 * processes of their own. Every BENCH_SOAK_SAMPLE_SECONDS the RSS of each is sampled; the curve is printed, and the run
 * fails (exit 1) when a Meridian process grows after the warm-up, or when an acknowledged event is missing or doubled at PI.
 *
 * Growth, per Meridian process (gateway, omf-sender, nats-server), judged on the samples after the warm-up:
 *  - the median of the last 5 samples above BENCH_SOAK_MAX_GROWTH (1.2) × the median of all of them, or
 *  - a least-squares slope over their second half above BENCH_SOAK_MAX_SLOPE_MIB_PER_MIN (6) that adds more than
 *    BENCH_SOAK_MIN_RISE_MIB (8) over that half (a garbage collector's saw-tooth on a flat curve gives a steep slope
 *    over a few seconds but no rise worth the name).
 * The emulator keeps every value it is sent, so it grows by design: sampled and printed, never judged.
 *
 * Delivery: every event whose request was answered 2xx must be at PI once. PI keeps one value per timestamp (a
 * redelivered value replaces itself), so "at PI" is the emulator's value count and "once" is its count of values written.
 * Every event has its own timestamp. A refused request (any non-2xx) fails the run too: at this rate nothing should be.
 *
 * Defaults: 1,000,000 events at 10,000 events/s (100 s) after 20 s of warm-up at the same rate (warm-up events count as
 * sent and are checked too), samples every 2 s. Bounded by BENCH_SOAK_EVENTS (≥ 1,000 for a smoke run; the soak the issue
 * asks for is 10⁶ or more), BENCH_SOAK_RATE, BENCH_SOAK_WARMUP_SECONDS, BENCH_SOAK_SAMPLE_SECONDS. The services run with
 * the Node options their images run with (SERVICE_NODE_OPTIONS of processes.ts, which mirrors the Dockerfile);
 * BENCH_SOAK_NODE_OPTIONS replaces them ("" for V8's defaults). The figures are appended to tests/bench/results/soak.jsonl (results.ts).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Bus, consumerBacklog, routeConsumerName } from "@meridian/bus";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { freePort, type NatsServerHandle, startNatsServer, TEST_KEYS } from "@meridian/testing";
import { pino } from "pino";
import { envNumber, postJson } from "./common.js";
import { judgeGrowth } from "./growth.js";
import { callGateway, type RunningProcess, SERVICE_NODE_OPTIONS, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { ProcessSampler, procRssMiB } from "./sampler.js";

const EVENTS = envNumber("BENCH_SOAK_EVENTS", 1_000_000, 1_000, 100_000_000);
const RATE = envNumber("BENCH_SOAK_RATE", 10_000, 100, 1_000_000);
const WARMUP_SECONDS = envNumber("BENCH_SOAK_WARMUP_SECONDS", 20, 0, 3600);
const SAMPLE_SECONDS = envNumber("BENCH_SOAK_SAMPLE_SECONDS", 2, 0.5, 60);
const MAX_GROWTH = envNumber("BENCH_SOAK_MAX_GROWTH", 1.2, 1.01, 10);
const MAX_SLOPE_MIB_PER_MIN = envNumber("BENCH_SOAK_MAX_SLOPE_MIB_PER_MIN", 6, 0.1, 10_000);
const MIN_RISE_MIB = envNumber("BENCH_SOAK_MIN_RISE_MIB", 8, 0, 10_000);
/** Requests in flight at most; past it the client waits (and the achieved rate says so). */
const MAX_IN_FLIGHT = envNumber("BENCH_SOAK_MAX_IN_FLIGHT", 256, 1, 10_000);
const NODE_OPTIONS = process.env.BENCH_SOAK_NODE_OPTIONS ?? SERVICE_NODE_OPTIONS;

const EVENTS_PER_REQUEST = 100;
const DEVICES = 10;
const CONNECTION = "soak";
const ROUTE_ID = "soak";
/** Meridian's own processes: judged. The emulator is the sink's stand-in: printed only. */
const JUDGED = ["gateway", "omf-sender", "nats-server"] as const;
const PI_USER = { username: "meridian", password: randomBytes(12).toString("hex") };
const EPOCH_MS = Date.UTC(2026, 0, 1);
const logger = pino({ level: "warn" });

// ---- the client

let eventCounter = 0;
/** One request: event n is device n % 10 at EPOCH + n ms, so every value has a timestamp of its own in its container. */
function publishBody(): string {
  const parts: string[] = [];
  for (let j = 0; j < EVENTS_PER_REQUEST; j++) {
    const n = eventCounter++;
    parts.push(
      `{"source":{"platform":"PLATFORM_API","connection":"${CONNECTION}","device":"dev-${n % DEVICES}"},` +
        `"observedTime":"${new Date(EPOCH_MS + n).toISOString()}",` +
        `"points":[{"name":"pressure","doubleValue":${4 + (n % 100) / 100}},{"name":"temperature","doubleValue":${80 + (n % 50) / 10}},` +
        `{"name":"cycle_count","intValue":"${n}"},{"name":"running","boolValue":${n % 7 !== 0}}]}`,
    );
  }
  return `{"events":[${parts.join(",")}]}`;
}

const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });

function publish(port: number, body: string): Promise<number | string> {
  return postJson(
    agent,
    {
      port,
      path: "/meridian.telemetry.v1.TelemetryService/Publish",
      headers: { authorization: `Bearer ${TEST_KEYS["telemetry:publish"]}` },
    },
    body,
    30_000,
  );
}

// ---- the curve and its verdict

interface Sample {
  /** Seconds since the load started. */
  t: number;
  rssMiB: Record<string, number>;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

const SPARK = "▁▂▃▄▅▆▇█";
function sparkline(values: number[], width = 60): string {
  if (values.length === 0) return "";
  const step = Math.max(1, values.length / width);
  const picked: number[] = [];
  for (let i = 0; i < values.length; i += step) picked.push(values[Math.floor(i)]!);
  const lo = Math.min(...picked);
  const hi = Math.max(...picked);
  return picked.map((v) => SPARK[hi === lo ? 0 : Math.min(7, Math.floor(((v - lo) / (hi - lo)) * 8))]).join("");
}

function printCurve(samples: Sample[], names: string[], warmupSeconds: number): void {
  const lines = [`RSS (MiB) every ${SAMPLE_SECONDS} s; warm-up ends at ${warmupSeconds} s`];
  lines.push(["t (s)", ...names].map((h) => h.padStart(12)).join(""));
  // At most ~40 rows: every k-th sample, and always the last.
  const k = Math.max(1, Math.ceil(samples.length / 40));
  samples.forEach((s, i) => {
    if (i % k !== 0 && i !== samples.length - 1) return;
    const mark = s.t >= warmupSeconds ? " " : "w";
    lines.push(
      [`${s.t.toFixed(0)}${mark}`, ...names.map((n) => (s.rssMiB[n] ?? Number.NaN).toFixed(1))].map((c) => c.padStart(12)).join(""),
    );
  });
  for (const n of names) {
    const v = samples.map((s) => s.rssMiB[n] ?? 0);
    lines.push(`${n.padEnd(13)} ${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)} MiB  ${sparkline(v)}`);
  }
  console.error(lines.join("\n"));
}

// ---- the stack

async function piCounts(url: string): Promise<{ valueCount: number; valuesWritten: number }> {
  const state = (await (await fetch(`${url}/_emulator/state?scope=pi&values=false`)).json()) as { scopes: { pi: { valueCount: number } } };
  const counters = (await (await fetch(`${url}/_emulator/counters`)).json()) as { valuesWritten: number };
  return { valueCount: state.scopes.pi.valueCount, valuesWritten: counters.valuesWritten };
}

async function main() {
  const nats: NatsServerHandle = await startNatsServer();
  const procs: RunningProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "bench-soak-"));
  const bus = Bus.connect({ servers: nats.url, name: "bench-soak", logger });
  try {
    await bus.ready;
    const rawBus = await measureRawBus(bus, envNumber("BENCH_RAW_MESSAGES", 30_000, 1000, 10_000_000), logger, "soak-raw");

    const emuPort = await freePort();
    const emuUrl = `http://127.0.0.1:${emuPort}`;
    procs.push(
      await startProcess(
        "omf-emulator",
        "emulators/omf",
        {
          PORT: String(emuPort),
          OMF_EMULATOR_TLS: "false",
          OMF_EMULATOR_PI_USERNAME: PI_USER.username,
          OMF_EMULATOR_PI_PASSWORD: PI_USER.password,
        },
        `${emuUrl}/_emulator/health`,
      ),
    );
    const endpointsFile = join(dir, "endpoints.json");
    // Lab endpoint, declared as an operator would: plain http (allowed for the run) and the secret by reference.
    writeFileSync(
      endpointsFile,
      JSON.stringify([
        {
          id: "pi",
          kind: "pi",
          url: `${emuUrl}/piwebapi`,
          allowHttp: true,
          username: PI_USER.username,
          password: { env: "OMF_SECRET_SOAK_PI_PASSWORD" },
        },
      ]),
    );
    // Always given, so that an empty BENCH_SOAK_NODE_OPTIONS means V8's defaults rather than startProcess's own.
    const nodeOptions = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} ${NODE_OPTIONS}`.trim() };
    const omfPort = await freePort();
    const omfUrl = `http://127.0.0.1:${omfPort}`;
    procs.push(
      await startProcess(
        "omf-sender",
        "services/omf-sender",
        {
          PORT: String(omfPort),
          NATS_URL: nats.url,
          OMF_ENDPOINTS_FILE: endpointsFile,
          OMF_ALLOW_INSECURE_ENDPOINTS: "true",
          OMF_SECRET_SOAK_PI_PASSWORD: PI_USER.password,
          ...nodeOptions,
        },
        `${omfUrl}/readyz`,
      ),
    );
    const gwPort = await freePort();
    const gwUrl = `http://127.0.0.1:${gwPort}`;
    const gateway = await startProcess(
      "gateway",
      "services/gateway",
      // The per-caller rate limit is lifted: the soak holds its own rate.
      {
        PORT: String(gwPort),
        NATS_URL: nats.url,
        OMF_SENDER_URL: omfUrl,
        CALLER_RATE_LIMIT: "1000000",
        CALLER_RATE_BURST: "1000000",
        ...nodeOptions,
      },
      `${gwUrl}/readyz`,
    );
    procs.push(gateway);
    await callGateway(gateway, `${gwUrl}/meridian.route.v1.RouteService/CreateRoute`, TEST_KEYS["routes:admin"], {
      route: { id: ROUTE_ID, source: { connection: CONNECTION }, sink: { platform: "PLATFORM_OMF", target: "pi" } },
    });
    // The route's consumer starts at the next message once omf-sender has made it: publish only from then on.
    const consumer = routeConsumerName(ROUTE_ID, Platform.OMF);
    for (const deadline = Date.now() + 30_000; !(await consumerBacklog(bus, consumer)); await sleep(50)) {
      if (Date.now() > deadline) throw new Error(`omf-sender did not create consumer ${consumer} in 30 s`);
    }

    const [emulator, omfSender] = procs as [RunningProcess, RunningProcess];
    const natsPid = nats.pid();
    if (natsPid === undefined) throw new Error("nats-server is not running");
    const pids: Record<string, number> = {
      gateway: gateway.proc.pid!,
      "omf-sender": omfSender.proc.pid!,
      "nats-server": natsPid,
      "omf-emulator": emulator.proc.pid!,
    };
    const names = Object.keys(pids);
    const sampler = new ProcessSampler(pids).start();
    const before = await piCounts(emuUrl);

    // The load, at a fixed rate, with its samples.
    const samples: Sample[] = [];
    const start = performance.now();
    const sampleNow = () => {
      const rssMiB: Record<string, number> = {};
      for (const [n, pid] of Object.entries(pids)) rssMiB[n] = round1(procRssMiB(pid) ?? Number.NaN);
      samples.push({ t: round1((performance.now() - start) / 1000), rssMiB });
    };
    sampleNow();
    const sampling = setInterval(sampleNow, SAMPLE_SECONDS * 1000);
    const total = Math.ceil((EVENTS + WARMUP_SECONDS * RATE) / EVENTS_PER_REQUEST) * EVENTS_PER_REQUEST;
    const intervalMs = (1000 * EVENTS_PER_REQUEST) / RATE;
    const refusedBy: Record<string, number> = {};
    let acked = 0;
    let inflight = 0;
    let behind = 0;
    const sends = new Set<Promise<void>>();
    let mark: ReturnType<ProcessSampler["mark"]> | undefined;
    let measuredFrom = 0;
    for (let k = 0; k * EVENTS_PER_REQUEST < total; k++) {
      const wait = start + k * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -intervalMs) behind++;
      if (!mark && performance.now() - start >= WARMUP_SECONDS * 1000) {
        mark = sampler.mark();
        measuredFrom = k * EVENTS_PER_REQUEST;
      }
      while (inflight >= MAX_IN_FLIGHT) await Promise.race(sends);
      inflight++;
      const p = publish(gwPort, publishBody()).then((outcome) => {
        inflight--;
        if (typeof outcome === "number" && outcome >= 200 && outcome < 300) acked += EVENTS_PER_REQUEST;
        else refusedBy[String(outcome)] = (refusedBy[String(outcome)] ?? 0) + EVENTS_PER_REQUEST;
      });
      sends.add(p);
      void p.finally(() => sends.delete(p));
      if (k % Math.round(10_000 / intervalMs) === 0 && k > 0) {
        const last = samples.at(-1)!;
        console.error(
          `soak: ${((performance.now() - start) / 1000).toFixed(0)} s, ${k * EVENTS_PER_REQUEST} sent, ${names.map((n) => `${n} ${last.rssMiB[n]}`).join(", ")} MiB`,
        );
      }
    }
    await Promise.all(sends);
    const loadSeconds = (performance.now() - start) / 1000;
    const cpu = mark ? sampler.cpuMicrosPerEvent(Math.max(1, total - measuredFrom), mark) : undefined;

    // Drain: everything acknowledged at PI, then a few seconds more for a late duplicate.
    const drainStart = performance.now();
    let counts = await piCounts(emuUrl);
    while (counts.valueCount - before.valueCount < acked && performance.now() - drainStart < 120_000) {
      await sleep(250);
      counts = await piCounts(emuUrl);
    }
    await sleep(3000);
    counts = await piCounts(emuUrl);
    clearInterval(sampling);
    sampleNow();
    sampler.stop();

    const arrived = counts.valueCount - before.valueCount;
    const written = counts.valuesWritten - before.valuesWritten;
    const refused = Object.values(refusedBy).reduce((a, b) => a + b, 0);
    const delivery = {
      sent: total,
      acked,
      refused,
      refusedBy,
      arrived,
      written,
      lost: Math.max(0, acked - arrived),
      duplicated: Math.max(0, written - arrived),
      drainSeconds: round1((performance.now() - drainStart) / 1000),
    };

    const afterWarmup = samples.filter((s) => s.t >= WARMUP_SECONDS);
    const growth: Record<string, ReturnType<typeof judgeGrowth>> = {};
    for (const n of JUDGED)
      growth[n] = judgeGrowth(
        afterWarmup.map((s) => ({ t: s.t, mib: s.rssMiB[n]! })),
        { maxGrowth: MAX_GROWTH, maxSlopeMiBPerMin: MAX_SLOPE_MIB_PER_MIN, minRiseMiB: MIN_RISE_MIB },
      );
    printCurve(samples, names, WARMUP_SECONDS);

    const failures = [
      ...JUDGED.filter((n) => !growth[n]!.ok).map((n) => `${n}: RSS ${growth[n]!.verdict}`),
      ...(delivery.lost > 0 ? [`${delivery.lost} acknowledged events missing at PI`] : []),
      ...(delivery.duplicated > 0 ? [`${delivery.duplicated} values written twice`] : []),
      ...(refused > 0 ? [`${refused} events refused (${JSON.stringify(refusedBy)})`] : []),
    ];
    appendResult("soak", {
      setup: {
        job: "Connect JSON Publish of 100 events (10 devices × 4 points) → gateway → JetStream → omf-sender → OMF emulator (PI Web API, Basic auth)",
        natsServer: "nats-server single node, file storage, loopback",
        serviceNodeOptions: NODE_OPTIONS,
        rate: RATE,
        warmupSeconds: WARMUP_SECONDS,
        sampleSeconds: SAMPLE_SECONDS,
      },
      bounds: { maxGrowth: MAX_GROWTH, maxSlopeMiBPerMin: MAX_SLOPE_MIB_PER_MIN, minRiseMiB: MIN_RISE_MIB },
      rawBus,
      load: {
        events: total,
        seconds: round1(loadSeconds),
        achievedEventsPerSec: Math.round(total / loadSeconds),
        ticksBehindSchedule: behind,
      },
      delivery,
      cpuMicrosPerEventAfterWarmup: cpu,
      rssMiB: { idle: sampler.idleRssMiB(), peak: sampler.peakRssMiB() },
      growth,
      curve: samples,
      passed: failures.length === 0,
      failures,
    });
    if (failures.length > 0) {
      console.error(`soak FAILED: ${failures.join("; ")}`);
      process.exitCode = 1;
    }
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await bus.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

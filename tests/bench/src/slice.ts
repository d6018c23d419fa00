/**
 * npm run bench — the first slice as separate processes, as the containers run it: iDigi emulator → idigi-listener →
 * NATS → omf-sender → PI emulator, set up through the gateway. A sustained phase (BENCH_SLICE_SECONDS, default 30,
 * after BENCH_SLICE_WARMUP_SECONDS, default 5) keeps the emulator BENCH_SLICE_OUTSTANDING events ahead of what PI holds:
 * events/s end to end (emulator → readable in PI), CPU µs per event of every process and of Meridian's own (listener,
 * omf-sender, gateway, nats-server), idle and peak RSS. Then BENCH_SLICE_LATENCY_SECONDS at BENCH_SLICE_RATE events/s:
 * per 100 ms chunk, the source platform's batching (emit → the listener received the events) apart from Meridian's own
 * part (received → readable in PI). The raw bus figure of the same run is the yardstick. Appends to
 * tests/bench/results/slice.jsonl.
 */
import { randomBytes } from "node:crypto";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Bus } from "@meridian/bus";
import {
  AckOption,
  Compression,
  IdigiListenerService,
  PayloadFormat,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { EndpointKind, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { freePort, startNatsServer, testCredential } from "@meridian/testing";
import { pino } from "pino";
import { emitter, envNumber, latencySummary, sustain } from "./idigi-load.js";
import { type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { ProcessSampler } from "./sampler.js";

const WARMUP_S = envNumber("BENCH_SLICE_WARMUP_SECONDS", 5, 1, 600);
const SECONDS = envNumber("BENCH_SLICE_SECONDS", 30, 1, 3600);
const OUTSTANDING = envNumber("BENCH_SLICE_OUTSTANDING", 30_000, 1000, 1_000_000);
const RATE = envNumber("BENCH_SLICE_RATE", 1000, 10, 100_000);
const LATENCY_S = envNumber("BENCH_SLICE_LATENCY_SECONDS", 10, 1, 600);
const RAW_MESSAGES = envNumber("BENCH_RAW_MESSAGES", 30_000, 1000, 10_000_000);
const BATCH_SIZE = 100;
const MERIDIAN = ["idigi-listener", "omf-sender", "gateway", "nats-server"];
const logger = pino({ level: "warn" });

async function main() {
  const nats = await startNatsServer();
  const procs: RunningProcess[] = [];
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  try {
    await bus.ready;
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);

    const ports = await Promise.all(Array.from({ length: 7 }, () => freePort()));
    const [omfPort, idigiHttp, idigiPush, idigiPushTls, senderPort, listenerPort, gatewayPort] = ports as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const local = (p: number) => `http://127.0.0.1:${p}`;
    procs.push(
      await startProcess(
        "omf-emulator",
        "emulators/omf",
        { PORT: String(omfPort), OMF_EMULATOR_TLS: "false" },
        `${local(omfPort)}/_emulator/health`,
      ),
      await startProcess(
        "idigi-emulator",
        "emulators/idigi",
        {
          IDIGI_EMU_HTTP_PORT: String(idigiHttp),
          IDIGI_EMU_PUSH_PORT: String(idigiPush),
          IDIGI_EMU_PUSH_TLS_PORT: String(idigiPushTls),
          IDIGI_EMU_TLS: "false",
          // Distinct timestamps per event (a second apart): with the wall clock a burst shares a millisecond and PI keeps one value per timestamp.
          IDIGI_EMU_CLOCK: "sequence",
        },
        `${local(idigiHttp)}/_emulator/state`,
      ),
      await startProcess(
        "omf-sender",
        "services/omf-sender",
        {
          PORT: String(senderPort),
          NATS_URL: nats.url,
          OMF_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
          // The emulator speaks plain http on loopback.
          OMF_ALLOW_INSECURE_ENDPOINTS: "true",
          OMF_ALLOWED_HOSTS: "127.0.0.1",
        },
        `${local(senderPort)}/readyz`,
      ),
      await startProcess(
        "idigi-listener",
        "services/idigi-listener",
        {
          PORT: String(listenerPort),
          NATS_URL: nats.url,
          IDIGI_URL: local(idigiHttp),
          IDIGI_PUSH_PORT: String(idigiPush),
          IDIGI_USERNAME: "emulator",
          IDIGI_PASSWORD: "emulator",
          IDIGI_ALLOW_INSECURE: "true",
        },
        `${local(listenerPort)}/readyz`,
      ),
      await startProcess(
        "gateway",
        "services/gateway",
        { PORT: String(gatewayPort), NATS_URL: nats.url, OMF_SENDER_URL: local(senderPort), IDIGI_LISTENER_URL: local(listenerPort) },
        `${local(gatewayPort)}/readyz`,
      ),
    );

    const transport = createGrpcTransport({ baseUrl: local(gatewayPort), interceptors: [testCredential()] });
    const omf = createClient(OmfSenderService, transport);
    const idigi = createClient(IdigiListenerService, transport);
    const routes = createClient(RouteService, transport);
    await omf.createEndpoint({
      endpoint: {
        id: "pi",
        kind: EndpointKind.PI,
        url: `${local(omfPort)}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: "meridian",
      },
    });
    const monitor = await idigi.createMonitor({
      topics: ["DataPoint"],
      format: PayloadFormat.JSON,
      batchSize: BATCH_SIZE,
      batchDurationSeconds: 1,
      compression: Compression.NONE,
      ackOption: AckOption.EXPLICIT,
      autoReplay: true,
      startSession: true,
    });
    const monitorId = Number(monitor.monitor!.id);
    await routes.createRoute({
      route: {
        id: "bench",
        source: { platform: Platform.IDIGI, connection: String(monitorId) },
        sink: { platform: Platform.OMF, target: "pi" },
      },
    });

    const sampler = new ProcessSampler({
      ...Object.fromEntries(procs.map((p) => [p.name, p.proc.pid!])),
      "nats-server": nats.pid()!,
    }).start();
    const idleRssMiB = sampler.idleRssMiB();
    const piCount = async () => {
      const res = await fetch(`${local(omfPort)}/_emulator/state?scope=pi&values=false`);
      return ((await res.json()) as { scopes: { pi: { valueCount: number } } }).scopes.pi.valueCount;
    };
    const emit = emitter(local(idigiHttp), monitorId);

    // Sustained: warm-up (types and containers created, connections open), then the measured phase.
    let from = sampler.mark();
    let to = from;
    const throughput = await sustain({
      emit,
      delivered: piCount,
      warmupMs: WARMUP_S * 1000,
      measureMs: SECONDS * 1000,
      maxOutstanding: OUTSTANDING,
      chunk: 5000,
      drainTimeoutMs: 300_000,
      onStart: () => {
        from = sampler.mark();
        sampler.resetPeak();
      },
      onEnd: () => {
        to = sampler.mark();
      },
    });
    if (throughput.deliveredAtEnd < throughput.emitted) {
      const stream = await bus.jsm().streams.info("TELEMETRY");
      throw new Error(
        `PI holds ${throughput.deliveredAtEnd} of ${throughput.emitted} values; bus has ${stream.state.messages} messages; iDigi emulator: ${(
          await (await fetch(`${local(idigiHttp)}/_emulator/state`)).text()
        ).slice(0, 1500)}`,
      );
    }
    const cpu = sampler.cpuMicrosPerEvent(throughput.events, from, to);
    const peakRssMiB = sampler.peakRssMiB();

    // Latency at a fixed rate: a chunk every 100 ms. Each chunk's events are read on the bus (their received time) and
    // the chunk is done when PI holds it.
    const chunk = Math.max(1, Math.round(RATE / 10));
    const received: number[] = [];
    const ac = new AbortController();
    const reader = (async () => {
      for await (const e of bus.subscribe({ platform: Platform.IDIGI, connection: String(monitorId) }, { signal: ac.signal }))
        received.push(timestampMs(e.receivedTime!));
    })().catch((err) => {
      if (!ac.signal.aborted) throw err;
    });
    await new Promise((r) => setTimeout(r, 500));
    let expected = await piCount();
    const chunks: Array<{ target: number; emitAt: number; inPiAt?: number }> = [];
    let polling = true;
    const poller = (async () => {
      let next = 0;
      while (polling || next < chunks.length) {
        const count = await piCount();
        const now = Date.now();
        while (next < chunks.length && chunks[next]!.target <= count) chunks[next++]!.inPiAt = now;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const t0 = performance.now();
    for (let i = 0; i < LATENCY_S * 10; i++) {
      const emitAt = Date.now();
      await emit(chunk);
      expected += chunk;
      chunks.push({ target: expected, emitAt });
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + (i + 1) * 100 - performance.now())));
    }
    polling = false;
    await Promise.race([poller, new Promise((_, reject) => setTimeout(() => reject(new Error("latency phase did not drain")), 120_000))]);
    const end = Date.now() + 10_000;
    while (received.length < chunks.length * chunk && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await reader;
    // The k-th event read belongs to chunk floor(k / chunk) (one monitor, read in stream order).
    const source: number[] = [];
    const meridian: number[] = [];
    const endToEnd: number[] = [];
    chunks.forEach((c, i) => {
      const times = received.slice(i * chunk, (i + 1) * chunk);
      if (c.inPiAt === undefined || times.length < chunk) return;
      const lastReceived = Math.max(...times);
      source.push(lastReceived - c.emitAt);
      meridian.push(c.inPiAt - lastReceived);
      endToEnd.push(c.inPiAt - c.emitAt);
    });

    const meridianCpu = MERIDIAN.reduce((sum, name) => sum + (cpu.perProcess[name] ?? 0), 0);
    appendResult("slice", {
      setup: {
        path: "iDigi emulator → idigi-listener → NATS → omf-sender → PI emulator (separate processes, set up through the gateway)",
        monitor: { batchSize: BATCH_SIZE, batchDurationSeconds: 1, format: "json", compression: "none", ack: "explicit" },
        warmupSeconds: WARMUP_S,
        measuredSeconds: SECONDS,
        maxOutstandingEvents: OUTSTANDING,
      },
      throughput: { ...throughput, note: "events readable in PI during the measured phase" },
      cpuMicrosPerEvent: cpu,
      meridianCpuMicrosPerEvent: { processes: MERIDIAN, total: Number(meridianCpu.toFixed(2)) },
      idleRssMiB,
      peakRssMiB,
      latencyAtFixedRate: {
        eventsPerSec: RATE,
        seconds: LATENCY_S,
        chunks: chunks.length,
        sourceBatching: {
          ...latencySummary(source),
          note: "per chunk: emit → its last event received by the listener (the monitor's batch duration ≤ 1 s)",
        },
        meridian: { ...latencySummary(meridian), note: "per chunk: its last event received by the listener → all of it readable in PI" },
        endToEnd: { ...latencySummary(endToEnd), note: "per chunk: emit → all of it readable in PI" },
      },
      rawBus: raw,
      ratioEndToEndToRawPublish: Number((throughput.eventsPerSec / raw.publishPerSec).toFixed(2)),
      piValues: await piCount(),
    });
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await bus.close();
    await nats.stop();
  }
}

await main();
process.exit(0);

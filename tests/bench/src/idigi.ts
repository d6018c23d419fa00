/**
 * npm run bench:idigi — iDigi emulator push socket → idigi-listener → TELEMETRY stream, each its own process (the
 * built dist, as a container runs it): the emulator renders blocks of 100 DataPoint events, the listener inflates,
 * parses, maps, publishes to JetStream (file storage, loopback) and acks each block only after the bus stored it.
 *
 * Per compression (zlib, none): a sustained phase (BENCH_IDIGI_SECONDS, default 30, after BENCH_IDIGI_WARMUP_SECONDS,
 * default 5) with the emulator kept BENCH_IDIGI_OUTSTANDING events ahead of what the listener stored; events/s, CPU µs
 * per event of each process (and of Meridian's own: listener + nats-server), idle and peak RSS. Then a latency phase at
 * BENCH_IDIGI_RATE events/s for BENCH_IDIGI_LATENCY_SECONDS: the source platform's batching (the event's observed time
 * at the emulator → the listener received its block) apart from Meridian's own part (received → seen on the bus by a
 * subscriber). The raw bus figure of the same run is the yardstick. Appends to tests/bench/results/idigi.jsonl.
 */

import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Bus } from "@meridian/bus";
import { Compression, IdigiListenerService, PayloadFormat } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { freePort, startNatsServer, testCredential } from "@meridian/testing";
import { pino } from "pino";
import { emitter, envNumber, latencySummary, sustain } from "./idigi-load.js";
import { type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { ProcessSampler } from "./sampler.js";

const WARMUP_S = envNumber("BENCH_IDIGI_WARMUP_SECONDS", 5, 1, 600);
const SECONDS = envNumber("BENCH_IDIGI_SECONDS", 30, 1, 3600);
const OUTSTANDING = envNumber("BENCH_IDIGI_OUTSTANDING", 20_000, 1000, 1_000_000);
const RATE = envNumber("BENCH_IDIGI_RATE", 5000, 10, 100_000);
const LATENCY_S = envNumber("BENCH_IDIGI_LATENCY_SECONDS", 10, 1, 600);
const RAW_MESSAGES = envNumber("BENCH_RAW_MESSAGES", 30_000, 1000, 10_000_000);
const COMPRESSIONS = (process.env.BENCH_IDIGI_COMPRESSIONS ?? "zlib,none").split(",");
const BATCH = 100;
const logger = pino({ level: "warn" });

async function main() {
  for (const c of COMPRESSIONS) if (c !== "zlib" && c !== "none") throw new Error(`BENCH_IDIGI_COMPRESSIONS: "${c}" is not zlib or none`);
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  const procs: RunningProcess[] = [];
  try {
    await bus.ready;
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);
    const [httpPort, pushPort, pushTlsPort, listenerPort] = (await Promise.all([freePort(), freePort(), freePort(), freePort()])) as [
      number,
      number,
      number,
      number,
    ];
    const local = (p: number) => `http://127.0.0.1:${p}`;
    const emulator = await startProcess(
      "idigi-emulator",
      "emulators/idigi",
      {
        IDIGI_EMU_HOST: "127.0.0.1",
        IDIGI_EMU_HTTP_PORT: String(httpPort),
        IDIGI_EMU_PUSH_PORT: String(pushPort),
        IDIGI_EMU_PUSH_TLS_PORT: String(pushTlsPort),
        IDIGI_EMU_TLS: "false",
        // The observed time of each event is when the emulator made it: the source's batching is measured from it.
        IDIGI_EMU_CLOCK: "wall",
      },
      `${local(httpPort)}/_emulator/state`,
    );
    procs.push(emulator);
    const listener = await startProcess(
      "idigi-listener",
      "services/idigi-listener",
      {
        PORT: String(listenerPort),
        NATS_URL: nats.url,
        IDIGI_URL: local(httpPort),
        IDIGI_PUSH_PORT: String(pushPort),
        IDIGI_USERNAME: "emulator",
        IDIGI_PASSWORD: "emulator",
        IDIGI_ALLOW_INSECURE: "true",
      },
      `${local(listenerPort)}/readyz`,
    );
    procs.push(listener);
    const client = createClient(
      IdigiListenerService,
      createGrpcTransport({ baseUrl: local(listenerPort), interceptors: [testCredential()] }),
    );
    const sampler = new ProcessSampler({
      "idigi-emulator": emulator.proc.pid!,
      "idigi-listener": listener.proc.pid!,
      "nats-server": nats.pid()!,
    }).start();
    const idleRssMiB = sampler.idleRssMiB();

    const delivered = async (monitorId: string) => {
      const { sessions } = await client.listSessions({});
      return Number(sessions.find((s) => s.monitorId === monitorId)?.deliveredEvents ?? 0n);
    };
    const runs = [];
    let lastMonitor = "";
    for (const name of COMPRESSIONS) {
      const { monitor } = await client.createMonitor({
        topics: ["DataPoint"],
        format: PayloadFormat.JSON,
        compression: name === "zlib" ? Compression.ZLIB : Compression.NONE,
        batchSize: BATCH,
        batchDurationSeconds: 0,
        startSession: true,
      });
      const id = monitor!.id;
      lastMonitor = id;
      sampler.resetPeak();
      let from = sampler.mark();
      let to = from;
      const result = await sustain({
        emit: emitter(local(httpPort), Number(id)),
        delivered: () => delivered(id),
        warmupMs: WARMUP_S * 1000,
        measureMs: SECONDS * 1000,
        maxOutstanding: OUTSTANDING,
        chunk: 5000,
        drainTimeoutMs: 120_000,
        onStart: () => {
          from = sampler.mark();
        },
        onEnd: () => {
          to = sampler.mark();
        },
      });
      const session = (await client.listSessions({})).sessions.find((s) => s.monitorId === id)!;
      const cpu = sampler.cpuMicrosPerEvent(result.events, from, to);
      runs.push({
        compression: name,
        ...result,
        complete: result.deliveredAtEnd === result.emitted,
        cpuMicrosPerEvent: cpu,
        meridianCpuMicrosPerEvent: Number(((cpu.perProcess["idigi-listener"] ?? 0) + (cpu.perProcess["nats-server"] ?? 0)).toFixed(2)),
        peakRssMiB: sampler.peakRssMiB(),
        duplicates: Number(session.duplicateEvents),
        failedBatches: Number(session.failedBatches),
      });
      if (name !== COMPRESSIONS.at(-1)) await client.stopSession({ monitorId: id });
    }

    // Latency at a fixed rate on the last monitor: emit a tenth of the rate every 100 ms, read every event on the bus.
    const seen: Array<{ source: number; meridian: number }> = [];
    const ac = new AbortController();
    const reader = (async () => {
      for await (const e of bus.subscribe({ platform: Platform.IDIGI, connection: lastMonitor }, { signal: ac.signal })) {
        const now = Date.now();
        const received = timestampMs(e.receivedTime!);
        seen.push({ source: received - timestampMs(e.observedTime!), meridian: now - received });
      }
    })().catch((err) => {
      if (!ac.signal.aborted) throw err;
    });
    await new Promise((r) => setTimeout(r, 500));
    const emit = emitter(local(httpPort), Number(lastMonitor));
    const chunk = Math.max(1, Math.round(RATE / 10));
    const t0 = performance.now();
    let sent = 0;
    for (let i = 0; i < LATENCY_S * 10; i++) {
      await emit(chunk);
      sent += chunk;
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + (i + 1) * 100 - performance.now())));
    }
    const end = performance.now() + 30_000;
    while (seen.length < sent && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await reader;

    appendResult("idigi", {
      setup: {
        path: "iDigi emulator push socket (plain TCP, own process) → idigi-listener (own process: inflate, parse, map, JetStream publish, ack after stored) → TELEMETRY stream",
        natsServer: "nats-server single node, file storage, loopback",
        blockSize: BATCH,
        format: "json",
        resource: "DataPoint, 3 devices",
        ackOption: "explicit (ack after the bus stored the block)",
        warmupSeconds: WARMUP_S,
        measuredSeconds: SECONDS,
        maxOutstandingEvents: OUTSTANDING,
      },
      runs,
      idleRssMiB,
      latencyAtFixedRate: {
        eventsPerSec: RATE,
        seconds: LATENCY_S,
        events: sent,
        seen: seen.length,
        sourceBatching: { ...latencySummary(seen.map((s) => s.source)), note: "observed at the emulator → block received by the listener" },
        meridian: { ...latencySummary(seen.map((s) => s.meridian)), note: "received by the listener → seen on the bus by a subscriber" },
      },
      rawBus: raw,
      ratioToRawPublish: runs.map((r) => ({ compression: r.compression, ratio: Number((r.eventsPerSec / raw.publishPerSec).toFixed(2)) })),
    });
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await bus.close();
    await nats.stop();
  }
}

await main();
process.exit(0);

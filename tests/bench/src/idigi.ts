/**
 * npm run bench:idigi — events/s from the iDigi emulator's push socket onto the bus through idigi-listener:
 * the emulator (its own process, plain TCP) renders blocks of 100 DataPoint events, the listener inflates,
 * parses, maps, publishes to JetStream (file storage, loopback) and acks each block only after the bus stored
 * it. Once with zlib and once without. Bounded in events (BENCH_IDIGI_EVENTS) and time (BENCH_IDIGI_TIMEOUT_MS).
 * Prints one JSON object.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { STREAMS } from "@meridian/bus";
import { Compression, IdigiListenerService, PayloadFormat } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { idigiListenerConfig, startIdigiListener } from "@meridian/idigi-listener";
import { freePort, startNatsServer, testCredential, testIdentitiesFile } from "@meridian/testing";
import { pino } from "pino";
import { machine, rate } from "./common.js";

const EVENTS = Number(process.env.BENCH_IDIGI_EVENTS ?? 100_000);
const TIMEOUT_MS = Number(process.env.BENCH_IDIGI_TIMEOUT_MS ?? 120_000);
const BATCH = 100;
const logger = pino({ level: "warn" });

async function startEmulator(): Promise<{ httpUrl: string; pushPort: number; proc: ChildProcess }> {
  const main = createRequire(import.meta.url)
    .resolve("@meridian/emulator-idigi")
    .replace(/index\.js$/, "main.js");
  const httpPort = await freePort();
  const pushPort = await freePort();
  const proc = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      IDIGI_EMU_HOST: "127.0.0.1",
      IDIGI_EMU_HTTP_PORT: String(httpPort),
      IDIGI_EMU_PUSH_PORT: String(pushPort),
      IDIGI_EMU_TLS: "false",
      IDIGI_EMU_CLOCK: "sequence",
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${httpUrl}/_emulator/state`)).ok) break;
    } catch {
      if (i > 100) throw new Error("emulator did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { httpUrl, pushPort, proc };
}

async function emit(httpUrl: string, monitorId: string, count: number): Promise<void> {
  const res = await fetch(`${httpUrl}/_emulator/emit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ monitorId: Number(monitorId), count, topic: "DataPoint" }),
  });
  if (!res.ok) throw new Error(`emit: ${res.status} ${await res.text()}`);
}

async function main() {
  const nats = await startNatsServer();
  const emu = await startEmulator();
  const listener = await startIdigiListener(
    idigiListenerConfig.parse({
      PORT: "0",
      NATS_URL: nats.url,
      IDIGI_URL: emu.httpUrl,
      IDIGI_PUSH_PORT: String(emu.pushPort),
      IDIGI_USERNAME: "emulator",
      IDIGI_PASSWORD: "emulator",
      IDIGI_ALLOW_INSECURE: "true",
      AUTH_IDENTITIES_FILE: testIdentitiesFile(),
    }),
    logger,
    { installSignalHandlers: false },
  );
  await listener.bus.ready;
  const client = createClient(
    IdigiListenerService,
    createGrpcTransport({ baseUrl: listener.service.url, interceptors: [testCredential()] }),
  );
  const runs = [];
  try {
    for (const [name, compression] of [
      ["zlib", Compression.ZLIB],
      ["none", Compression.NONE],
    ] as const) {
      const { monitor } = await client.createMonitor({
        topics: ["DataPoint"],
        format: PayloadFormat.JSON,
        compression,
        batchSize: BATCH,
        batchDurationSeconds: 0,
        startSession: true,
      });
      const id = monitor!.id;
      const delivered = () => listener.sessions.monitorCounters().find((c) => c.monitorId === id)?.counters.deliveredEvents ?? 0;
      // Warm-up (JIT, connections), not measured.
      await emit(emu.httpUrl, id, 2 * BATCH);
      while (delivered() < 2 * BATCH) await new Promise((r) => setTimeout(r, 10));
      const base = delivered();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await emit(emu.httpUrl, id, EVENTS);
      const deadline = t0 + TIMEOUT_MS;
      while (delivered() - base < EVENTS && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const done = delivered() - base;
      const c = listener.sessions.monitorCounters().find((x) => x.monitorId === id)!.counters;
      runs.push({
        compression: name,
        events: done,
        complete: done === EVENTS,
        seconds: Number((ms / 1000).toFixed(2)),
        eventsPerSec: rate(done, ms),
        blocksPerSec: rate(done / BATCH, ms),
        listenerCpuPercentOfOneCore: Math.round(((cpu.user + cpu.system) / 1000 / ms) * 100),
        duplicates: c.duplicateEvents,
        failedBatches: c.failedBatches,
      });
      await client.stopSession({ monitorId: id });
    }
    const stream = await listener.bus.jsm().streams.info(STREAMS.telemetry);
    console.log(
      JSON.stringify(
        {
          benchmark: "idigi",
          machine: machine(),
          setup: {
            path: "emulator push socket (plain TCP, own process) → idigi-listener (inflate, parse, map, JetStream publish, ack) → TELEMETRY stream",
            natsServer: "nats-server (Debian) single node, file storage, loopback",
            eventsPerRun: EVENTS,
            blockSize: BATCH,
            format: "json",
            resource: "DataPoint (3 devices, so 3 bus messages per block)",
            maxUnackedBlocks: 16,
            ackOption: "explicit (ack after the bus stored the block)",
          },
          runs,
          telemetryStreamMessages: stream.state.messages,
        },
        null,
        2,
      ),
    );
  } finally {
    await listener.stop();
    emu.proc.kill();
    await nats.stop();
  }
}

await main();
process.exit(0);

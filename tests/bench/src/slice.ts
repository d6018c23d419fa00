/**
 * npm run bench — the first slice as separate processes, as the containers run it: iDigi emulator → idigi-listener →
 * NATS → omf-sender → PI emulator, set up through the gateway. Prints one JSON object: end-to-end events/s (emulator
 * emit to PI read-back), p50/p99 latency at a fixed rate, the raw bus ceiling measured in the same run, the ratio,
 * and each process's RSS. Bounded: BENCH_SLICE_EVENTS events for throughput, BENCH_SLICE_SECONDS at BENCH_SLICE_RATE.
 */
import { randomBytes } from "node:crypto";
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
import { machine, percentile, rate } from "./common.js";
import { type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";

const EVENTS = Number(process.env.BENCH_SLICE_EVENTS ?? 30_000);
const RATE = Number(process.env.BENCH_SLICE_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SLICE_SECONDS ?? 10);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 30_000);
const BATCH_SIZE = 100;
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

    const piCount = async () => {
      const res = await fetch(`${local(omfPort)}/_emulator/state?scope=pi&values=false`);
      return ((await res.json()) as { scopes: { pi: { valueCount: number } } }).scopes.pi.valueCount;
    };
    const emit = async (count: number) => {
      const res = await fetch(`${local(idigiHttp)}/_emulator/emit`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ monitorId, topic: "DataPoint", count }),
      });
      if (!res.ok) throw new Error(`emit: ${res.status} ${await res.text()}`);
    };
    const waitFor = async (target: number, timeoutMs: number) => {
      const end = Date.now() + timeoutMs;
      while ((await piCount()) < target) {
        if (Date.now() > end) {
          const idigiState = await (await fetch(`${local(idigiHttp)}/_emulator/state`)).text();
          const stream = await bus.jsm().streams.info("TELEMETRY");
          throw new Error(
            `PI holds fewer than ${target} values after ${timeoutMs} ms; bus has ${stream.state.messages} messages; iDigi emulator: ${idigiState.slice(0, 1500)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    // Warm-up: types and containers get created, connections open.
    await emit(200);
    await waitFor(200, 60_000);
    let expected = await piCount();

    // Throughput: everything at once, until PI has it all.
    let t0 = performance.now();
    for (let sent = 0; sent < EVENTS; sent += 5000) await emit(Math.min(5000, EVENTS - sent));
    expected += EVENTS;
    await waitFor(expected, 300_000);
    const throughputMs = performance.now() - t0;

    // Latency at a fixed rate: a chunk every 100 ms; a chunk's latency is emit → all of it readable in PI.
    const chunk = Math.max(1, Math.round(RATE / 10));
    const pending: Array<{ target: number; at: number }> = [];
    const latencies: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling || pending.length > 0) {
        const count = await piCount();
        const now = performance.now();
        while (pending.length > 0 && pending[0]!.target <= count) latencies.push(now - pending.shift()!.at);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    t0 = performance.now();
    for (let i = 0; i < SECONDS * 10; i++) {
      const at = performance.now();
      await emit(chunk);
      expected += chunk;
      pending.push({ target: expected, at });
      const next = t0 + (i + 1) * 100;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
    polling = false;
    await Promise.race([poller, new Promise((_, reject) => setTimeout(() => reject(new Error("latency phase did not drain")), 120_000))]);
    latencies.sort((a, b) => a - b);

    const eventsPerSec = rate(EVENTS, throughputMs);
    console.log(
      JSON.stringify(
        {
          benchmark: "slice: iDigi emulator → idigi-listener → NATS → omf-sender → PI emulator (separate processes)",
          machine: machine(),
          monitor: { batchSize: BATCH_SIZE, batchDurationSeconds: 1, format: "json", compression: "none", ack: "explicit" },
          throughput: { events: EVENTS, eventsPerSec, seconds: Number((throughputMs / 1000).toFixed(1)) },
          latencyAtFixedRate: {
            eventsPerSec: RATE,
            seconds: SECONDS,
            chunks: latencies.length,
            p50Ms: Math.round(percentile(latencies, 50)),
            p99Ms: Math.round(percentile(latencies, 99)),
            note: "emit → readable in PI, per 100 ms chunk; includes the monitor's batch duration (≤ 1 s) at the emulator",
          },
          rawBus: raw,
          ratioEndToEndToRawPublish: Number((eventsPerSec / raw.publishPerSec).toFixed(2)),
          rssMiB: Object.fromEntries(procs.map((p) => [p.name, p.rssMiB()])),
          piValues: await piCount(),
        },
        null,
        2,
      ),
    );
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await bus.close();
    await nats.stop();
  }
}

await main();
process.exit(0);

/**
 * npm run bench:bus — the gateway's Publish (Connect gRPC, binary, calls of 100 events of 10 devices, several in
 * flight) against the raw bus figure of the same run, on a throwaway nats-server. The gateway runs as deployed, its own
 * process (dist/main.js); nats-server is its own process; the publisher is this one. Appends one JSON object to
 * tests/bench/results/bus.jsonl and prints it.
 *
 * Each phase keeps publishing at full speed for BENCH_BUS_SECONDS (else BENCH_SECONDS, 30) after
 * BENCH_BUS_WARMUP_SECONDS (else BENCH_WARMUP_SECONDS, 5) and counts what the bus acknowledged in that window:
 *  - rawBus: JetStream publish + durable consume + ack of single-event messages at once (raw-bus.ts), the yardstick;
 *  - gateway: events/s and calls/s of acknowledged Publish calls (the gateway answers once JetStream has them), CPU µs
 *    per event of the gateway, nats-server and this process (the client), RSS idle (before any load) and peak.
 * Bounded: BENCH_BUS_MAX_EVENTS (20 000 000) events at most; BENCH_BUS_CONCURRENCY (8) calls in flight.
 */
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Bus, STREAMS } from "@meridian/bus";
import { PublishRequestSchema, TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { freePort, startNatsServer, TEST_KEYS, testCredential } from "@meridian/testing";
import { pino } from "pino";
import { envNumber, fullLength, phaseLengths, sampleEvent, sustainedWindow } from "./common.js";
import { BENCH_PROCESS, natsPid, type RunningProcess, startProcess } from "./processes.js";
import { sustainRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { ProcessSampler } from "./sampler.js";

const PHASE = phaseLengths("BUS");
const MAX_EVENTS = envNumber("BENCH_BUS_MAX_EVENTS", 20_000_000, 1000, 1e9);
const CONCURRENCY = envNumber("BENCH_BUS_CONCURRENCY", 8, 1, 256);
const BATCH = 100;
const DEVICES_PER_BATCH = 10;
const logger = pino({ level: "warn" });

async function main() {
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let gateway: RunningProcess | undefined;
  try {
    await bus.ready;
    gateway = await startProcess(
      "gateway",
      "services/gateway",
      // The per-caller limit is lifted: the bench measures the path, not the limiter.
      { PORT: String(port), NATS_URL: nats.url, CALLER_RATE_LIMIT: "1000000", CALLER_RATE_BURST: "1000000" },
      `${url}/readyz`,
    );
    // Idle RSS of every process before any load.
    const sampler = new ProcessSampler({ gateway: gateway.proc.pid!, "nats-server": natsPid(nats), [BENCH_PROCESS]: process.pid }).start();
    const idleRssMiB = sampler.idleRssMiB();
    const rawSampler = new ProcessSampler({ "nats-server": natsPid(nats), [BENCH_PROCESS]: process.pid }).start();
    const rawBus = await sustainRawBus(bus, PHASE, rawSampler, logger);
    rawSampler.stop();

    const client = createClient(
      TelemetryService,
      createGrpcTransport({ baseUrl: url, interceptors: [testCredential(TEST_KEYS["telemetry:publish"])] }),
    );
    const templates = Array.from({ length: 200 }, (_, c) =>
      create(PublishRequestSchema, {
        events: Array.from({ length: BATCH }, (_, i) => sampleEvent(c * BATCH + i, `dev-${i % DEVICES_PER_BATCH}`, "gw")),
      }),
    );
    let calls = 0;
    let events = 0;
    let next = 0;
    let stop = false;
    const maxCalls = Math.floor(MAX_EVENTS / BATCH);
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      for (let c = next++; !stop && c < maxCalls; c = next++) {
        // Fresh ids on every call, so that nothing is a duplicate the bus drops.
        const template = templates[c % templates.length]!;
        await client.publish({ events: template.events.map((e) => ({ ...e, id: `${e.id}:${c}` })) });
        calls++;
        events += BATCH;
      }
    });
    const streamMessages = async () => (await bus.jsm().streams.info(STREAMS.telemetry)).state.messages;
    const messagesBefore = await streamMessages();
    sampler.resetPeak();
    const w = await sustainedWindow(PHASE, sampler, () => events, { calls: () => calls });
    stop = true;
    await Promise.all(workers);
    sampler.stop();
    const messagesAfter = await streamMessages();
    if (calls >= maxCalls) throw new Error(`bus: the publisher reached BENCH_BUS_MAX_EVENTS (${MAX_EVENTS}) before the window ended`);

    appendResult("bus", {
      fullLength: fullLength(PHASE),
      setup: {
        natsServer: "nats-server single node, file storage, loopback, its own process",
        gateway: "its own process (dist/main.js), API key checked on every call, per-caller rate limit lifted",
        client: `this process: Connect gRPC (h2c, binary), ${CONCURRENCY} calls in flight`,
        eventsPerCall: BATCH,
        devicesPerCall: DEVICES_PER_BATCH,
      },
      rawBus,
      gateway: {
        warmupSeconds: w.warmupSeconds,
        seconds: w.seconds,
        events: w.count,
        eventsPerSec: w.perSec,
        // Over every call of the phase, warm-up included: the stream's messages per Publish call.
        busMessagesPerCall: Number(((messagesAfter - messagesBefore) / Math.max(1, calls)).toFixed(2)),
        callsPerSec: w.alsoPerSec.calls,
        cpuMicrosPerEvent: w.cpuMicrosPer,
        cpuSeconds: w.cpuSeconds,
        benchProcessHolds: "the gRPC client building the calls",
        idleRssMiB,
        peakRssMiB: sampler.peakRssMiB(),
      },
      ratioGatewayToRawPublish: Number((w.perSec / rawBus.publishPerSec).toFixed(3)),
      ratioGatewayToRawConsumeAck: Number((w.perSec / rawBus.consumeAckPerSec).toFixed(3)),
    });
  } finally {
    await gateway?.stop();
    await bus.close();
    await nats.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

/**
 * npm run bench:publish — what authentication costs: the gateway's Publish rate with AUTH_MODE=disabled and with an API
 * key checked on every call, in the same run, at 1 event per call (the worst case: one check per event) and at 100.
 * The gateway runs as its own process against a local nats-server; each phase is BENCH_PUBLISH_SECONDS (30) after
 * BENCH_PUBLISH_WARMUP_SECONDS (5), with BENCH_PUBLISH_CONCURRENCY calls in flight. Prints one JSON object: events/s,
 * calls/s, the gateway's CPU per event and RSS per phase, the raw bus figure of the same run, and the auth on/off ratios.
 * The per-caller rate limit is lifted for the run (CALLER_RATE_LIMIT), so it measures the check, not the limit.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Bus } from "@meridian/bus";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { freePort, startNatsServer, TEST_KEYS, testCredential } from "@meridian/testing";
import { pino } from "pino";
import { machine, rate, sampleEvent } from "./common.js";
import { startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";

const SECONDS = Number(process.env.BENCH_PUBLISH_SECONDS ?? 30);
const WARMUP_SECONDS = Number(process.env.BENCH_PUBLISH_WARMUP_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_PUBLISH_CONCURRENCY ?? 32);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 30_000);
const logger = pino({ level: "warn" });

async function phase(natsUrl: string, auth: "disabled" | "required", batch: number, tag: string) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const gateway = await startProcess(
    "gateway",
    "services/gateway",
    {
      PORT: String(port),
      NATS_URL: natsUrl,
      AUTH_MODE: auth,
      CALLER_RATE_LIMIT: "1000000",
      CALLER_RATE_BURST: "1000000",
    },
    `${url}/readyz`,
  );
  try {
    const client = createClient(
      TelemetryService,
      createGrpcTransport({ baseUrl: url, interceptors: auth === "required" ? [testCredential(TEST_KEYS["telemetry:publish"])] : [] }),
    );
    let n = 0;
    let counting = false;
    let events = 0;
    let calls = 0;
    let stop = false;
    const worker = async (w: number) => {
      while (!stop) {
        const batchEvents = Array.from({ length: batch }, () => sampleEvent(n++, `dev-${w}`, tag));
        await client.publish({ events: batchEvents });
        if (counting) {
          events += batch;
          calls++;
        }
      }
    };
    const workers = Array.from({ length: CONCURRENCY }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
    counting = true;
    const cpu0 = gateway.cpuSeconds();
    const t0 = performance.now();
    let rssPeak = 0;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, gateway.rssMiB())), 500);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    counting = false;
    const ms = performance.now() - t0;
    const cpu = gateway.cpuSeconds() - cpu0;
    clearInterval(sampler);
    stop = true;
    await Promise.all(workers);
    return {
      auth,
      eventsPerCall: batch,
      eventsPerSec: rate(events, ms),
      callsPerSec: rate(calls, ms),
      gatewayCpuMicrosPerEvent: Math.round((cpu * 1e6) / Math.max(1, events)),
      gatewayCpuMicrosPerCall: Math.round((cpu * 1e6) / Math.max(1, calls)),
      gatewayRssPeakMiB: rssPeak,
    };
  } finally {
    await gateway.stop();
  }
}

async function main() {
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  try {
    await bus.ready;
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);
    const phases = [];
    for (const batch of [1, 100]) {
      // Off and on back to back, so both see the same machine.
      const off = await phase(nats.url, "disabled", batch, `off-${batch}`);
      const on = await phase(nats.url, "required", batch, `on-${batch}`);
      phases.push({ eventsPerCall: batch, off, on, ratioOnToOff: Number((on.eventsPerSec / off.eventsPerSec).toFixed(3)) });
    }
    console.log(
      JSON.stringify(
        {
          bench: "gateway-publish-auth",
          machine: machine(),
          seconds: SECONDS,
          warmupSeconds: WARMUP_SECONDS,
          concurrency: CONCURRENCY,
          rawBus: raw,
          phases,
        },
        null,
        2,
      ),
    );
  } finally {
    await bus.close();
    await nats.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

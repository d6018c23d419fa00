/**
 * npm run bench:publish — what authentication costs: the gateway's Publish rate with AUTH_MODE=disabled and with an API
 * key checked on every call, in the same run, at 1 event per call (the worst case: one check per event) and at 100.
 * The gateway runs as its own process (dist/main.js) against a nats-server process; the client is this process. Each
 * phase keeps BENCH_PUBLISH_CONCURRENCY (32) calls in flight for BENCH_PUBLISH_SECONDS (else BENCH_SECONDS, 30) after
 * BENCH_PUBLISH_WARMUP_SECONDS (else BENCH_WARMUP_SECONDS, 5), each in a gateway process of its own, and counts the
 * acknowledged events in the window. Appends one JSON object to tests/bench/results/publish.jsonl and prints it: per
 * phase events/s, calls/s, CPU µs per event of the gateway, nats-server and this process, the gateway's RSS idle and
 * peak; the raw bus figure of the same run (raw-bus.ts); the auth on/off ratios.
 * The per-caller rate limit is lifted for the run (CALLER_RATE_LIMIT), so it measures the check, not the limit.
 * Bounded: BENCH_PUBLISH_MAX_EVENTS (20 000 000) events per phase at most.
 * A fifth phase sends what HTTP publishers send (the job of bench:vs-node-red and bench:soak): Connect JSON over HTTP/1.1,
 * 100 events per call of 10 devices × 4 points (2 doubles, an int64, a bool), with an API key.
 * BENCH_PUBLISH_PHASES (raw,grpc,json) picks what runs: e.g. "json" alone while working on that path.
 * BENCH_GATEWAY_NODE_OPTIONS are added to the gateway processes' NODE_OPTIONS only (e.g. "--cpu-prof --cpu-prof-dir=DIR":
 * one profile per phase, written when the gateway exits).
 */
import { Agent, request } from "node:http";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Bus } from "@meridian/bus";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { freePort, type NatsServerHandle, startNatsServer, TEST_KEYS, testCredential } from "@meridian/testing";
import { pino } from "pino";
import { envNumber, fullLength, phaseLengths, sampleEvent, sustainedWindow } from "./common.js";
import { BENCH_PROCESS, natsPid, startProcess } from "./processes.js";
import { sustainRawBus } from "./raw-bus.js";
import { appendResult } from "./results.js";
import { ProcessSampler } from "./sampler.js";

const PHASE = phaseLengths("PUBLISH");
const CONCURRENCY = envNumber("BENCH_PUBLISH_CONCURRENCY", 32, 1, 1024);
const MAX_EVENTS = envNumber("BENCH_PUBLISH_MAX_EVENTS", 20_000_000, 1000, 1e9);
const logger = pino({ level: "warn" });
const PHASES = new Set((process.env.BENCH_PUBLISH_PHASES ?? "raw,grpc,json").split(",").map((p) => p.trim()));
for (const p of PHASES) if (!["raw", "grpc", "json"].includes(p)) throw new Error(`BENCH_PUBLISH_PHASES: "${p}" is not raw, grpc or json`);
const GATEWAY_NODE_OPTIONS = process.env.BENCH_GATEWAY_NODE_OPTIONS ?? "";

const JSON_EVENTS_PER_CALL = 100;
const JSON_DEVICES = 10;
const JSON_EPOCH_MS = Date.UTC(2026, 0, 1);

/** One Connect JSON PublishRequest of the HTTP job, events numbered from n0 (as bench:soak builds it). */
function jsonPublishBody(n0: number): string {
  const parts: string[] = [];
  for (let j = 0; j < JSON_EVENTS_PER_CALL; j++) {
    const n = n0 + j;
    parts.push(
      `{"source":{"platform":"PLATFORM_API","connection":"json","device":"dev-${n % JSON_DEVICES}"},` +
        `"observedTime":"${new Date(JSON_EPOCH_MS + n).toISOString()}",` +
        `"points":[{"name":"pressure","doubleValue":${4 + (n % 100) / 100}},{"name":"temperature","doubleValue":${80 + (n % 50) / 10}},` +
        `{"name":"cycle_count","intValue":"${n}"},{"name":"running","boolValue":${n % 7 !== 0}}]}`,
    );
  }
  return `{"events":[${parts.join(",")}]}`;
}

/** POSTs one Connect JSON Publish; rejects unless it is answered 200. */
function postJson(agent: Agent, port: number, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/meridian.telemetry.v1.TelemetryService/Publish",
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "connect-protocol-version": "1",
          "content-length": Buffer.byteLength(body),
          authorization: `Bearer ${TEST_KEYS["telemetry:publish"]}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.once("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`publish answered ${res.statusCode}: ${Buffer.concat(chunks).toString()}`)),
        );
        res.once("error", reject);
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

async function phase(nats: NatsServerHandle, auth: "disabled" | "required", batch: number, tag: string, wire: "grpc" | "json" = "grpc") {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const gateway = await startProcess(
    "gateway",
    "services/gateway",
    {
      PORT: String(port),
      NATS_URL: nats.url,
      AUTH_MODE: auth,
      CALLER_RATE_LIMIT: "1000000",
      CALLER_RATE_BURST: "1000000",
      ...(GATEWAY_NODE_OPTIONS ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} ${GATEWAY_NODE_OPTIONS}`.trim() } : {}),
    },
    `${url}/readyz`,
  );
  const sampler = new ProcessSampler({ gateway: gateway.proc.pid!, "nats-server": natsPid(nats), [BENCH_PROCESS]: process.pid }).start();
  try {
    const client = createClient(
      TelemetryService,
      createGrpcTransport({ baseUrl: url, interceptors: auth === "required" ? [testCredential(TEST_KEYS["telemetry:publish"])] : [] }),
    );
    let n = 0;
    let events = 0;
    let calls = 0;
    let stop = false;
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const worker = async (w: number) => {
      while (!stop && n < MAX_EVENTS) {
        if (wire === "json") {
          const n0 = n;
          n += batch;
          await postJson(agent, port, jsonPublishBody(n0));
        } else {
          const batchEvents = Array.from({ length: batch }, () => sampleEvent(n++, `dev-${w}`, tag));
          await client.publish({ events: batchEvents });
        }
        events += batch;
        calls++;
      }
    };
    const workers = Array.from({ length: CONCURRENCY }, (_, w) => worker(w));
    const w = await sustainedWindow(PHASE, sampler, () => events, { calls: () => calls });
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    if (n >= MAX_EVENTS) throw new Error(`publish: the phase reached BENCH_PUBLISH_MAX_EVENTS (${MAX_EVENTS}) before its window ended`);
    return {
      auth,
      wire,
      eventsPerCall: batch,
      seconds: w.seconds,
      events: w.count,
      eventsPerSec: w.perSec,
      callsPerSec: w.alsoPerSec.calls,
      cpuMicrosPerEvent: w.cpuMicrosPer,
      gatewayCpuMicrosPerCall: Number(((w.cpuSeconds.perProcess.gateway! * 1e6) / Math.max(1, w.also.calls!)).toFixed(1)),
      idleRssMiB: sampler.idleRssMiB(),
      peakRssMiB: sampler.peakRssMiB(),
    };
  } finally {
    sampler.stop();
    await gateway.stop();
  }
}

async function main() {
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  try {
    await bus.ready;
    let rawBus: Awaited<ReturnType<typeof sustainRawBus>> | undefined;
    if (PHASES.has("raw")) {
      const rawSampler = new ProcessSampler({ "nats-server": natsPid(nats), [BENCH_PROCESS]: process.pid }).start();
      rawBus = await sustainRawBus(bus, PHASE, rawSampler, logger);
      rawSampler.stop();
    }
    const phases = [];
    for (const batch of PHASES.has("grpc") ? [1, 100] : []) {
      // Off and on back to back, so both see the same machine.
      const off = await phase(nats, "disabled", batch, `off-${batch}`);
      const on = await phase(nats, "required", batch, `on-${batch}`);
      phases.push({ eventsPerCall: batch, off, on, ratioOnToOff: Number((on.eventsPerSec / off.eventsPerSec).toFixed(3)) });
    }
    const connectJson = PHASES.has("json") ? await phase(nats, "required", JSON_EVENTS_PER_CALL, "json", "json") : undefined;
    appendResult("publish", {
      fullLength: fullLength(PHASE),
      warmupSeconds: PHASE.warmupSeconds,
      seconds: PHASE.seconds,
      concurrency: CONCURRENCY,
      setup: {
        natsServer: "nats-server single node, file storage, loopback, its own process",
        gateway: "its own process per phase (dist/main.js), per-caller rate limit lifted",
        client: "this process: Connect gRPC (h2c, binary), events built per call (its CPU is the bench figure)",
        connectJson: `Connect JSON over HTTP/1.1 keep-alive, ${JSON_EVENTS_PER_CALL} events per call (${JSON_DEVICES} devices × 4 points), API key`,
        phases: [...PHASES].join(","),
        gatewayNodeOptions: GATEWAY_NODE_OPTIONS,
      },
      rawBus,
      phases,
      connectJson,
    });
  } finally {
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

/**
 * npm run bench:bus — raw JetStream publish + consume + ack with the Node client, and the gateway's
 * Publish (batches of 100) in the same run, on a throwaway nats-server. Prints one JSON object.
 */
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Bus, STREAMS } from "@meridian/bus";
import { PublishRequestSchema, TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { gatewayConfig, startGateway } from "@meridian/gateway";
import { startNatsServer, testCredential, testIdentitiesFile } from "@meridian/testing";
import { pino } from "pino";
import { machine, rate, sampleEvent } from "./common.js";
import { measureRawBus } from "./raw-bus.js";

const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 60_000);
const GATEWAY_EVENTS = Number(process.env.BENCH_GATEWAY_EVENTS ?? 100_000);
const BATCH = 100;
const DEVICES_PER_BATCH = 10;
const logger = pino({ level: "warn" });

async function main() {
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  await bus.ready;
  try {
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);

    // Gateway: Publish calls of 100 events (10 devices) over gRPC, several calls in flight.
    const gw = await startGateway(
      gatewayConfig.parse({ PORT: "0", NATS_URL: nats.url, AUTH_IDENTITIES_FILE: testIdentitiesFile() }),
      logger,
      { installSignalHandlers: false },
    );
    await gw.bus.ready;
    const client = createClient(TelemetryService, createGrpcTransport({ baseUrl: gw.service.url, interceptors: [testCredential()] }));
    const calls = Math.ceil(GATEWAY_EVENTS / BATCH);
    const requests = Array.from({ length: Math.min(calls, 200) }, (_, c) =>
      create(PublishRequestSchema, {
        events: Array.from({ length: BATCH }, (_, i) => sampleEvent(c * BATCH + i, `dev-${i % DEVICES_PER_BATCH}`, "gw")),
      }),
    );
    // Warm-up, then measure with fresh ids so nothing is a duplicate.
    await client.publish(requests[0]!);
    const concurrency = 8;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let c = next++; c < calls; c = next++) {
          const req = requests[c % requests.length]!;
          const events = req.events.map((e) => ({ ...e, id: `${e.id}:${c}` }));
          await client.publish({ events });
        }
      }),
    );
    const gatewayMs = performance.now() - t0;
    await gw.stop();

    const rawPublish = raw.publishPerSec;
    const gatewayEventsPerSec = rate(calls * BATCH, gatewayMs);
    console.log(
      JSON.stringify(
        {
          benchmark: "bus",
          machine: machine(),
          natsServer: "nats-server (Debian) single node, file storage, loopback",
          raw,
          gateway: {
            events: calls * BATCH,
            eventsPerCall: BATCH,
            devicesPerCall: DEVICES_PER_BATCH,
            busMessagesPerCall: DEVICES_PER_BATCH,
            concurrentCalls: concurrency,
            transport: "gRPC (h2c), binary",
            eventsPerSec: gatewayEventsPerSec,
            callsPerSec: rate(calls, gatewayMs),
          },
          ratioGatewayEventsToRawPublish: Number((gatewayEventsPerSec / rawPublish).toFixed(2)),
          telemetryStreamMessages: (await bus.jsm().streams.info(STREAMS.telemetry)).state.messages,
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

await main();
process.exit(0);

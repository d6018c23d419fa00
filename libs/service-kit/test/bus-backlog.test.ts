/**
 * The bus's backlog check as every bus service shows it: /metrics, the status report and the log, for a sink that
 * cannot deliver while its stream's limit discards what it holds (a stream small enough to make that quick).
 */
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { BusPermissionError, DurableConsumer, encodeBatch, makeBatch, serviceStatusBucket } from "@meridian/bus";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, type NatsServerHandle, startNatsServer, testIdentitiesFile, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { busErrors, serviceSettings, startBusService } from "../src/bus-service.js";

let nats: NatsServerHandle;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats.stop();
});

describe("a durable consumer's backlog in a bus service", () => {
  it("a discard of what the sink had not acknowledged shows in /metrics, the status report and the log", async () => {
    const { logger, lines } = captureLogger();
    const config = z
      .object(serviceSettings(0))
      .parse({ PORT: "0", NATS_URL: nats.url, INSTANCE_ID: "i-backlog", AUTH_IDENTITIES_FILE: testIdentitiesFile() });
    const handled: number[] = [];
    const svc = await startBusService(
      { name: "kit-backlog", version: "1.0.0" },
      config,
      logger,
      (bus) => ({
        routes: () => {},
        run: async (signal) => {
          // nats's StorageType.Memory and DiscardPolicy.Old by value: only libs/bus imports nats.
          await bus
            .jsm()
            .streams.add({ name: "SMALL", subjects: ["small.>"], storage: "memory" as never, discard: "old" as never, max_msgs: 4 });
          const consumer = new DurableConsumer(bus, {
            durable: "sink-a",
            stream: "SMALL",
            filterSubject: "small.a",
            maxAckPending: 2,
            logger,
            backoff: { initialMs: 60_000, maxMs: 60_000, multiplier: 1, jitter: 0 },
          });
          void consumer.run(async (d) => {
            handled.push(d.streamSequence);
            throw new Error("sink down");
          }, signal);
        },
      }),
      { installSignalHandlers: false, statusIntervalMs: 200 },
    );
    try {
      const bus = svc.bus;
      await bus.ready;
      await until(
        async () =>
          (await bus
            .jsm()
            .consumers.info("SMALL", "sink-a")
            .catch(() => undefined)) !== undefined,
        { what: "consumer" },
      );
      const publish = async (subject: string, count: number) => {
        for (let i = 0; i < count; i++) {
          const event = create(TelemetryEventSchema, {
            id: `${subject}-${i}`,
            source: { platform: Platform.API, connection: "c", device: "d" },
            observedTime: timestampNow(),
            points: [{ name: "v", value: { case: "doubleValue", value: i } }],
          });
          await bus.js().publish(subject, encodeBatch(makeBatch(event.id, [event])));
        }
      };
      await publish("small.a", 3);
      await until(() => handled.length === 2, { what: "two deliveries" });
      await bus.checkBacklog();
      await publish("small.b", 4);
      await bus.checkBacklog();

      const metrics = await (await fetch(`${svc.service.url}/metrics`)).text();
      expect(metrics).toContain('meridian_bus_consumer_discards_total{consumer="sink-a"} 1');
      expect(metrics).toMatch(/meridian_bus_consumer_backlog_age_seconds\{consumer="sink-a"\} \d/);
      const statuses = serviceStatusBucket(bus);
      await until(async () => ((await statuses.get("kit-backlog.i-backlog"))?.warnings.length ?? 0) > 0, { what: "status warning" });
      expect((await statuses.get("kit-backlog.i-backlog"))?.warnings[0]).toMatchObject({
        kind: "discarded_unacknowledged",
        subject: "sink-a",
      });
      expect(lines.some((l) => l.level === 40 && l.consumer === "sink-a" && String(l.msg).includes("discarded"))).toBe(true);
    } finally {
      await svc.stop();
    }
  });

  it("a NATS permission refusal is permission_denied at the API", () => {
    expect(busErrors(new BusPermissionError("telemetry.v1.idigi.x.y"))?.code).toBe(Code.PermissionDenied);
  });
});

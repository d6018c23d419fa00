import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { Bus, DEAD_LETTER_HEADERS, routeBucket, routeConsumerName, STREAMS } from "@meridian/bus";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { testTransport } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import { getJson, logger, type NatsServerHandle, startEmulator, startNatsServer, startSender, until } from "./harness.js";

/**
 * OMF_MAX_CONTAINERS_PER_ENDPOINT through the bus, omf-sender and the emulator: forged devices (each a new container,
 * in PI a new set of points) stop at the quota; their events are dead-lettered with the reason and counted, the devices
 * the endpoint already has keep flowing.
 */

const QUOTA = 3;
let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let bus: Bus;

const event = (device: string, i: number): TelemetryEvent =>
  create(TelemetryEventSchema, {
    id: `line-q:${device}:${i}`,
    source: { platform: Platform.API, connection: "line-q", device },
    observedTime: timestampFromDate(new Date(Date.UTC(2026, 0, 1) + i * 1000)),
    points: [{ name: "temperature", value: { case: "doubleValue", value: i } }],
  });

async function containers(): Promise<Array<{ id: string; valueCount: number }>> {
  const s = await getJson(`${emu.url}/_emulator/state?scope=eds`);
  return Object.values(s.body.scopes.eds.containers as Record<string, { id: string; valueCount: number }>).filter((c) =>
    c.id.startsWith("api.line-q."),
  );
}
const valuesOf = async (device: string) => (await containers()).find((c) => c.id.startsWith(`api.line-q.${device}.`))?.valueCount ?? 0;
const letters = async () => (await bus.jsm().streams.info(STREAMS.deadLetter)).state.messages;

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  const file = join(mkdtempSync(join(tmpdir(), "omf-quota-")), "endpoints.json");
  writeFileSync(file, JSON.stringify([{ id: "eds", kind: "eds", url: emu.url }]));
  sender = await startSender(nats, {
    OMF_ENDPOINTS_FILE: file,
    OMF_MAX_CONTAINERS_PER_ENDPOINT: String(QUOTA),
    OMF_LINGER_MS: "50",
    OMF_ACK_WAIT_MS: "3000",
  });
  bus = Bus.connect({ servers: nats.url, name: "test", logger });
  await bus.ready;
  await routeBucket(bus).put(
    "quota",
    create(RouteSchema, {
      id: "quota",
      source: { connection: "line-q" },
      sink: { platform: Platform.OMF, target: "eds" },
      options: { lingerMs: "50" },
    }),
  );
  // A new route's consumer starts at new events: publish only once it exists.
  await until(
    async () =>
      (await bus
        .jsm()
        .consumers.info(STREAMS.telemetry, routeConsumerName("quota", Platform.OMF))
        .catch(() => undefined)) !== undefined,
    { timeoutMs: 10_000, what: "the route's consumer" },
  );
});
afterAll(async () => {
  await sender?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

describe("OMF container quota per endpoint", () => {
  it("beyond the quota, events for new containers are dead-lettered with the reason and counted; existing containers keep flowing", async () => {
    for (const d of ["d1", "d2", "d3"]) await bus.publishEvents([event(d, 0)]);
    await until(async () => (await containers()).length === QUOTA, { timeoutMs: 10_000, what: `${QUOTA} containers` });

    // Two forged devices: one message each.
    await bus.publishEvents([event("forged-1", 0), event("forged-1", 1)]);
    await bus.publishEvents([event("forged-2", 0)]);
    await until(async () => (await letters()) === 2, { timeoutMs: 10_000, what: "two dead letters" });
    const letter = await bus.jsm().streams.getMessage(STREAMS.deadLetter, { seq: 1 });
    expect(letter.header.get(DEAD_LETTER_HEADERS.reason)).toBe(
      `OMF container quota: endpoint "eds" holds OMF_MAX_CONTAINERS_PER_ENDPOINT=${QUOTA} containers; 1 new container(s) refused`,
    );
    expect(JSON.parse(letter.header.get(DEAD_LETTER_HEADERS.detail))).toMatchObject({ refusedEvents: 2 });

    // The devices the endpoint has keep flowing.
    await bus.publishEvents([event("d1", 1), event("d1", 2)]);
    await until(async () => (await valuesOf("d1")) === 3, { timeoutMs: 10_000, what: "d1's new values" });

    // One message with an existing and a new device: the existing one's value lands, the message is dead-lettered.
    await bus.publishEvents([event("d2", 1), event("forged-3", 0)]);
    await until(async () => (await letters()) === 3, { timeoutMs: 10_000, what: "the third dead letter" });
    await until(async () => (await valuesOf("d2")) === 2, { timeoutMs: 10_000, what: "d2's value" });
    const mixed = await bus.jsm().streams.getMessage(STREAMS.deadLetter, { seq: 3 });
    expect(JSON.parse(mixed.header.get(DEAD_LETTER_HEADERS.detail)).refusedContainers[0]).toMatch(/^api\.line-q\.forged-3\./);

    expect((await containers()).map((c) => c.id.split(".")[2]).sort()).toEqual(["d1", "d2", "d3"]);
    const status = (await createClient(OmfSenderService, testTransport(sender.service.url)).getEndpointStatus({ id: "eds" })).status!;
    expect(status).toMatchObject({ containers: BigInt(QUOTA), maxContainers: BigInt(QUOTA), quotaRefusedEvents: 4n, failedEvents: 4n });
    expect(status.lastError).toContain("OMF_MAX_CONTAINERS_PER_ENDPOINT=3");
    const [route] = (await sender.pipelines.counters()).filter((p) => p.name === "quota");
    expect(route).toMatchObject({ received: 10n, delivered: 6n, failed: 4n });
  });
});

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Bus, consumerBacklog, DEAD_LETTER_HEADERS, deadLetterSubject, routeBucket, STREAMS } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import { getJson, type NatsServerHandle, startPipelineStack, until } from "./harness.js";

/**
 * A route's own OMF types and containers (route option omfMapping): events on the bus → omf-sender → the OMF
 * emulator's PI Web API, read back from what the emulator holds (its state document).
 */

/** As the OMF sample's Customizing section has it: the user's dynamic and static types, their own container ids. */
const MAPPING = {
  types: [
    {
      id: "MeterType",
      name: "Meter",
      classification: "dynamic",
      type: "object",
      properties: {
        Timestamp: { type: "string", format: "date-time", isindex: true },
        Power: { type: "number", format: "float64", uom: "W" },
        Pulses: { type: "integer", format: "int32" },
        Relay: { type: "string", enum: ["False", "True"] },
        Account: { type: "string" },
      },
    },
    {
      id: "MeterDevice",
      classification: "static",
      type: "object",
      properties: {
        DeviceId: { type: "string", isindex: true, isname: true },
        ConnectionStatus: { type: "integer", format: "int32" },
      },
    },
  ],
  containers: [
    {
      id: "meters.{device}",
      typeid: "MeterType",
      name: "{device} meter",
      properties: { Power: "power", Pulses: "pulses", Relay: "relay", Account: { template: "{connection}" } },
    },
  ],
  static: [
    {
      typeid: "MeterDevice",
      when: { "idigi.resource": "DeviceCore" },
      properties: { DeviceId: { template: "{device}" }, ConnectionStatus: { attribute: "dpConnectionStatus" } },
    },
  ],
};

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let bus: Bus;

const BASE = Date.UTC(2026, 5, 1);

/** Points in protobuf-es init form (plain objects). */
type PointsInit = NonNullable<Exclude<MessageInitShape<typeof TelemetryEventSchema>, TelemetryEvent>["points"]>;

function reading(connection: string, device: string, i: number, points: PointsInit): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:${i}`,
    source: { platform: Platform.IDIGI, connection, device },
    observedTime: timestampFromDate(new Date(BASE + i * 1000)),
    points,
  });
}
const dbl = (name: string, value: number) => ({ name, value: { case: "doubleValue" as const, value } });
const int = (name: string, value: number) => ({ name, value: { case: "intValue" as const, value: BigInt(value) } });
const bool = (name: string, value: boolean) => ({ name, value: { case: "boolValue" as const, value } });

function deviceCore(connection: string, device: string, status: string): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:core`,
    source: { platform: Platform.IDIGI, connection, device },
    observedTime: timestampFromDate(new Date(BASE)),
    attributes: { "idigi.resource": "DeviceCore", dpConnectionStatus: status, devConnectwareId: device },
  });
}

async function putRoute(id: string, connection: string, options: Record<string, string>, target = "pi") {
  await routeBucket(bus).put(
    id,
    create(RouteSchema, {
      id,
      source: { connection },
      sink: { platform: Platform.OMF, target },
      options: { lingerMs: "50", ...options },
    }),
  );
  await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 10_000, what: `consumer of route ${id}` });
}

type Container = { id: string; typeid: string; name?: string; valueCount: number; values: Array<Record<string, unknown>> };
// biome-ignore lint/suspicious/noExplicitAny: the emulator's state document
async function piState(scope: "pi" | "eds" = "pi"): Promise<any> {
  return (await getJson(`${emu.url}/_emulator/state?scope=${scope}`)).body.scopes[scope];
}
async function container(id: string, scope: "pi" | "eds" = "pi"): Promise<Container | undefined> {
  return Object.values((await piState(scope)).containers as Record<string, Container>).find((c) => c.id === id);
}
const counters = async (route: string) => (await sender.pipelines.counters()).find((p) => p.name === route);

beforeAll(async () => {
  ({ nats, emu, sender, bus } = await startPipelineStack());
});
afterAll(async () => {
  await sender?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

describe("route option omfMapping: the user's OMF types and containers", () => {
  it("values land in the user's type's properties and containers, DeviceCore records as static instances; the rest is skipped", async () => {
    await putRoute("meters", "acct-1", { omfMapping: JSON.stringify(MAPPING) });
    await bus.publishEvents([
      reading("acct-1", "m-1", 0, [dbl("power", 1500.5), int("pulses", 7), bool("relay", true), dbl("unmapped", 1)]),
      reading("acct-1", "m-1", 1, [dbl("power", 1490), dbl("pulses", 8)]),
    ]);
    await bus.publishEvents([
      reading("acct-1", "m-2", 0, [dbl("power", 10), bool("relay", false)]),
      // Nothing of it is mapped: skipped, not delivered.
      reading("acct-1", "m-2", 1, [dbl("humidity", 40)]),
    ]);
    await bus.publishEvents([deviceCore("acct-1", "m-1", "1")]);
    // A record the mapping does not take (no DeviceCore): skipped.
    await bus.publishEvents([
      create(TelemetryEventSchema, {
        id: "acct-1:m-1:file",
        source: { platform: Platform.IDIGI, connection: "acct-1", device: "m-1" },
        observedTime: timestampFromDate(new Date(BASE)),
        attributes: { "idigi.resource": "FileDataCore", name: "log.txt" },
      }),
    ]);
    await until(async () => (await counters("meters"))?.skipped === 2n && (await counters("meters"))?.delivered === 4n, {
      timeoutMs: 20_000,
      what: "4 delivered, 2 skipped",
    });
    const m1 = await container("meters.m-1");
    expect(m1).toMatchObject({ typeid: "MeterType", valueCount: 2 });
    expect(m1!.values).toEqual(
      [
        { Timestamp: "2026-06-01T00:00:00Z", Power: 1500.5, Pulses: 7, Relay: "True", Account: "acct-1" },
        // A whole double into the integer property is that integer.
        { Timestamp: "2026-06-01T00:00:01Z", Power: 1490, Pulses: 8, Account: "acct-1" },
      ].map((v) => expect.objectContaining(v)),
    );
    const m2 = await container("meters.m-2");
    expect(m2!.values).toEqual([expect.objectContaining({ Timestamp: "2026-06-01T00:00:00Z", Power: 10, Relay: "False" })]);
    const state = await piState();
    // Only the user's types: no generated meridian-* type for the unmapped points.
    expect(Object.keys(state.types).sort()).toEqual(["MeterDevice", "MeterType"]);
    const instances = Object.values(state.staticData as Record<string, Array<Record<string, unknown>>>).flat();
    expect(instances).toEqual([expect.objectContaining({ DeviceId: "m-1", ConnectionStatus: 1 })]);
    expect(await counters("meters")).toMatchObject({ received: 6n, delivered: 4n, skipped: 2n, failed: 0n });
  });

  it("to EDS (no static data): the user's container gets the values, a DeviceCore record only a static entry takes is skipped", async () => {
    await putRoute("meters-eds", "acct-4", { omfMapping: JSON.stringify(MAPPING) }, "eds");
    await bus.publishEvents([reading("acct-4", "m-4", 0, [dbl("power", 12.5), int("pulses", 3), bool("relay", true)])]);
    await bus.publishEvents([deviceCore("acct-4", "m-4", "1")]);
    await until(async () => (await counters("meters-eds"))?.skipped === 1n && (await counters("meters-eds"))?.delivered === 1n, {
      timeoutMs: 20_000,
      what: "1 delivered, 1 skipped",
    });
    const m4 = await container("meters.m-4", "eds");
    expect(m4).toMatchObject({ typeid: "MeterType", valueCount: 1 });
    expect(m4!.values).toEqual([expect.objectContaining({ Power: 12.5, Pulses: 3, Relay: "True", Account: "acct-4" })]);
    // The static type was never sent: SDS would only have dropped it.
    expect(Object.keys((await piState("eds")).types)).toEqual(["MeterType"]);
  });

  it("a double with a fraction for an integer property is refused (dead-lettered with the field), never rounded", async () => {
    await putRoute("meters-dl", "acct-2", { omfMapping: JSON.stringify(MAPPING) });
    await bus.publishEvents([reading("acct-2", "m-9", 0, [dbl("power", 5), dbl("pulses", 2.5)])]);
    await bus.publishEvents([reading("acct-2", "m-8", 0, [dbl("power", 6), dbl("pulses", 3)])]);
    const subject = deadLetterSubject("omf-meters-dl");
    await until(
      async () => {
        try {
          await bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: subject });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 15_000, what: "dead letter" },
    );
    const dl = await bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: subject });
    expect(dl.header.get(DEAD_LETTER_HEADERS.reason)).toContain(
      "options.omfMapping.containers[0].properties.Pulses: double 2.5 does not fit integer (int32): not a whole number",
    );
    await until(async () => (await container("meters.m-8"))?.valueCount === 1, { timeoutMs: 10_000, what: "the good event" });
    expect(await container("meters.m-9")).toBeUndefined();
    expect(await counters("meters-dl")).toMatchObject({ delivered: 1n, failed: 1n });
  });

  it("a bad mapping names the option and field in the route's status and holds the events until the route is corrected", async () => {
    const bad = { ...MAPPING, containers: [{ ...MAPPING.containers[0], properties: { Watts: "power" } }] };
    await putRoute("meters-bad", "acct-3", { omfMapping: JSON.stringify(bad) });
    await until(async () => /omfMapping/.test((await counters("meters-bad"))?.lastError ?? ""), { timeoutMs: 10_000, what: "status" });
    expect((await counters("meters-bad"))?.lastError).toContain(
      'options.omfMapping.containers[0].properties.Watts: not a property of type "MeterType"',
    );
    await bus.publishEvents([reading("acct-3", "m-5", 0, [dbl("power", 42)])]);
    await new Promise((r) => setTimeout(r, 1_500));
    // Not written anywhere: neither the user's container nor a generated one.
    expect(Object.values((await piState()).containers as Record<string, Container>).filter((c) => c.id.includes("m-5"))).toEqual([]);
    expect(await counters("meters-bad")).toMatchObject({ delivered: 0n, failed: 0n });
    // Corrected: the held event goes through (its redelivery is at most 30 s away).
    await routeBucket(bus).put(
      "meters-bad",
      create(RouteSchema, {
        id: "meters-bad",
        source: { connection: "acct-3" },
        sink: { platform: Platform.OMF, target: "pi" },
        options: { lingerMs: "50", omfMapping: JSON.stringify(MAPPING) },
      }),
    );
    await until(async () => (await container("meters.m-5"))?.valueCount === 1, { timeoutMs: 40_000, what: "held event delivered" });
    expect((await container("meters.m-5"))!.values).toEqual([expect.objectContaining({ Power: 42, Account: "acct-3" })]);
  }, 60_000);
});

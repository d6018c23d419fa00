/**
 * The bridge across SAS token renewal and expiry, against the IoT Central emulator and a real nats-server: events flow
 * from the bus the whole time, and each one must arrive in the emulator once, with its event id as message id.
 */
import { create, fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Bus, consumerBacklog, routeConsumerName } from "@meridian/bus";
import { CommandResponseSchema } from "@meridian/contracts/meridian/command/v1/command_pb";
import { ConnectionState } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { IotcEmulator } from "@meridian/emulator-iotc";
import { type NatsServerHandle, until } from "@meridian/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { IotcBridge } from "../src/service.js";
import {
  api,
  createEmulatorApplication,
  deadLetters,
  type EmulatorStack,
  emulatorBridge,
  routeInto,
  startEmulatorStack,
  telemetryEvents,
} from "./harness.js";

let nats: NatsServerHandle;
let bus: Bus;
let emu: IotcEmulator;
let caFile: string;

let stack: EmulatorStack;

beforeAll(async () => {
  stack = await startEmulatorStack();
  ({ nats, bus, emu, caFile } = stack);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

/** Publishes one event per device every `everyMs` until stopped; `published` are their ids. */
function feed(connection: string, devices: string[], everyMs = 100) {
  const published: string[] = [];
  let next = 0;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      for (const d of devices) {
        const [event] = telemetryEvents(connection, d, next, 1);
        await bus.publishEvents([event!]);
        published.push(event!.id);
      }
      next++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    published,
    /** Ids published for one device so far. */
    count: (device: string) => published.filter((id) => id.startsWith(`${connection}-${device}-`)).length,
    async stop(): Promise<string[]> {
      stopped = true;
      await done;
      return published;
    },
  };
}

function record(deviceId: string) {
  const d = emu.devices().find((x) => x.deviceId === deviceId);
  if (!d) throw new Error(`the emulator does not know ${deviceId}`);
  return d;
}

const messageIds = (prefix: string): string[] =>
  emu
    .telemetry()
    .filter((m) => m.deviceId.startsWith(prefix))
    .map((m) => m.messageId ?? "");

/**
 * Waits until every published event arrived and the route has nothing unacknowledged, then asserts exactly one
 * message per event: the lost ones and the duplicates (same id twice: a resend after a PUBACK lost in a reconnect)
 * are named in the failure, and reported.
 */
async function expectExactlyOnce(label: string, routeId: string, prefix: string, published: string[]): Promise<void> {
  await until(
    () => {
      const got = new Set(messageIds(prefix));
      return published.every((id) => got.has(id));
    },
    { timeoutMs: 20_000, what: `all ${published.length} events in the emulator` },
  );
  await until(async () => (await consumerBacklog(bus, routeConsumerName(routeId, Platform.IOT_CENTRAL)))?.ackPending === 0, {
    timeoutMs: 10_000,
    what: "everything acknowledged",
  });
  const ids = messageIds(prefix);
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  const duplicates = [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  const lost = published.filter((id) => !seen.has(id));
  const unexpected = [...seen.keys()].filter((id) => !published.includes(id));
  console.log(`[sas] ${label}: ${published.length} events, ${ids.length} messages, ${duplicates.length} duplicated, ${lost.length} lost`);
  expect(lost, "lost").toEqual([]);
  expect(unexpected, "messages that are no event").toEqual([]);
  expect(duplicates, "duplicated").toEqual([]);
  expect(ids).toHaveLength(published.length);
  expect(await deadLetters(bus, routeId)).toEqual([]);
}

/**
 * Invokes `reboot` on each device through the emulator (IoT Central's direct method) and answers it on the bus, as a
 * plant would: the device connection must be subscribed to methods and the bridge must put the command on the bus.
 */
async function commandRoundTrip(applicationId: string, deviceIds: string[]): Promise<void> {
  const watching = new AbortController();
  const delivered: boolean[] = [];
  const answering = (async () => {
    try {
      for await (const cmd of bus.watchCommands(
        { platform: Platform.IOT_CENTRAL, connection: applicationId, name: "reboot" },
        { signal: watching.signal, startTime: new Date(Date.now() - 1000) },
      )) {
        const payload = fromJson(ValueSchema, {
          rebooted: cmd.target?.device ?? "",
          delay: cmd.payload ? toJson(ValueSchema, cmd.payload) : null,
        });
        const r = await bus.respondToCommand(
          Platform.IOT_CENTRAL,
          applicationId,
          create(CommandResponseSchema, { requestId: cmd.requestId, status: 200, payload }),
        );
        delivered.push(r.delivered);
      }
    } catch (err) {
      if (!watching.signal.aborted) throw err;
    }
  })();
  try {
    const results = await Promise.all(deviceIds.map((id) => emu.invokeMethod(id, "reboot", { delay: 1 }, { timeoutSeconds: 10 })));
    expect(results).toEqual(deviceIds.map((id) => ({ status: 200, payload: { rebooted: id, delay: { delay: 1 } } })));
    // The bridge tells the responder once IoT Hub has the response, which can be after the emulator's caller got it.
    await until(() => delivered.length === deviceIds.length, { timeoutMs: 5000, what: "the responders told" });
    expect(delivered).toEqual(deviceIds.map(() => true));
  } finally {
    watching.abort();
    await answering;
  }
}

it("renewal: with a new token every ~5 s, N events arrive as N messages across 3 renewals per device, and a command still reaches the devices and is answered", async () => {
  const svc: IotcBridge = await emulatorBridge(nats.url, caFile, "sas-renew", {
    IOTC_TOKEN_VALIDITY_SECONDS: "60",
    IOTC_TOKEN_RENEWAL_MARGIN_SECONDS: "55",
  });
  const app = "sas-renew-app";
  const devices = ["a", "b"];
  const ids = devices.map((d) => `renew-${d}`);
  let events: ReturnType<typeof feed> | undefined;
  const tokens = new Map<string, string[]>(ids.map((id) => [id, []]));
  const sampler = setInterval(() => {
    for (const d of emu.devices()) {
      const seen = tokens.get(d.deviceId);
      if (seen && d.tokenExpiresAt && seen.at(-1) !== d.tokenExpiresAt) seen.push(d.tokenExpiresAt);
    }
  }, 50);
  try {
    await createEmulatorApplication(svc, emu, app);
    await routeInto(bus, "into-sas-renew", "renew", app);
    events = feed("renew", devices);
    // The first token and three renewals: four tokens, each valid to a later se, on four CONNECTs of one session.
    await until(() => ids.every((id) => tokens.get(id)!.length >= 4), { timeoutMs: 30_000, what: "3 token renewals per device" });
    for (const id of ids) {
      const seen = tokens.get(id)!.map((t) => Date.parse(t));
      expect(seen, `${id}: each renewal's se is later`).toEqual([...seen].sort((x, y) => x - y));
      expect(new Set(seen).size).toBe(seen.length);
      const r = record(id);
      expect(r.connects).toBeGreaterThanOrEqual(4);
      // Renewed before se: no connection was closed for an expired token.
      expect(r.tokenExpiries).toBe(0);
      expect(r.registrations).toBe(1);
    }
    // While events still flow, after the renewals: methods are still subscribed on the renewed connections.
    await commandRoundTrip(app, ids);
    const published = await events.stop();
    await expectExactlyOnce("renewal", "into-sas-renew", "renew-", published);
    console.log(`[sas] renewal: tokens per device ${ids.map((id) => `${id}=${tokens.get(id)!.length}`).join(" ")}`);
    // Through the bridge's API: connected all along (no drop recorded), each event acknowledged by IoT Hub once.
    for (const d of devices) {
      const got = (await api(svc.service.url).getDevice({ applicationId: app, deviceId: `renew-${d}` })).device;
      expect(got).toMatchObject({ state: ConnectionState.CONNECTED, lastError: "" });
      expect(got?.messagesSent).toBe(BigInt(events.count(d)));
    }
  } finally {
    clearInterval(sampler);
    await events?.stop();
    await svc.stop();
  }
}, 45_000);

it("expiry: the hub closes the connections as their tokens expire while events flow; the bridge connects again with new tokens and N events arrive as N messages", async () => {
  // Tokens valid an hour (the default): the emulator ends them early, as if their se had passed.
  const validitySeconds = 3600;
  const svc = await emulatorBridge(nats.url, caFile, "sas-expiry", { IOTC_TOKEN_VALIDITY_SECONDS: String(validitySeconds) });
  const app = "sas-expiry-app";
  const devices = ["a", "b"];
  const ids = devices.map((d) => `expire-${d}`);
  let events: ReturnType<typeof feed> | undefined;
  try {
    await createEmulatorApplication(svc, emu, app);
    await routeInto(bus, "into-sas-expiry", "expire", app);
    events = feed("expire", devices);
    await until(() => ids.every((id) => messageIds(id).length >= 5), { timeoutMs: 20_000, what: "messages from both devices" });

    const expireAndWait = async (which: string[], round: number) => {
      // The device SDK signs with se = floor(now) + validity: a token signed in the same second as the expired one is
      // that same token, which the hub refuses as expired (on IoT Hub se has passed by then, so a new one always
      // differs). Expire only tokens signed in an earlier second, so that the reconnect's token is a new one.
      await until(() => which.every((id) => Date.now() >= Date.parse(record(id).tokenExpiresAt!) - (validitySeconds - 1) * 1000), {
        timeoutMs: 2000,
        what: "the current tokens signed in an earlier second",
      });
      const before = new Map(which.map((id) => [id, record(id)]));
      const sentBefore = new Map(which.map((id) => [id, messageIds(id).length]));
      for (const id of which) expect(emu.expireToken(id), `${id} had a connection with a token`).toBe(true);
      // Reconnected with a token the hub accepts (the expired one is refused), and messages arrive on it.
      await until(
        () =>
          which.every((id) => {
            const r = record(id);
            const b = before.get(id)!;
            return r.connected && r.tokenExpiries === round && r.connects > b.connects && messageIds(id).length >= sentBefore.get(id)! + 5;
          }),
        { timeoutMs: 15_000, what: `round ${round}: reconnected with a new token, sending again` },
      );
      for (const id of which) {
        const r = record(id);
        expect(Date.parse(r.tokenExpiresAt!)).toBeGreaterThan(Date.parse(before.get(id)!.tokenExpiresAt!));
        expect(r.registrations).toBe(1);
      }
    };
    await expireAndWait(ids, 1);
    // And again, on the connection the first expiry left.
    await expireAndWait(ids, 2);
    await commandRoundTrip(app, ids);

    const published = await events.stop();
    await expectExactlyOnce("expiry", "into-sas-expiry", "expire-", published);
    for (const id of ids) console.log(`[sas] expiry: ${id} connects=${record(id).connects} tokenExpiries=${record(id).tokenExpiries}`);
    for (const d of devices) {
      const got = (await api(svc.service.url).getDevice({ applicationId: app, deviceId: `expire-${d}` })).device;
      expect(got?.state).toBe(ConnectionState.CONNECTED);
      expect(got?.messagesSent).toBe(BigInt(events.count(d)));
    }
  } finally {
    await events?.stop();
    await svc.stop();
  }
}, 40_000);

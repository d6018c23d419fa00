import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { timestampNow, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Command,
  CommandResponseSchema,
  CommandSchema,
  type WritablePropertyUpdate,
  WritablePropertyUpdateSchema,
} from "@meridian/contracts/meridian/command/v1/command_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, freePort, type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { DiscardPolicy, nanos } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Bus, STREAMS } from "./bus.js";
import { type CommandResponseMessage, InvalidCloudToDeviceMessageError } from "./cloud-to-device.js";
import { busFromConfig, natsSettings } from "./config.js";
import { BusUnavailableError } from "./errors.js";
import {
  type CloudToDeviceFilter,
  commandFilterSubject,
  commandResponseSubject,
  commandSubject,
  parseCommandResponseSubject,
  writablePropertyFilterSubject,
  writablePropertySubject,
} from "./subjects.js";

const logger = testLogger();

function command(requestId: string, device: string, name = "reboot", connection = "app-1"): Command {
  return create(CommandSchema, {
    requestId,
    target: { platform: Platform.IOT_CENTRAL, connection, device },
    name,
    payload: fromJson(ValueSchema, { delay: 5 }),
    receivedTime: timestampNow(),
  });
}

function update(device: string, name: string, version: number, value: unknown, component = ""): WritablePropertyUpdate {
  return create(WritablePropertyUpdateSchema, {
    target: { platform: Platform.IOT_CENTRAL, connection: "app-1", device },
    component,
    name,
    value: fromJson(ValueSchema, value as never),
    version: BigInt(version),
  });
}

async function consumerCount(bus: Bus): Promise<number> {
  return (await bus.jsm().streams.info(STREAMS.cloudToDevice)).state.consumer_count;
}

/** Collects what a watch yields until `count` arrived (then stops it), or its signal aborts. */
function collect<T>(iterate: (signal: AbortSignal) => AsyncIterable<T>, count: number): { items: T[]; done: Promise<void>; stop(): void } {
  const ac = new AbortController();
  const items: T[] = [];
  const done = (async () => {
    for await (const item of iterate(ac.signal)) {
      items.push(item);
      if (items.length === count) ac.abort();
    }
  })();
  return { items, done, stop: () => ac.abort() };
}

describe("cloud-to-device subjects", () => {
  it("builds the command, response and property subjects with escaped tokens", () => {
    expect(commandSubject(Platform.IOT_CENTRAL, "app-1", "dev.1", "thermostat*reboot")).toBe(
      "command.v1.iotc.app-1.dev%2E1.thermostat%2Areboot",
    );
    expect(commandResponseSubject(Platform.IOT_CENTRAL, "app-1", "rid.7")).toBe("command-response.v1.iotc.app-1.rid%2E7");
    expect(writablePropertySubject(Platform.IOT_CENTRAL, "app-1", "d 1")).toBe("property.v1.iotc.app-1.d%201");
    expect(parseCommandResponseSubject(commandResponseSubject(Platform.IOT_CENTRAL, "a.b", "r>1"))).toEqual({
      connection: "a.b",
      requestId: "r>1",
    });
    expect(parseCommandResponseSubject("telemetry.v1.iotc.a.b")).toBeUndefined();
  });

  it("turns empty filter fields into wildcards", () => {
    const all: CloudToDeviceFilter = {};
    expect(commandFilterSubject(all)).toBe("command.v1.*.*.*.*");
    expect(commandFilterSubject({ platform: Platform.IOT_CENTRAL, device: "d.1" })).toBe("command.v1.iotc.*.d%2E1.*");
    expect(writablePropertyFilterSubject({ connection: "app-1" })).toBe("property.v1.*.app-1.*");
  });
});

describe("cloud to device on a real nats-server", () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let other: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "c2d-test", logger });
    // Another instance of the same service: responses cross between the two.
    other = Bus.connect({ servers: nats.url, name: "c2d-other", logger });
    await Promise.all([bus.ready, other.ready]);
  });
  afterAll(async () => {
    await other?.close();
    await bus?.close();
    await nats?.stop();
  });

  it("declares CLOUD_TO_DEVICE: command and property subjects, file-backed, 24 h, 256 MiB, oldest discarded", async () => {
    const config = (await bus.jsm().streams.info(STREAMS.cloudToDevice)).config;
    expect(config.subjects).toEqual(["command.v1.>", "property.v1.>"]);
    expect(config.max_age).toBe(nanos(24 * 3600_000));
    expect(config.max_bytes).toBe(256 * 1024 ** 2);
    expect(config.discard).toBe(DiscardPolicy.Old);
    expect(config.storage).toBe("file");
  });

  it("stores a command once per request id and device, and refuses one without what its subject is made of", async () => {
    const first = await bus.publishCommand(command("r-1", "dev-a"));
    expect(first.duplicate).toBe(false);
    expect((await bus.publishCommand(command("r-1", "dev-a"))).duplicate).toBe(true);
    // IoT Hub's request ids are per connection: the same id from another device is another command.
    expect((await bus.publishCommand(command("r-1", "dev-b"))).duplicate).toBe(false);
    const stored = await bus.jsm().streams.getMessage(STREAMS.cloudToDevice, { seq: first.seq });
    expect(stored.subject).toBe("command.v1.iotc.app-1.dev-a.reboot");
    expect(stored.header.get("Meridian-Schema")).toBe("meridian.command.v1.Command");

    await expect(bus.publishCommand(create(CommandSchema, { requestId: "x", name: "n" }))).rejects.toThrow(
      InvalidCloudToDeviceMessageError,
    );
    await expect(bus.publishCommand(command("", "dev-a"))).rejects.toThrow(/request_id: required/);
    await expect(bus.publishCommand(command("r-2", "dev-a", ""))).rejects.toThrow(/name: required/);
    await expect(bus.publishCommand(command("r".repeat(257), "dev-a"))).rejects.toThrow(/request_id: longer than 256/);
  });

  it("watchCommands follows new commands matching its filter, in order, from another connection", async () => {
    const before = await consumerCount(other);
    const watch = collect(
      (signal) => other.watchCommands({ platform: Platform.IOT_CENTRAL, connection: "app-1", device: "w.1" }, { signal }),
      3,
    );
    await until(async () => (await consumerCount(other)) > before, { timeoutMs: 5000, intervalMs: 20 });
    for (let i = 0; i < 3; i++) {
      await bus.publishCommand(command(`w-${i}`, "w.1"));
      await bus.publishCommand(command(`w-${i}`, "w_1"));
      await bus.publishCommand(command(`w-${i}`, "w.1", "reboot", "app-2"));
    }
    await watch.done;
    expect(watch.items.map((c) => `${c.target?.device}/${c.requestId}`)).toEqual(["w.1/w-0", "w.1/w-1", "w.1/w-2"]);
    expect(watch.items[0]!.payload?.kind).toEqual({ case: "structValue", value: expect.anything() });
  });

  it("stores a writable-property update once per device, component, name and version; watchWritableProperties follows them", async () => {
    const before = await consumerCount(other);
    const watch = collect((signal) => other.watchWritableProperties({ connection: "app-1", device: "p-1" }, { signal }), 3);
    await until(async () => (await consumerCount(other)) > before, { timeoutMs: 5000, intervalMs: 20 });
    expect((await bus.publishWritablePropertyUpdate(update("p-1", "target", 5, 21.5))).duplicate).toBe(false);
    expect((await bus.publishWritablePropertyUpdate(update("p-1", "target", 5, 21.5))).duplicate).toBe(true);
    expect((await bus.publishWritablePropertyUpdate(update("p-1", "target", 5, 21.5, "thermostat1"))).duplicate).toBe(false);
    expect((await bus.publishWritablePropertyUpdate(update("p-1", "target", 6, 22))).duplicate).toBe(false);
    await bus.publishWritablePropertyUpdate(update("p-2", "target", 6, 22));
    await watch.done;
    expect(watch.items.map((u) => `${u.component}/${u.name}@${u.version}`)).toEqual(["/target@5", "thermostat1/target@5", "/target@6"]);
    await expect(bus.publishWritablePropertyUpdate(update("", "target", 1, 1))).rejects.toThrow(/target\.device: required/);
  });

  it("skips a stored message that does not decode instead of ending the watch", async () => {
    const before = await consumerCount(other);
    const watch = collect((signal) => other.watchCommands({ device: "garbage" }, { signal }), 1);
    await until(async () => (await consumerCount(other)) > before, { timeoutMs: 5000, intervalMs: 20 });
    await bus.js().publish(commandSubject(Platform.IOT_CENTRAL, "app-1", "garbage", "reboot"), Uint8Array.of(0xff, 0xff, 0xff));
    await bus.publishCommand(command("after-garbage", "garbage"));
    await watch.done;
    expect(watch.items.map((c) => c.requestId)).toEqual(["after-garbage"]);
  });

  it("a response reaches the subscribed instance, which says whether it delivered it", async () => {
    const ac = new AbortController();
    const seen: CommandResponseMessage[] = [];
    const responses = other.commandResponses(Platform.IOT_CENTRAL, undefined, ac.signal);
    const reading = (async () => {
      for await (const m of responses) {
        seen.push(m);
        // This instance holds only "held" requests.
        if (m.response.requestId.startsWith("held")) m.answer(true);
      }
    })();
    await other.connection().flush();

    const response = (requestId: string) => create(CommandResponseSchema, { requestId, status: 200, responder: "test" });
    expect(await bus.respondToCommand(Platform.IOT_CENTRAL, "app.1", response("held-1"))).toEqual({ delivered: true });
    const started = Date.now();
    expect(await bus.respondToCommand(Platform.IOT_CENTRAL, "app.1", response("elsewhere"), { waitMs: 300 })).toEqual({ delivered: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(seen.map((m) => [m.connection, m.response.requestId, m.response.responder])).toEqual([
      ["app.1", "held-1", "test"],
      ["app.1", "elsewhere", "test"],
    ]);

    // A plant publishing without waiting for an answer: one whose request id is not its subject's, or that is not a
    // CommandResponse, is skipped; one without a request id takes its subject's.
    const nc = bus.connection();
    nc.publish(commandResponseSubject(Platform.IOT_CENTRAL, "app-2", "mismatch"), toBinary(CommandResponseSchema, response("another")));
    nc.publish(commandResponseSubject(Platform.IOT_CENTRAL, "app-2", "bad"), Uint8Array.of(0xff, 0xff));
    nc.publish(commandResponseSubject(Platform.IOT_CENTRAL, "app-2", "plain"), new Uint8Array());
    await until(() => seen.length >= 3, { timeoutMs: 5000, intervalMs: 20 });
    await nc.flush();
    await other.connection().flush();
    expect(seen.slice(2).map((m) => [m.connection, m.response.requestId])).toEqual([["app-2", "plain"]]);
    expect(() => seen[2]!.answer(true)).not.toThrow();
    ac.abort();
    await reading;
    // The unsubscribe must reach the server before the next test asks "is anybody there?", or that request finds
    // this (now deaf) subscription and waits out its whole wait.
    await other.connection().flush();
  });

  it("a response nobody subscribes to is not delivered, at once", async () => {
    const started = Date.now();
    const r = await bus.respondToCommand(Platform.IOT_CENTRAL, "nobody", create(CommandResponseSchema, { requestId: "r" }), {
      waitMs: 15_000,
    });
    expect(r).toEqual({ delivered: false });
    // Not the 15 s wait; 5 s leaves room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(5000);
  }, 20_000);

  it("takes CLOUD_TO_DEVICE_MAX_BYTES from the settings (1 MiB to 1 TiB)", async () => {
    const schema = z.object(natsSettings);
    expect(schema.parse({}).CLOUD_TO_DEVICE_MAX_BYTES).toBe(256 * 1024 ** 2);
    for (const bad of ["1048575", String(1024 ** 4 + 1), "2.5", "big"]) {
      expect(schema.safeParse({ CLOUD_TO_DEVICE_MAX_BYTES: bad }).success, bad).toBe(false);
    }
    const own = await startNatsServer();
    const b = busFromConfig(schema.parse({ NATS_URL: own.url, CLOUD_TO_DEVICE_MAX_BYTES: String(8 * 1024 ** 2) }), "c2d-setting", logger);
    try {
      await b.ready;
      expect((await b.jsm().streams.info(STREAMS.cloudToDevice)).config.max_bytes).toBe(8 * 1024 ** 2);
    } finally {
      await b.close();
      await own.stop();
    }
  });
});

describe("cloud to device while NATS is down", () => {
  it("publishing and responding throw BusUnavailableError", async () => {
    const b = Bus.connect({ servers: `nats://127.0.0.1:${await freePort()}`, name: "c2d-down", logger });
    try {
      await expect(b.publishCommand(command("r", "d"))).rejects.toThrow(BusUnavailableError);
      await expect(b.publishWritablePropertyUpdate(update("d", "p", 1, 1))).rejects.toThrow(BusUnavailableError);
      await expect(b.respondToCommand(Platform.IOT_CENTRAL, "a", create(CommandResponseSchema, { requestId: "r" }))).rejects.toThrow(
        BusUnavailableError,
      );
      expect(() => b.commandResponses(Platform.IOT_CENTRAL, undefined, new AbortController().signal)).toThrow(BusUnavailableError);
    } finally {
      await b.close();
    }
  });
});

describe("a NATS user that may not read CLOUD_TO_DEVICE", () => {
  it("still gets its bus ready, and says once that it does not use the stream", async () => {
    const nats = await startNatsServer({
      config: `authorization { users: [
        { user: limited, password: pw, permissions: {
          publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.TELEMETRY", "$JS.API.STREAM.CREATE.TELEMETRY",
                              "$JS.API.STREAM.INFO.DEADLETTER", "$JS.API.STREAM.CREATE.DEADLETTER"] }
          subscribe: { allow: ["_INBOX.limited.>"] } } }
      ] }`,
    });
    const logs = captureLogger();
    const b = Bus.connect({ servers: nats.url, name: "limited", user: "limited", pass: "pw", logger: logs.logger });
    try {
      await b.ready;
      expect(b.connected).toBe(true);
      const said = logs.lines.filter((l) => String(l.msg).includes("may not declare the stream") && l.stream === STREAMS.cloudToDevice);
      expect(said).toHaveLength(1);
    } finally {
      await b.close();
      await nats.stop();
    }
  });
});

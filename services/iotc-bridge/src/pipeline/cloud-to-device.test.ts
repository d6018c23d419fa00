import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Bus,
  BusUnavailableError,
  type CommandResponseMessage,
  type DeadLetter,
  InvalidCloudToDeviceMessageError,
} from "@meridian/bus";
import type { Command, CommandResponse, WritablePropertyUpdate } from "@meridian/contracts/meridian/command/v1/command_pb";
import { testLogger, until } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import type { DirectMethodRequest } from "../platform/types.js";
import { CloudToDevice, DEAD_LETTER_CONSUMER, MAX_COMMAND_RESPONSE_BYTES, MAX_PENDING_COMMANDS } from "./cloud-to-device.js";

/** The bus as CloudToDevice uses it, recording what it was given; `fail` makes the next publishes throw. */
class FakeBus {
  connected = true;
  fail: Error | undefined;
  commands: Command[] = [];
  updates: WritablePropertyUpdate[] = [];
  deadLetters: DeadLetter[] = [];
  responses: { connection: string; response: CommandResponse }[] = [];
  subscribeFailures = 0;
  private feed: ((m: CommandResponseMessage) => void) | undefined;

  async publishCommand(cmd: Command) {
    if (this.fail) throw this.fail;
    this.commands.push(cmd);
    return { seq: this.commands.length, duplicate: false };
  }
  async publishWritablePropertyUpdate(u: WritablePropertyUpdate) {
    if (this.fail) throw this.fail;
    this.updates.push(u);
    return { seq: this.updates.length, duplicate: false };
  }
  async publishDeadLetter(letter: DeadLetter) {
    this.deadLetters.push(letter);
    return { seq: 1, duplicate: false };
  }
  async respondToCommand(_platform: unknown, connection: string, response: CommandResponse) {
    this.responses.push({ connection, response });
    return { delivered: false };
  }
  commandResponses(_platform: unknown, _connection: unknown, signal: AbortSignal): AsyncIterable<CommandResponseMessage> {
    if (this.subscribeFailures > 0) {
      this.subscribeFailures--;
      throw new BusUnavailableError();
    }
    const queue: CommandResponseMessage[] = [];
    let wake: (() => void) | undefined;
    this.feed = (m) => {
      queue.push(m);
      wake?.();
    };
    signal.addEventListener("abort", () => wake?.());
    return (async function* () {
      while (!signal.aborted) {
        const m = queue.shift();
        if (m) yield m;
        else await new Promise<void>((r) => (wake = r));
      }
    })();
  }
  get listening(): boolean {
    return this.feed !== undefined;
  }
  /** A response arriving on the bus; resolves with what this instance answered (undefined: it stayed silent). */
  deliver(connection: string, response: Partial<CommandResponse>): Promise<boolean | undefined> {
    return new Promise((resolve) => {
      this.feed!({
        connection,
        response: { requestId: "", status: 0, responder: "", ...response } as CommandResponse,
        answer: (delivered) => resolve(delivered),
      });
      setTimeout(() => resolve(undefined), 200);
    });
  }
}

function setup() {
  const fake = new FakeBus();
  const c2d = new CloudToDevice({ bus: fake as unknown as Bus, logger: testLogger(), instance: "unit" });
  return { fake, c2d, h: c2d.handlers("app-1", "dev-1", "completed") };
}

function directMethod(waitMs = 30_000, payload: unknown = { a: 1 }) {
  const answers: [number, unknown][] = [];
  const request: DirectMethodRequest = {
    requestId: "7",
    name: "reboot",
    payload,
    deadline: new Date(Date.now() + waitMs),
    async respond(status, body) {
      answers.push([status, body]);
    },
  };
  return { request, answers };
}

describe("CloudToDevice", () => {
  it("gives each command its own request id, since IoT Hub's $rid counts per connection", async () => {
    const { fake, c2d, h } = setup();
    h.command!(directMethod().request);
    h.command!(directMethod().request);
    await until(() => fake.commands.length === 2);
    const [x, y] = fake.commands;
    expect(x!.requestId).not.toBe(y!.requestId);
    expect(x!.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(toJson(ValueSchema, x!.payload!)).toEqual({ a: 1 });
    await c2d.stop();
  });

  it("answers a command whose publish fails 503, or 400 when it can never be published", async () => {
    const { fake, c2d, h } = setup();
    fake.fail = new BusUnavailableError("publish to command.v1… failed: timeout");
    const down = directMethod();
    h.command!(down.request);
    await until(() => down.answers.length === 1);
    expect(down.answers[0]![0]).toBe(503);
    fake.fail = new InvalidCloudToDeviceMessageError("name", "required");
    const invalid = directMethod();
    h.command!(invalid.request);
    await until(() => invalid.answers.length === 1);
    expect(invalid.answers[0]).toEqual([400, { error: "Meridian could not pass the command to the plant: name: required" }]);
    expect(c2d.pendingCommands).toBe(0);
  });

  it("a response from the bus goes to IoT Hub once; unset status is 200; the holder says it delivered, others stay silent", async () => {
    const { fake, c2d, h } = setup();
    void c2d.run(new AbortController().signal);
    await until(() => fake.listening);
    const { request, answers } = directMethod();
    h.command!(request);
    await until(() => fake.commands.length === 1);
    const requestId = fake.commands[0]!.requestId;
    expect(await fake.deliver("app-2", { requestId })).toBeUndefined(); // another application's request id
    expect(await fake.deliver("app-1", { requestId })).toBe(true);
    expect(await fake.deliver("app-1", { requestId, status: 500 })).toBeUndefined();
    expect(answers).toEqual([[200, null]]);
    await c2d.stop();
  });

  it("a response over IoT Hub's 128 KiB is answered 500 instead, and reported undelivered", async () => {
    const { fake, c2d, h } = setup();
    const { request, answers } = directMethod();
    h.command!(request);
    await until(() => fake.commands.length === 1);
    const big = "x".repeat(MAX_COMMAND_RESPONSE_BYTES);
    expect(await c2d.respond("app-1", fake.commands[0]!.requestId, 200, big, "api")).toEqual({ delivered: false });
    expect(answers[0]![0]).toBe(500);
    expect(answers[0]![1]).toEqual({ error: expect.stringMatching(/131074 bytes, over IoT Hub's 131072-byte limit/) });
  });

  it("a response for a command not held here is sent on the bus for the instance that holds it", async () => {
    const { fake, c2d } = setup();
    expect(await c2d.respond("app-1", "elsewhere", 202, { started: true }, "operator")).toEqual({ delivered: false });
    const sent = fake.responses[0]!;
    expect([sent.connection, sent.response.requestId, sent.response.status, sent.response.responder]).toEqual([
      "app-1",
      "elsewhere",
      202,
      "operator",
    ]);
    expect(toJson(ValueSchema, sent.response.payload!)).toEqual({ started: true });
  });

  it(`holds at most ${MAX_PENDING_COMMANDS} commands; past that, and after stop(), commands are answered 503`, async () => {
    const { fake, c2d, h } = setup();
    for (let i = 0; i < MAX_PENDING_COMMANDS; i++) h.command!(directMethod().request);
    const over = directMethod();
    h.command!(over.request);
    await until(() => over.answers.length === 1);
    expect(over.answers[0]![0]).toBe(503);
    expect(c2d.pendingCommands).toBe(MAX_PENDING_COMMANDS);
    await until(() => fake.commands.length === MAX_PENDING_COMMANDS);

    const held = directMethod();
    await c2d.stop(); // answers the 10 000 held ones 503 too
    expect(c2d.pendingCommands).toBe(0);
    h.command!(held.request);
    await until(() => held.answers.length === 1);
    expect(held.answers[0]).toEqual([503, { error: "Meridian is shutting down" }]);
  });

  it("a writable-property change the bus cannot store rejects, so the device client leaves it unacknowledged", async () => {
    const { fake, h } = setup();
    fake.fail = new BusUnavailableError();
    await expect(h.writableProperty!({ name: "p", value: 1, version: 3 })).rejects.toThrow(BusUnavailableError);
    fake.fail = undefined;
    await expect(h.writableProperty!({ name: "p", value: 1, version: 3.5 })).rejects.toThrow(/not an integer/);
    expect(fake.updates).toHaveLength(0);
  });

  it("an offline command that can never be stored is dead-lettered and completed; one the bus is down for is rejected", async () => {
    const { fake, h } = setup();
    fake.fail = new InvalidCloudToDeviceMessageError("name", "required");
    await h.offlineCommand!({ messageId: "m-1", name: "", payload: { x: 1 }, properties: { "method-name": "" } });
    expect(fake.deadLetters.map((d) => [d.consumer, d.reason, d.detail])).toEqual([
      [DEAD_LETTER_CONSUMER, "offline command cannot be stored on the bus", "name: required"],
    ]);
    expect(JSON.parse(Buffer.from(fake.deadLetters[0]!.data).toString())).toMatchObject({ applicationId: "app-1", deviceId: "dev-1" });
    fake.fail = new BusUnavailableError();
    await expect(h.offlineCommand!({ name: "reset", payload: null, properties: {} })).rejects.toThrow(BusUnavailableError);
  });

  it("run() subscribes again when the bus was not there yet", async () => {
    const { fake, c2d } = setup();
    fake.subscribeFailures = 2;
    const ac = new AbortController();
    const running = c2d.run(ac.signal);
    await until(() => fake.listening, { timeoutMs: 5000 });
    ac.abort();
    await running;
  });
});

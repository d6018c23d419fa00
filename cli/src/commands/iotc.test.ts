import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { CommandSchema } from "@meridian/contracts/meridian/command/v1/command_pb";
import {
  ConnectionState,
  DeviceSchema,
  IotcBridgeService,
  type RespondCommandRequest,
  type SendTelemetryRequest,
} from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { EXIT } from "../kit/exit.js";
import { registerIotc, runResponder } from "./iotc.js";
import { runVerb } from "./testdata/harness.js";

interface Seen {
  sent?: SendTelemetryRequest;
  responses: RespondCommandRequest[];
}

function service(seen: Seen, delivered = true) {
  return (router: ConnectRouter) =>
    router.service(IotcBridgeService, {
      sendTelemetry: (req) => {
        seen.sent = req;
        return { messageId: req.messageId || "m-1" };
      },
      listDevices: () => ({
        devices: [
          create(DeviceSchema, {
            applicationId: "plant",
            deviceId: "pump-01",
            assignedHub: "hub-1.azure-devices.net",
            state: ConnectionState.CONNECTED,
            credentialKind: "group_key",
            messagesSent: 42n,
          }),
          create(DeviceSchema, {
            applicationId: "plant",
            deviceId: "pump-02",
            state: ConnectionState.FAILED,
            lastError: "device disabled",
          }),
        ],
      }),
      async *watchCommands() {
        yield {
          command: create(CommandSchema, {
            requestId: "r-1",
            target: { platform: Platform.IOT_CENTRAL, connection: "plant", device: "pump-01" },
            name: "reboot",
            payload: create(ValueSchema, { kind: { case: "numberValue", value: 5 } }),
            receivedTime: timestampFromDate(new Date("2026-01-02T03:04:05Z")),
            deadline: timestampFromDate(new Date(Date.now() + 30_000)),
          }),
        };
      },
      respondCommand: (req) => {
        seen.responses.push(req);
        return { delivered };
      },
    });
}

describe("iotc send", () => {
  it("sends the JSON object with its component, properties and time", async () => {
    const seen: Seen = { responses: [] };
    const r = await runVerb(registerIotc, service(seen), [
      "iotc",
      "send",
      "plant",
      "pump-01",
      '{"temperature": 21.5}',
      "--component",
      "thermostat1",
      "-p",
      "source=lab",
      "-p",
      "line=2",
      "--time",
      "2026-01-02T03:04:05Z",
    ]);
    expect(r.code).toBe(0);
    expect(seen.sent).toMatchObject({
      applicationId: "plant",
      deviceId: "pump-01",
      payload: { temperature: 21.5 },
      component: "thermostat1",
      properties: { source: "lab", line: "2" },
    });
    expect(seen.sent?.observedTime?.seconds).toBe(BigInt(Date.parse("2026-01-02T03:04:05Z") / 1000));
    expect(r.stdout).toMatch(/Message id:\s+m-1/);
  });

  it("refuses a payload that is not a JSON object, and a bad property (exit 2, nothing sent)", async () => {
    const seen: Seen = { responses: [] };
    const arr = await runVerb(registerIotc, service(seen), ["iotc", "send", "plant", "pump-01", "[1,2]"]);
    expect(arr.code).toBe(EXIT.usage);
    expect(arr.error).toBe("the payload: must be a JSON object, not an array");
    const bad = await runVerb(registerIotc, service(seen), ["iotc", "send", "plant", "pump-01", "{temp"]);
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.error).toMatch(/^the payload: not JSON/);
    const prop = await runVerb(registerIotc, service(seen), ["iotc", "send", "plant", "pump-01", "{}", "-p", "novalue"]);
    expect(prop.code).toBe(EXIT.usage);
    expect(prop.error).toBe('--property: "novalue" is not key=value');
    expect(seen.sent).toBeUndefined();
  });
});

describe("iotc devices list", () => {
  it("renders each device's connection state", async () => {
    const r = await runVerb(registerIotc, service({ responses: [] }), ["iotc", "devices", "list", "plant"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^DEVICE\s+STATE\s+HUB\s+MODEL\s+CREDENTIAL\s+SENT\s+LAST ACTIVITY\s+SOURCE\s+LAST ERROR$/);
    expect(lines[1]).toMatch(/^pump-01\s+connected\s+hub-1\.azure-devices\.net\s+group_key\s+42$/);
    expect(lines[2]).toMatch(/^pump-02\s+failed\s+0\s+device disabled$/);
  });
});

describe("iotc commands", () => {
  it("watch prints each command; -o json is NDJSON of each WatchCommands response", async () => {
    const t = await runVerb(registerIotc, service({ responses: [] }), ["iotc", "commands", "watch", "--app", "plant"]);
    expect(t.stdout).toContain("2026-01-02T03:04:05.000Z plant/pump-01 command reboot [r-1] 5");
    const j = await runVerb(registerIotc, service({ responses: [] }), ["iotc", "commands", "watch"], { format: "json" });
    const lines = j.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ command: { requestId: "r-1", name: "reboot", payload: 5 } });
  });

  it("watch --exec answers each command with what the script prints, the command on its standard input", async () => {
    const seen: Seen = { responses: [] };
    const script = `node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const c=JSON.parse(s);console.log(JSON.stringify({status:201,payload:{echo:c.name,arg:c.payload}}))})'`;
    const r = await runVerb(registerIotc, service(seen), ["iotc", "commands", "watch", "--exec", script]);
    expect(r.code).toBe(0);
    expect(seen.responses).toHaveLength(1);
    expect(seen.responses[0]).toMatchObject({ applicationId: "plant", requestId: "r-1", status: 201 });
    expect(toJson(ValueSchema, seen.responses[0]!.payload!)).toEqual({ echo: "reboot", arg: 5 });
    expect(r.stdout).toContain("answered r-1 with 201");
  });

  it("a script that fails answers 500; its plain output is the payload", async () => {
    expect(await runResponder("echo busy; exit 3", {}, 5000)).toEqual({ status: 500, payload: "busy" });
    expect(await runResponder("true", {}, 5000)).toEqual({ status: 200, payload: null });
  });

  it("respond: not delivered (answered already or too late) exits 1; --status out of bounds exits 2", async () => {
    const seen: Seen = { responses: [] };
    const late = await runVerb(registerIotc, service(seen, false), [
      "iotc",
      "commands",
      "respond",
      "plant",
      "r-1",
      "--payload",
      '{"ok": true}',
    ]);
    expect(late.code).toBe(EXIT.failed);
    expect(late.error).toContain("command r-1: not delivered");
    expect(toJson(ValueSchema, seen.responses[0]!.payload!)).toEqual({ ok: true });
    const bad = await runVerb(registerIotc, service(seen), ["iotc", "commands", "respond", "plant", "r-1", "--status", "700"]);
    expect(bad.code).toBe(EXIT.usage);
    expect(seen.responses).toHaveLength(1);
  });
});

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  AckOption,
  Compression,
  type CreateMonitorRequest,
  IdigiListenerService,
  MonitorSchema,
  PayloadFormat,
  SessionSchema,
  SessionState,
  type WatchEventsRequest,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { EXIT } from "../kit/exit.js";
import { registerIdigi } from "./idigi.js";
import { runVerb } from "./testdata/harness.js";

const RECORD = `{"Document":{"Msg":{"topic":"1210/DeviceCore/7201/0","group":"*","operation":"UPDATE","timestamp":"2012-06-12T03:18:45.381Z","DeviceCore":{"devConnectwareId":"00000000-00000000-00409DFF-FF49B68F","dpConnectionStatus":0}}}}`;

function service(seen: { create?: CreateMonitorRequest; watch?: WatchEventsRequest }) {
  return (router: ConnectRouter) =>
    router.service(IdigiListenerService, {
      createMonitor: (req) => {
        seen.create = req;
        return {
          monitor: create(MonitorSchema, {
            id: "7201",
            topics: req.topics,
            transport: "tcp",
            format: req.format,
            compression: Compression.ZLIB,
            batchSize: req.batchSize,
            batchDurationSeconds: req.batchDurationSeconds,
            status: "ACTIVE",
          }),
        };
      },
      listMonitors: () => ({
        monitors: [
          create(MonitorSchema, {
            id: "7201",
            topics: ["DeviceCore", "FileDataCore"],
            transport: "tcp",
            format: PayloadFormat.JSON,
            compression: Compression.ZLIB,
            batchSize: 1,
            batchDurationSeconds: 60,
            status: "ACTIVE",
          }),
        ],
      }),
      listSessions: () => ({
        sessions: [
          create(SessionSchema, {
            monitorId: "7201",
            state: SessionState.CONNECTED,
            connection: { host: "push.example", port: 3201, tls: true },
            receivedEvents: 12n,
            deliveredEvents: 10n,
            duplicateEvents: 2n,
            instance: "idigi-0",
          }),
        ],
      }),
      async *watchEvents(req) {
        seen.watch = req;
        yield {
          monitor: create(MonitorSchema, { id: "7201", topics: ["DeviceCore"] }),
          session: create(SessionSchema, { monitorId: "7201", state: SessionState.CONNECTED }),
        };
        yield {
          event: {
            id: "e1",
            source: { platform: Platform.IDIGI, connection: "7201", device: "00000000-00000000-00409DFF-FF49B68F" },
            observedTime: timestampFromDate(new Date("2012-06-12T03:18:45.381Z")),
          },
          rawPayload: RECORD,
          rawFormat: PayloadFormat.JSON,
        };
      },
    });
}

describe("idigi monitors create", () => {
  it("takes the seed's defaults: DeviceCore, gzip, json, batch size 1, batch duration 60", async () => {
    const seen: { create?: CreateMonitorRequest } = {};
    const r = await runVerb(registerIdigi, service(seen), ["idigi", "monitors", "create"]);
    expect(r.code).toBe(0);
    expect(seen.create).toMatchObject({
      topics: ["DeviceCore"],
      batchSize: 1,
      batchDurationSeconds: 60,
      compression: Compression.GZIP,
      format: PayloadFormat.JSON,
      ackOption: AckOption.EXPLICIT,
      autoReplay: true,
    });
    expect(r.stdout).toMatch(/7201\s+DeviceCore\s+tcp\s+json\s+zlib\s+1\s+60\s+ACTIVE/);
  });

  it("takes the seed's flags, topics comma-separated or repeated", async () => {
    const seen: { create?: CreateMonitorRequest } = {};
    const r = await runVerb(registerIdigi, service(seen), [
      "idigi",
      "monitors",
      "create",
      "--topics",
      "DeviceCore,FileDataCore",
      "-t",
      "DataPoint/dev1/*",
      "--batch-size",
      "10",
      "--batch-duration",
      "5",
      "--compression",
      "none",
      "--format",
      "xml",
      "--no-auto-replay",
    ]);
    expect(r.code).toBe(0);
    expect(seen.create).toMatchObject({
      topics: ["DeviceCore", "FileDataCore", "DataPoint/dev1/*"],
      batchSize: 10,
      batchDurationSeconds: 5,
      compression: Compression.NONE,
      format: PayloadFormat.XML,
      autoReplay: false,
    });
  });

  it("refuses a bad flag naming it and its bounds (exit 2), nothing created", async () => {
    const seen: { create?: CreateMonitorRequest } = {};
    for (const [args, text] of [
      [["--batch-size", "0"], '--batch-size: "0" is not a whole number from 1 to 65535'],
      [["--batch-duration", "86401"], "--batch-duration"],
      [["--compression", "bzip2"], '--compression: "bzip2" is not one of none, gzip, zlib'],
      [["--format", "csv"], "--format"],
    ] as const) {
      const r = await runVerb(registerIdigi, service(seen), ["idigi", "monitors", "create", ...args]);
      expect(r.code, args.join(" ")).toBe(EXIT.usage);
      expect(r.error).toContain(text);
    }
    expect(seen.create).toBeUndefined();
  });
});

describe("idigi reads", () => {
  it("monitors list and sessions list render their tables; -o json is proto JSON", async () => {
    const m = await runVerb(registerIdigi, service({}), ["idigi", "monitors", "list"]);
    expect(m.stdout.split("\n")[0]).toMatch(/^ID\s+TOPICS\s+TRANSPORT\s+FORMAT\s+COMPRESSION\s+BATCH\s+DURATION\s+STATUS$/);
    expect(m.stdout).toMatch(/7201\s+DeviceCore,FileDataCore\s+tcp/);
    const s = await runVerb(registerIdigi, service({}), ["idigi", "sessions", "list"]);
    expect(s.stdout).toMatch(/7201\s+connected\s+push\.example:3201\s+12\s+10\s+2\s+0\s+0\s+idigi-0/);
    // One RPC each: its response as protobuf JSON, the list under the response's own key.
    const j = JSON.parse((await runVerb(registerIdigi, service({}), ["idigi", "sessions", "list"], { format: "json" })).stdout);
    expect(j.sessions).toHaveLength(1);
    expect(j.sessions[0]).toMatchObject({ monitorId: "7201", state: "SESSION_STATE_CONNECTED", receivedEvents: "12" });
    const ml = JSON.parse((await runVerb(registerIdigi, service({}), ["idigi", "monitors", "list"], { format: "json" })).stdout);
    expect(ml).toMatchObject({ monitors: [{ id: "7201", topics: ["DeviceCore", "FileDataCore"] }] });
  });
});

describe("idigi watch", () => {
  it("without a monitor creates one with the seed's flags, deletes it on leaving, and prints each record as the seed's callback does", async () => {
    const seen: { watch?: WatchEventsRequest } = {};
    const r = await runVerb(registerIdigi, service(seen), ["idigi", "watch"]);
    expect(r.code).toBe(0);
    expect(seen.watch).toMatchObject({ monitorId: "", rawPayloads: true, deleteMonitorOnLeave: true });
    expect(seen.watch?.createMonitor).toMatchObject({
      topics: ["DeviceCore"],
      batchSize: 1,
      compression: Compression.GZIP,
      startSession: true,
      replaceExisting: true,
    });
    // json.dumps(json_data, sort_keys=True, indent=4)
    expect(r.stdout).toContain(`Data Received {
    "Document": {
        "Msg": {
            "DeviceCore": {
                "devConnectwareId": "00000000-00000000-00409DFF-FF49B68F",
                "dpConnectionStatus": 0
            },
            "group": "*",
            "operation": "UPDATE",
            "timestamp": "2012-06-12T03:18:45.381Z",
            "topic": "1210/DeviceCore/7201/0"
        }
    }
}`);
  });

  it("-o json is NDJSON: one document per answer", async () => {
    const r = await runVerb(registerIdigi, service({}), ["idigi", "watch", "7201", "--keep-monitor"], { format: "json" });
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1]!)).toMatchObject({ event: { id: "e1", source: { connection: "7201" } }, rawPayload: RECORD });
  });

  it("another monitor's records the listener does not keep: falls back to the published events with a warning; --raw insists", async () => {
    const asked: boolean[] = [];
    const routes = (router: ConnectRouter) =>
      router.service(IdigiListenerService, {
        async *watchEvents(req) {
          asked.push(req.rawPayloads);
          if (req.rawPayloads)
            throw new ConnectError("raw_payloads: this listener keeps no raw payloads of monitor 7201", Code.FailedPrecondition);
          yield {
            event: {
              id: "e1",
              source: { platform: Platform.IDIGI, connection: "7201", device: "dev-1" },
              points: [{ name: "temp", value: { case: "doubleValue", value: 21.5 }, unit: "C" }],
            },
          };
        },
      });
    const r = await runVerb(registerIdigi, routes, ["idigi", "watch", "7201"]);
    expect(r.code).toBe(0);
    expect(asked).toEqual([true, false]);
    expect(r.stderr).toContain("the listener keeps no platform records for monitor 7201");
    expect(r.stdout).toContain("Data Received dev-1 temp=21.5 C");
    asked.length = 0;
    const insist = await runVerb(registerIdigi, routes, ["idigi", "watch", "7201", "--raw"]);
    expect(insist.code).toBe(EXIT.conflict);
    expect(asked).toEqual([true]);
  });

  it("with a monitor id watches it without creating or deleting anything", async () => {
    const seen: { watch?: WatchEventsRequest } = {};
    await runVerb(registerIdigi, service(seen), ["idigi", "watch", "7201", "--since", "1h"]);
    expect(seen.watch?.monitorId).toBe("7201");
    expect(seen.watch?.createMonitor).toBeUndefined();
    expect(seen.watch?.deleteMonitorOnLeave).toBe(false);
    expect(Number(seen.watch?.startTime?.seconds)).toBeGreaterThan(Date.now() / 1000 - 3700);
  });
});

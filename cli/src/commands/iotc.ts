import { spawn } from "node:child_process";
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  CommandSchema,
  type Command as PlatformCommand,
  WritablePropertyUpdateSchema,
} from "@meridian/contracts/meridian/command/v1/command_pb";
import {
  type Application,
  ApplicationSchema,
  ConnectionState,
  CreateApplicationResponseSchema,
  DeleteApplicationResponseSchema,
  DeleteDeviceResponseSchema,
  type Device,
  GetApplicationResponseSchema,
  GetDeviceResponseSchema,
  IotcBridgeService,
  ListApplicationsResponseSchema,
  ListDevicesResponseSchema,
  RegisterDeviceResponseSchema,
  RespondCommandResponseSchema,
  SendTelemetryResponseSchema,
  UpdateReportedPropertiesResponseSchema,
  WatchCommandsResponseSchema,
  WatchPropertiesResponseSchema,
  WritablePropertyAck,
} from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import type { Command } from "commander";
import type { CliContext, Column } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import {
  asJson,
  cell,
  choiceFlag,
  drain,
  examples,
  intFlag,
  jsonArg,
  jsonObjectArg,
  pairFlag,
  readText,
  secretFrom,
  timeFlag,
  ts,
} from "./options.js";

type Ctx = () => CliContext;

const STATE_NAMES: Record<number, string> = {
  [ConnectionState.UNSPECIFIED]: "?",
  [ConnectionState.DISCONNECTED]: "disconnected",
  [ConnectionState.CONNECTING]: "connecting",
  [ConnectionState.CONNECTED]: "connected",
  [ConnectionState.FAILED]: "failed",
};

export const APPLICATION_COLUMNS: readonly Column<Application>[] = [
  { header: "ID", value: (a) => a.id },
  { header: "NAME", value: (a) => a.displayName },
  { header: "ID SCOPE", value: (a) => a.idScope },
  { header: "CREDENTIAL", value: (a) => a.credentialKind || "(none)", colour: (a) => (a.credentialKind ? undefined : "yellow") },
  { header: "MODEL", value: (a) => a.modelId },
  { header: "DEVICE IDS", value: (a) => a.deviceIdTemplate || "{connection}-{device}" },
  { header: "PROVISIONING", value: (a) => a.provisioningHost || "global.azure-devices-provisioning.net" },
];

export const DEVICE_COLUMNS: readonly Column<Device>[] = [
  { header: "DEVICE", value: (d) => d.deviceId },
  {
    header: "STATE",
    value: (d) => STATE_NAMES[d.state],
    colour: (d) =>
      d.state === ConnectionState.CONNECTED
        ? "green"
        : d.state === ConnectionState.FAILED
          ? "red"
          : d.state === ConnectionState.CONNECTING
            ? "yellow"
            : undefined,
  },
  { header: "HUB", value: (d) => d.assignedHub },
  { header: "MODEL", value: (d) => d.modelId },
  { header: "CREDENTIAL", value: (d) => d.credentialKind },
  { header: "SENT", value: (d) => d.messagesSent, align: "right" },
  { header: "LAST ACTIVITY", value: (d) => ts(d.lastActivityTime) },
  { header: "SOURCE", value: (d) => d.source },
  { header: "LAST ERROR", value: (d) => cell(d.lastError, 60) },
];

const ACKS = { completed: WritablePropertyAck.COMPLETED, accepted: WritablePropertyAck.ACCEPTED } as const;

/** A command as a line, as the seed's command handler logs one. */
export function commandLine(c: PlatformCommand): string {
  const t = c.target;
  const payload = c.payload === undefined ? "" : ` ${JSON.stringify(asJson(CommandSchema, c).payload ?? null)}`;
  const deadline = c.deadline ? ` (answer by ${timestampDate(c.deadline).toISOString()})` : "";
  return `${c.receivedTime ? timestampDate(c.receivedTime).toISOString() : ""} ${t?.connection ?? ""}/${t?.device ?? ""} command ${c.component ? `${c.component}*` : ""}${c.name} [${c.requestId}]${payload}${c.offline ? " offline" : ""}${deadline}`;
}

/**
 * Runs the responder script for one command: the command as JSON on its standard input; its standard output (JSON, or
 * nothing for null) is the answer's payload, its exit status 0 answers 200 and anything else 500, unless the output is
 * `{"status": n, "payload": …}`. A script that outlives the deadline is stopped.
 */
export function runResponder(script: string, command: unknown, timeoutMs: number): Promise<{ status: number; payload: JsonValue }> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, { shell: true, stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => child.kill("SIGTERM"), Math.max(1, timeoutMs));
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.length > 128 * 1024) child.kill("SIGTERM");
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new CliError(`--exec ${script}: cannot be run (${err.message})`, EXIT.usage));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const text = out.trim();
      let parsed: unknown = null;
      if (text !== "") {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      if (
        parsed !== null &&
        typeof parsed === "object" &&
        !Array.isArray(parsed) &&
        "status" in parsed &&
        typeof (parsed as { status: unknown }).status === "number"
      ) {
        const p = parsed as { status: number; payload?: JsonValue };
        return resolve({ status: p.status, payload: p.payload ?? null });
      }
      resolve({ status: code === 0 ? 200 : 500, payload: parsed as JsonValue });
    });
    child.stdin.on("error", () => {
      // The script may not read its input; that is its choice.
    });
    child.stdin.end(`${JSON.stringify(command)}\n`);
  });
}

export function registerIotc(program: Command, ctx: Ctx): void {
  const iotc = program.command("iotc").description("Azure IoT Central: applications, devices, telemetry, properties and commands");

  // ---- applications ----
  const apps = iotc.command("apps").description("IoT Central applications (DPS ID scope and enrollment group)");
  examples(
    apps
      .command("create <id>")
      .description("create an application or replace the one with this id")
      .requiredOption("--id-scope <scope>", "the DPS ID scope (0ne…)")
      .option("--display-name <name>", "a name for people")
      .option("--group-key <key>", "the enrollment group's SAS key, base64 (visible to ps: prefer --group-key-file / --group-key-env)")
      .option("--group-key-file <path>", "read the group key from this file")
      .option("--group-key-env <name>", "read the group key from this environment variable")
      .option("--x509-cert <path>", "X.509 enrollment group: the signing certificate chain (PEM)")
      .option("--x509-key <path>", "X.509 enrollment group: its private key (PEM)")
      .option("--provisioning-host <host>", "DPS host[:port] (default global.azure-devices-provisioning.net)")
      .option("--gateway-host <host>", "connect devices through this IoT Edge gateway")
      .option("--model-id <dtmi>", "the device template of devices that have none")
      .option("--device-id-template <template>", "how source devices are named: {connection}, {device}, {platform}")
      .option(
        "--writable-property-ack <ack>",
        "completed or accepted",
        choiceFlag("--writable-property-ack", ["completed", "accepted"] as const),
      )
      .option("--idle-disconnect <seconds>", "disconnect idle devices after, 60-86400", intFlag("--idle-disconnect", 60, 86_400))
      .action(async (id: string, o: Record<string, string | number | undefined>) => {
        const c = ctx();
        const key = secretFrom(
          c,
          { value: o.groupKey as string, file: o.groupKeyFile as string, env: o.groupKeyEnv as string },
          "the group key",
        );
        if (key !== undefined && (o.x509Cert || o.x509Key))
          throw new CliError("give a group key or an X.509 certificate, not both", EXIT.usage);
        if ((o.x509Cert === undefined) !== (o.x509Key === undefined))
          throw new CliError("--x509-cert and --x509-key go together", EXIT.usage);
        const res = await c.client(IotcBridgeService).createApplication(
          {
            application: {
              id,
              idScope: String(o.idScope),
              displayName: (o.displayName as string) ?? "",
              provisioningHost: (o.provisioningHost as string) ?? "",
              gatewayHost: (o.gatewayHost as string) ?? "",
              modelId: (o.modelId as string) ?? "",
              deviceIdTemplate: (o.deviceIdTemplate as string) ?? "",
              writablePropertyAck: o.writablePropertyAck
                ? ACKS[o.writablePropertyAck as keyof typeof ACKS]
                : WritablePropertyAck.UNSPECIFIED,
              idleDisconnectSeconds: o.idleDisconnect as number | undefined,
              enrollmentGroup:
                key !== undefined
                  ? { credential: { case: "groupKey", value: key } }
                  : o.x509Cert
                    ? {
                        credential: {
                          case: "x509",
                          value: {
                            certificateChainPem: readText(String(o.x509Cert), "--x509-cert"),
                            privateKeyPem: readText(String(o.x509Key), "--x509-key"),
                          },
                        },
                      }
                    : undefined,
            },
          },
          { signal: c.signal },
        );
        c.out.list(res.application ? [res.application] : [], APPLICATION_COLUMNS, asJson(CreateApplicationResponseSchema, res));
      }),
    ["meridian iotc apps create plant --id-scope 0ne00ABCDEF --group-key-env IOTC_GROUP_KEY --model-id 'dtmi:com:example:Thermostat;1'"],
  );
  examples(
    apps
      .command("list")
      .description("every application")
      .action(async () => {
        const c = ctx();
        const res = await c.client(IotcBridgeService).listApplications({}, { signal: c.signal });
        c.out.list(res.applications, APPLICATION_COLUMNS, asJson(ListApplicationsResponseSchema, res));
      }),
    ["meridian iotc apps list"],
  );
  examples(
    apps
      .command("get <id>")
      .description("one application (its key is never shown)")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(IotcBridgeService).getApplication({ id }, { signal: c.signal });
        if (c.out.format !== "table") return c.out.object(asJson(GetApplicationResponseSchema, res));
        if (res.application) c.out.object(asJson(ApplicationSchema, res.application));
      }),
    ["meridian iotc apps get plant -o yaml"],
  );
  examples(
    apps
      .command("delete <id>")
      .description("disconnect the application's devices and forget it (they stay in IoT Central)")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(IotcBridgeService).deleteApplication({ id }, { signal: c.signal });
        c.out.result(`application ${id} deleted`, asJson(DeleteApplicationResponseSchema, res));
      }),
    ["meridian iotc apps delete plant"],
  );

  // ---- devices ----
  const devices = iotc.command("devices").description("the IoT Central devices Meridian acts as");
  examples(
    devices
      .command("register <app> <device>")
      .description("register a device with DPS now (or show the cached registration) and connect it")
      .option("--model-id <dtmi>", "the device's own model id (default the application's)")
      .option("--device-key-file <path>", "an individual enrollment's SAS key")
      .option("--device-key-env <name>", "an individual enrollment's SAS key, from this environment variable")
      .option("--force", "register with DPS even when a registration is cached")
      .action(
        async (app: string, device: string, o: { modelId?: string; deviceKeyFile?: string; deviceKeyEnv?: string; force?: boolean }) => {
          const c = ctx();
          const key = secretFrom(c, { file: o.deviceKeyFile, env: o.deviceKeyEnv }, "the device key");
          const res = await c.client(IotcBridgeService).registerDevice(
            {
              applicationId: app,
              deviceId: device,
              modelId: o.modelId ?? "",
              force: o.force === true,
              credential: key !== undefined ? { case: "deviceKey", value: key } : { case: undefined },
            },
            { signal: c.signal },
          );
          c.out.list(res.device ? [res.device] : [], DEVICE_COLUMNS, asJson(RegisterDeviceResponseSchema, res));
        },
      ),
    [
      "meridian iotc devices register plant pump-01",
      "meridian iotc devices register plant pump-01 --force --model-id 'dtmi:com:example:Pump;1'",
    ],
  );
  examples(
    devices
      .command("list <app>")
      .description("the application's known devices with their connection state")
      .option("--page-size <n>", "1-1000", intFlag("--page-size", 1, 1000), 100)
      .option("--all", "follow every page")
      .action(async (app: string, o: { pageSize: number; all?: boolean }) => {
        const c = ctx();
        const client = c.client(IotcBridgeService);
        // With --all, the pages' devices in one response, as if one page had held them all (nextPageToken then empty).
        const all = create(ListDevicesResponseSchema);
        let pageToken = "";
        do {
          const res = await client.listDevices({ applicationId: app, pageSize: o.pageSize, pageToken }, { signal: c.signal });
          all.devices.push(...res.devices);
          all.nextPageToken = res.nextPageToken;
          pageToken = o.all ? res.nextPageToken : "";
          if (!o.all && res.nextPageToken) c.out.note("more devices: give --all");
        } while (pageToken);
        c.out.list(all.devices, DEVICE_COLUMNS, asJson(ListDevicesResponseSchema, all));
      }),
    ["meridian iotc devices list plant", "meridian iotc devices list plant --all -o json"],
  );
  examples(
    devices
      .command("get <app> <device>")
      .description("one device, with its twin when it is connected")
      .action(async (app: string, device: string) => {
        const c = ctx();
        const res = await c.client(IotcBridgeService).getDevice({ applicationId: app, deviceId: device }, { signal: c.signal });
        if (c.out.format !== "table") return c.out.object(asJson(GetDeviceResponseSchema, res));
        if (res.device) c.out.table([res.device], DEVICE_COLUMNS);
        const j = asJson(GetDeviceResponseSchema, res).twin as Record<string, unknown> | undefined;
        if (j)
          c.out.object({ desired: JSON.stringify(j.desired ?? {}), reported: JSON.stringify(j.reported ?? {}) }, [
            ["Desired", "desired"],
            ["Reported", "reported"],
          ]);
      }),
    ["meridian iotc devices get plant pump-01"],
  );
  examples(
    devices
      .command("delete <app> <device>")
      .description("disconnect a device and forget its registration (it stays in IoT Central)")
      .action(async (app: string, device: string) => {
        const c = ctx();
        const res = await c.client(IotcBridgeService).deleteDevice({ applicationId: app, deviceId: device }, { signal: c.signal });
        c.out.result(`device ${device} of ${app} forgotten`, asJson(DeleteDeviceResponseSchema, res));
      }),
    ["meridian iotc devices delete plant pump-01"],
  );

  // ---- telemetry ----
  examples(
    iotc
      .command("send <app> <device> <payload>")
      .description(
        "send one telemetry message as the device (a JSON object, @file or @- for standard input); answers once IoT Hub acknowledged it",
      )
      .option("--component <name>", "the model component (default component when unset)")
      .option("-p, --property <key=value>", "an application property (repeatable)", pairFlag("--property"))
      .option("--time <time>", "when the values were observed (default now)", timeFlag("--time"))
      .option("--message-id <id>", "the message id (default a new one)")
      .action(
        async (
          app: string,
          device: string,
          payload: string,
          o: { component?: string; property?: Record<string, string>; time?: Timestamp; messageId?: string },
        ) => {
          const c = ctx();
          const body = jsonObjectArg(payload, "the payload");
          if (Object.keys(o.property ?? {}).length > 64) throw new CliError("--property: at most 64", EXIT.usage);
          const res = await c.client(IotcBridgeService).sendTelemetry(
            {
              applicationId: app,
              deviceId: device,
              payload: body,
              component: o.component ?? "",
              properties: o.property ?? {},
              observedTime: o.time,
              messageId: o.messageId ?? "",
            },
            { signal: c.signal },
          );
          c.out.object(asJson(SendTelemetryResponseSchema, res), [["Message id", "messageId"]]);
        },
      ),
    [
      `meridian iotc send plant pump-01 '{"temperature": 21.5, "pressure": 1013}'`,
      "meridian iotc send plant pump-01 @reading.json --component thermostat1 -p source=lab",
    ],
  );

  // ---- properties ----
  const properties = iotc.command("properties").description("device properties: report (read-only) and watch writable changes");
  examples(
    properties
      .command("report <app> <device> <patch>")
      .description("patch the device's reported properties (JSON object, @file or @-; null deletes)")
      .option("--component <name>", "the component the properties belong to")
      .action(async (app: string, device: string, patch: string, o: { component?: string }) => {
        const c = ctx();
        const res = await c
          .client(IotcBridgeService)
          .updateReportedProperties(
            { applicationId: app, deviceId: device, patch: jsonObjectArg(patch, "the patch"), component: o.component ?? "" },
            { signal: c.signal },
          );
        c.out.object(asJson(UpdateReportedPropertiesResponseSchema, res), [["Reported version", "version"]]);
      }),
    [`meridian iotc properties report plant pump-01 '{"serialNumber": "SN-1"}'`],
  );
  examples(
    properties
      .command("watch")
      .description("writable-property changes from IoT Central as they reach the bus (Ctrl-C to stop)")
      .option("--app <id>", "only this application")
      .option("--device <id>", "only this device")
      .option("--since <time>", "replay from this time (kept 24 h)", timeFlag("--since"))
      .action(async (o: { app?: string; device?: string; since?: Timestamp }) => {
        const c = ctx();
        const stream = c
          .client(IotcBridgeService)
          .watchProperties(
            { applicationId: o.app ?? "", deviceId: o.device ?? "", startTime: o.since },
            { signal: c.signal, timeoutMs: 0 },
          );
        await drain(stream, c.signal, (res) => {
          const u = res.update;
          if (!u) return;
          const j = asJson(WritablePropertyUpdateSchema, u);
          c.out.item(
            `${ts(u.receivedTime)} ${u.target?.connection ?? ""}/${u.target?.device ?? ""} ${u.component ? `${u.component}.` : ""}${u.name} = ${JSON.stringify(j.value ?? null)} (version ${u.version})`,
            asJson(WatchPropertiesResponseSchema, res),
          );
        });
      }),
    ["meridian iotc properties watch --app plant", "meridian iotc properties watch --since 1h -o json"],
  );

  // ---- commands ----
  const commands = iotc.command("commands").description("commands from IoT Central: watch them and answer them");
  examples(
    commands
      .command("watch")
      .description("commands as they reach the bus; with --exec each is answered by a script (Ctrl-C to stop)")
      .option("--app <id>", "only this application")
      .option("--device <id>", "only this device")
      .option("--since <time>", "replay from this time (kept 24 h)", timeFlag("--since"))
      .option(
        "--exec <script>",
        'answer each command with this shell command: it gets the command as JSON on standard input; its output (JSON) is the payload; exit 0 answers 200, else 500; or print {"status": n, "payload": …}',
      )
      .option("--respond <status>", "answer each command with this status (200-599) and --payload", intFlag("--respond", 200, 599))
      .option("--payload <json>", "with --respond: the payload (JSON, @file)")
      .action(async (o: { app?: string; device?: string; since?: Timestamp; exec?: string; respond?: number; payload?: string }) => {
        const c = ctx();
        if (o.exec !== undefined && o.respond !== undefined) throw new CliError("--exec and --respond: give one", EXIT.usage);
        if (o.payload !== undefined && o.respond === undefined) throw new CliError("--payload goes with --respond", EXIT.usage);
        const fixed = o.payload !== undefined ? (jsonArg(o.payload, "--payload") as JsonValue) : null;
        const client = c.client(IotcBridgeService);
        const stream = client.watchCommands(
          { applicationId: o.app ?? "", deviceId: o.device ?? "", startTime: o.since },
          { signal: c.signal, timeoutMs: 0 },
        );
        await drain(stream, c.signal, async (res) => {
          const cmd = res.command;
          if (!cmd) return;
          c.out.item(commandLine(cmd), asJson(WatchCommandsResponseSchema, res));
          // The script's standard input stays the command itself (what it answers), not the stream's envelope.
          const j = asJson(CommandSchema, cmd);
          if (o.exec === undefined && o.respond === undefined) return;
          const left = cmd.deadline ? timestampDate(cmd.deadline).getTime() - Date.now() : 30_000;
          const answer = o.exec !== undefined ? await runResponder(o.exec, j, left) : { status: o.respond!, payload: fixed };
          const app = cmd.target?.connection ?? o.app ?? "";
          const r = await client.respondCommand(
            { applicationId: app, requestId: cmd.requestId, status: answer.status, payload: fromJson(ValueSchema, answer.payload) },
            { signal: c.signal },
          );
          const note = `answered ${cmd.requestId} with ${answer.status}${r.delivered ? "" : " (not delivered: answered already or past its deadline)"}`;
          if (r.delivered) c.out.note(note);
          else c.out.warn(note);
        });
      }),
    [
      "meridian iotc commands watch --app plant",
      `meridian iotc commands watch --app plant --exec 'jq "{status: 200, payload: {rebooted: true}}"'`,
      `meridian iotc commands watch --app plant --respond 200 --payload '{"ok": true}'`,
    ],
  );
  examples(
    commands
      .command("respond <app> <request-id>")
      .description("answer one command (exit 1 when it was answered already or its deadline passed)")
      .option("--status <n>", "200-599", intFlag("--status", 200, 599), 200)
      .option("--payload <json>", "the payload (JSON, @file or @-)")
      .action(async (app: string, requestId: string, o: { status: number; payload?: string }) => {
        const c = ctx();
        const payload = o.payload !== undefined ? (jsonArg(o.payload, "--payload") as JsonValue) : undefined;
        const res = await c.client(IotcBridgeService).respondCommand(
          {
            applicationId: app,
            requestId,
            status: o.status,
            payload: payload === undefined ? undefined : fromJson(ValueSchema, payload),
          },
          { signal: c.signal },
        );
        c.out.object(asJson(RespondCommandResponseSchema, res), [["Delivered", "delivered"]]);
        if (!res.delivered) throw new CliError(`command ${requestId}: not delivered (answered already, or past its deadline)`, EXIT.failed);
      }),
    [`meridian iotc commands respond plant 6f1c… --status 200 --payload '{"rebooted": true}'`],
  );
}

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AckOption,
  Compression,
  type CreateMonitorRequestSchema,
  CreateMonitorResponseSchema,
  DeleteMonitorResponseSchema,
  IdigiListenerService,
  ListMonitorsResponseSchema,
  ListSessionsResponseSchema,
  type Monitor,
  PayloadFormat,
  type Session,
  SessionState,
  StartSessionResponseSchema,
  StopSessionResponseSchema,
  type WatchEventsResponse,
  WatchEventsResponseSchema,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import type { Command } from "commander";
import type { CliContext, Column } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import { asJson, choiceFlag, drain, examples, intFlag, listFlag, timeFlag } from "./options.js";

type Ctx = () => CliContext;

const FORMAT_NAMES: Record<number, string> = {
  [PayloadFormat.JSON]: "json",
  [PayloadFormat.XML]: "xml",
  [PayloadFormat.UNSPECIFIED]: "json",
};
const COMPRESSION_NAMES: Record<number, string> = {
  [Compression.NONE]: "none",
  [Compression.ZLIB]: "zlib",
  [Compression.GZIP]: "gzip",
  [Compression.UNSPECIFIED]: "zlib",
};
const STATE_NAMES: Record<number, string> = {
  [SessionState.CONNECTING]: "connecting",
  [SessionState.CONNECTED]: "connected",
  [SessionState.DISCONNECTED]: "disconnected",
  [SessionState.FAILED]: "failed",
  [SessionState.NOT_RUNNING]: "not running",
  [SessionState.UNSPECIFIED]: "?",
};

/** The seed's push_client.py flags and defaults: --topics DeviceCore, --compression gzip, --format json, --batchsize 1, --batchduration 60. */
export interface MonitorFlags {
  topics?: string[];
  batchSize: number;
  batchDuration: number;
  compression: "none" | "gzip" | "zlib";
  format: "json" | "xml";
  ack: "explicit" | "off";
  autoReplay: boolean;
  description?: string;
}

export const SEED_DEFAULTS = { topics: ["DeviceCore"], batchSize: 1, batchDuration: 60, compression: "gzip", format: "json" } as const;

function monitorOptions(cmd: Command): Command {
  return cmd
    .option("-t, --topics <topics>", "comma-separated topics to listen on, or the flag again (default: DeviceCore)", listFlag)
    .option(
      "-b, --batch-size <n>",
      "messages to batch up before sending data, 1-65535",
      intFlag("--batch-size", 1, 65_535),
      SEED_DEFAULTS.batchSize,
    )
    .option(
      "-d, --batch-duration <seconds>",
      "seconds to wait before sending a batch if batch size is not met, 0-86400",
      intFlag("--batch-duration", 0, 86_400),
      SEED_DEFAULTS.batchDuration,
    )
    .option(
      "-c, --compression <type>",
      "none or gzip (zlib: the platform's name for it)",
      choiceFlag("--compression", ["none", "gzip", "zlib"] as const),
      SEED_DEFAULTS.compression,
    )
    .option(
      "-f, --format <format>",
      "json or xml: the format data is pushed in",
      choiceFlag("--format", ["json", "xml"] as const),
      SEED_DEFAULTS.format,
    )
    .option("--ack <option>", "explicit (at-least-once) or off", choiceFlag("--ack", ["explicit", "off"] as const), "explicit")
    .option("--no-auto-replay", "do not replay events missed while disconnected")
    .option("--description <text>", "the monitor's description");
}

/** The CreateMonitorRequest of the seed's flags. */
export function createMonitorRequest(f: MonitorFlags): MessageInitShape<typeof CreateMonitorRequestSchema> {
  const topics = f.topics && f.topics.length > 0 ? f.topics : [...SEED_DEFAULTS.topics];
  if (topics.length > 100) throw new CliError(`--topics: ${topics.length} topics, at most 100`, EXIT.usage);
  for (const t of topics) if (t.length > 256) throw new CliError(`--topics: "${t.slice(0, 40)}…" is over 256 characters`, EXIT.usage);
  return {
    topics,
    batchSize: f.batchSize,
    batchDurationSeconds: f.batchDuration,
    compression: f.compression === "none" ? Compression.NONE : f.compression === "gzip" ? Compression.GZIP : Compression.ZLIB,
    format: f.format === "xml" ? PayloadFormat.XML : PayloadFormat.JSON,
    ackOption: f.ack === "off" ? AckOption.OFF : AckOption.EXPLICIT,
    autoReplay: f.autoReplay,
    description: f.description ?? "",
  };
}

export const MONITOR_COLUMNS: readonly Column<Monitor>[] = [
  { header: "ID", value: (m) => m.id },
  { header: "TOPICS", value: (m) => m.topics.join(",") },
  { header: "TRANSPORT", value: (m) => m.transport },
  { header: "FORMAT", value: (m) => FORMAT_NAMES[m.format] },
  { header: "COMPRESSION", value: (m) => COMPRESSION_NAMES[m.compression] },
  { header: "BATCH", value: (m) => m.batchSize, align: "right" },
  { header: "DURATION", value: (m) => m.batchDurationSeconds, align: "right" },
  {
    header: "STATUS",
    value: (m) => m.status,
    colour: (m) => (m.status === "ACTIVE" ? "green" : m.status === "CONNECTING" ? "yellow" : undefined),
  },
];

export const SESSION_COLUMNS: readonly Column<Session>[] = [
  { header: "MONITOR", value: (s) => s.monitorId },
  {
    header: "STATE",
    value: (s) => STATE_NAMES[s.state],
    colour: (s) => (s.state === SessionState.CONNECTED ? "green" : s.state === SessionState.FAILED ? "red" : "yellow"),
  },
  { header: "HOST", value: (s) => (s.connection ? `${s.connection.host}:${s.connection.port}${s.connection.tls ? "" : " (no TLS)"}` : "") },
  { header: "RECEIVED", value: (s) => s.receivedEvents, align: "right" },
  { header: "DELIVERED", value: (s) => s.deliveredEvents, align: "right" },
  { header: "DUPLICATES", value: (s) => s.duplicateEvents, align: "right" },
  { header: "FAILED", value: (s) => s.failedBatches, align: "right", colour: (s) => (s.failedBatches > 0n ? "red" : undefined) },
  { header: "PENDING", value: (s) => s.pendingBlocks, align: "right" },
  { header: "INSTANCE", value: (s) => s.instance },
  { header: "LAST ERROR", value: (s) => s.lastError },
];

/** Python's json.dumps(sort_keys=True, indent=4) shape, as the seed's callback prints what arrives. */
export function prettySorted(v: unknown, indent = 4): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (x !== null && typeof x === "object")
      return Object.fromEntries(
        Object.keys(x)
          .sort()
          .map((k) => [k, sort((x as Record<string, unknown>)[k])]),
      );
    return x;
  };
  return JSON.stringify(sort(v), null, indent);
}

/** The seed's json_cb: "Data Received <pretty JSON>"; XML as it came; an event without its raw record as the event. */
export function watchLine(res: WatchEventsResponse): string | undefined {
  if (res.monitor)
    return `Monitor ${res.monitor.id} created on topics ${res.monitor.topics.join(",")}${res.session ? `, session ${STATE_NAMES[res.session.state]}` : ""}`;
  if (!res.event) return undefined;
  if (res.rawPayload) {
    if (res.rawFormat === PayloadFormat.XML) return `Data Received ${res.rawPayload}`;
    try {
      return `Data Received ${prettySorted(JSON.parse(res.rawPayload))}`;
    } catch {
      return `Data Received ${res.rawPayload}`;
    }
  }
  const e = res.event;
  const points = e.points
    .map((p) => `${p.name}=${p.value.case === undefined ? "" : String(p.value.value)}${p.unit ? ` ${p.unit}` : ""}`)
    .join(" ");
  const when = e.observedTime ? timestampDate(e.observedTime).toISOString() : "";
  const attributes = Object.keys(e.attributes).length > 0 ? JSON.stringify(e.attributes) : "";
  return ["Data Received", when, e.source?.device ?? "", points, attributes].filter((x) => x !== "").join(" ");
}

export function registerIdigi(program: Command, ctx: Ctx): void {
  const idigi = program.command("idigi").description("Digi iDigi / Remote Manager push monitors, their sessions and what they push");
  const monitors = idigi.command("monitors").description("push monitors on the platform account");
  examples(
    monitorOptions(monitors.command("create").description("create a TCP push monitor (POST /ws/Monitor) with the seed's flags"))
      .option("--start-session", "also start its push session (as the seed does right after creating it)")
      .option("--replace-existing", "first delete the account's monitors with exactly these topics (the seed's get, delete, create)")
      .action(async (f: MonitorFlags & { startSession?: boolean; replaceExisting?: boolean }) => {
        const c = ctx();
        const res = await c
          .client(IdigiListenerService)
          .createMonitor(
            { ...createMonitorRequest(f), startSession: f.startSession === true, replaceExisting: f.replaceExisting === true },
            { signal: c.signal },
          );
        for (const w of res.warnings) c.out.warn(w);
        const doc = asJson(CreateMonitorResponseSchema, res);
        c.out.list(res.monitor ? [res.monitor] : [], MONITOR_COLUMNS, doc);
        if (res.session) c.out.table([res.session], SESSION_COLUMNS);
      }),
    [
      "meridian idigi monitors create --topics DeviceCore,FileDataCore --start-session",
      "meridian idigi monitors create -t 'DataPoint/00000000-00000000-00409DFF-FF49B68F/*' -b 10 -d 5 -c none -f xml",
    ],
  );
  examples(
    monitors
      .command("list")
      .description("the account's monitors")
      .option("-t, --topics <topics>", "only monitors with exactly this topic list", listFlag)
      .action(async (o: { topics?: string[] }) => {
        const c = ctx();
        const res = await c.client(IdigiListenerService).listMonitors({ topics: o.topics ?? [] }, { signal: c.signal });
        c.out.list(res.monitors, MONITOR_COLUMNS, asJson(ListMonitorsResponseSchema, res));
      }),
    ["meridian idigi monitors list", "meridian idigi monitors list --topics DeviceCore -o json"],
  );
  examples(
    monitors
      .command("delete <monitor-id>")
      .description("stop the monitor's session and delete the monitor")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(IdigiListenerService).deleteMonitor({ monitorId: id }, { signal: c.signal });
        c.out.result(`monitor ${id} deleted`, asJson(DeleteMonitorResponseSchema, res));
      }),
    ["meridian idigi monitors delete 1234"],
  );

  const sessions = idigi.command("sessions").description("push sessions the listener holds (one per monitor)");
  examples(
    sessions
      .command("list")
      .description("every recorded session with its live state")
      .action(async () => {
        const c = ctx();
        const res = await c.client(IdigiListenerService).listSessions({}, { signal: c.signal });
        if (res.recordsUnavailable)
          c.out.warn("the session records cannot be read (the bus is down): only sessions running on the answering instance are listed");
        c.out.list(res.sessions, SESSION_COLUMNS, asJson(ListSessionsResponseSchema, res));
      }),
    ["meridian idigi sessions list", "meridian idigi sessions list -o yaml"],
  );
  examples(
    sessions
      .command("start <monitor-id>")
      .description("start (or show the running) push session of a monitor")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(IdigiListenerService).startSession({ monitorId: id }, { signal: c.signal });
        for (const w of res.session?.warnings ?? []) c.out.warn(w);
        c.out.list(res.session ? [res.session] : [], SESSION_COLUMNS, asJson(StartSessionResponseSchema, res));
      }),
    ["meridian idigi sessions start 1234"],
  );
  examples(
    sessions
      .command("stop <monitor-id>")
      .description("stop a session and forget it (the monitor stays)")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(IdigiListenerService).stopSession({ monitorId: id }, { signal: c.signal });
        c.out.result(`session of monitor ${id} stopped`, asJson(StopSessionResponseSchema, res));
      }),
    ["meridian idigi sessions stop 1234"],
  );

  examples(
    monitorOptions(
      idigi
        .command("watch [monitor-id]")
        .description(
          "print what a monitor pushes as it arrives, as the seed's client does; without a monitor id, create one with the seed's flags and delete it at Ctrl-C",
        ),
    )
      .option("--since <time>", "replay from this time (RFC 3339 or back from now: 15m, 2h)", timeFlag("--since"))
      .option("--raw", "print the platform's records (default; for a monitor this watch did not create, only if the listener keeps them)")
      .option("--no-raw", "print the events as Meridian published them instead of the platform's records")
      .option("--keep-monitor", "leave the monitor this watch created in place at Ctrl-C")
      .action(async (monitorId: string | undefined, f: MonitorFlags & { since?: Timestamp; raw?: boolean; keepMonitor?: boolean }) => {
        const c = ctx();
        const creating = monitorId === undefined;
        const client = c.client(IdigiListenerService);
        let events = 0;
        let answers = 0;
        const watch = (raw: boolean) =>
          drain(
            client.watchEvents(
              {
                monitorId: monitorId ?? "",
                startTime: f.since,
                rawPayloads: raw,
                ...(creating
                  ? {
                      createMonitor: { ...createMonitorRequest(f), startSession: true, replaceExisting: true },
                      deleteMonitorOnLeave: f.keepMonitor !== true,
                    }
                  : {}),
              },
              { signal: c.signal, timeoutMs: 0 },
            ),
            c.signal,
            (res) => {
              answers++;
              if (res.event) events++;
              const line = watchLine(res);
              if (line === undefined) return;
              c.out.item(line, asJson(WatchEventsResponseSchema, res));
            },
          );
        try {
          await watch(f.raw !== false);
        } catch (err) {
          // The listener keeps raw records only of the sessions a watcher created, or of all with IDIGI_INCLUDE_RAW:
          // watching another monitor without --raw asked for falls back to the published events.
          if (creating || f.raw === true || answers > 0 || ConnectError.from(err).code !== Code.FailedPrecondition) throw err;
          c.out.warn(`the listener keeps no platform records for monitor ${monitorId} (IDIGI_INCLUDE_RAW): printing the published events`);
          await watch(false);
        }
        if (c.signal.aborted) {
          // The seed's KeyboardInterrupt lines; the listener deletes the monitor it created when the stream ends.
          c.out.note("Closing Sessions and Cleaning Up.");
          c.out.note(`Done (${events} event${events === 1 ? "" : "s"})`);
        }
      }),
    [
      "meridian idigi watch                                    # the seed: monitor on DeviceCore, gzip, json, batch 1 / 60 s",
      "meridian idigi watch --topics DeviceCore,FileData -b 10",
      "meridian idigi watch 1234 --since 1h -o json | jq .event.source",
    ],
  );
}

import { isAbsolute, join, resolve } from "node:path";
import { create, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  CreateTwinResponseSchema,
  DeleteTwinResponseSchema,
  type DigitalTwinAdapter,
  type DigitalTwinInstance,
  type DigitalTwinModel,
  DigitalTwinModelSchema,
  GetDigitalTwinModelResponseSchema,
  GetTwinResponseSchema,
  LifecycleState,
  ListDigitalTwinAdaptersResponseSchema,
  ListDigitalTwinInstancesResponseSchema,
  ListDigitalTwinModelsResponseSchema,
  ListTwinsResponseSchema,
  OciTwinManagerService,
  QueryTwinDataResponseSchema,
  SendTwinDataResponseSchema,
  SetTwinDeviceSecretResponseSchema,
  SetTwinSourceResponseSchema,
  type Twin,
  TwinDataSet,
  TwinKind,
  type TwinRefSchema,
  type TwinSpecSchema,
} from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import type { CliContext, Column } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import {
  asJson,
  cell,
  choiceFlag,
  examples,
  intFlag,
  jsonObjectArg,
  listFlag,
  parseJson,
  readText,
  secretFrom,
  timeFlag,
  ts,
} from "./options.js";

type Ctx = () => CliContext;

const KIND_NAMES: Record<number, string> = {
  [TwinKind.UNSPECIFIED]: "?",
  [TwinKind.UNSTRUCTURED]: "unstructured",
  [TwinKind.DEFAULT_ADAPTER]: "default adapter",
  [TwinKind.CUSTOM_ADAPTER]: "custom adapter",
};
const STATE_NAMES: Record<number, string> = {
  [LifecycleState.UNSPECIFIED]: "",
  [LifecycleState.ACTIVE]: "ACTIVE",
  [LifecycleState.DELETED]: "DELETED",
};
const stateColour = (s: LifecycleState) =>
  s === LifecycleState.ACTIVE ? ("green" as const) : s === LifecycleState.DELETED ? ("red" as const) : undefined;

/** A twin named on the command line: an instance OCID (ocid1.…) or Meridian's key. */
export function twinRef(arg: string): MessageInitShape<typeof TwinRefSchema> {
  return arg.startsWith("ocid1.") ? { ref: { case: "instanceId", value: arg } } : { ref: { case: "key", value: arg } };
}

/** manage-dt's iot_config.yaml, the parts create reads. */
interface IotConfig {
  iot?: { domain_id?: unknown };
  environ?: Record<string, unknown>;
  digital_twins?: Record<string, Record<string, unknown>>;
}

/** Python's string.Template.safe_substitute: `${name}` and `$name` replaced when known, left as they are otherwise; `$$` is `$`. */
export function safeSubstitute(text: string, vars: Readonly<Record<string, unknown>>): string {
  return text.replace(
    /\$(?:\$|\{([_a-zA-Z][_a-zA-Z0-9]*)\}|([_a-zA-Z][_a-zA-Z0-9]*))/g,
    (m, braced: string | undefined, bare: string | undefined) => {
      if (m === "$$") return "$";
      const name = braced ?? bare!;
      return name in vars ? String(vars[name]) : m;
    },
  );
}

/**
 * The TwinSpec manage-dt's create makes of `digital_twins.<name>`: environ substituted into every value; no
 * model_dtdl: unstructured; model_dtdl without adapter_envelope: the default adapter; both: a custom adapter. The
 * DTDL's "@id" becomes model_name (manage-dt overwrites it), the model's display name the DTMI, the adapter's
 * description "Default Adapter for <model_name>" (manage-dt uses it for both kinds). Files are relative to the data directory.
 */
export function twinSpecFromConfig(
  configText: string,
  configPath: string,
  name: string,
  dataDir: string,
  readFile: (path: string, what: string) => string = readText,
): MessageInitShape<typeof TwinSpecSchema> {
  let config: IotConfig;
  try {
    config = (parseYaml(configText) ?? {}) as IotConfig;
  } catch (err) {
    throw new CliError(`${configPath}: not YAML (${(err as Error).message})`, EXIT.usage);
  }
  const twins = config.digital_twins;
  if (!twins || typeof twins !== "object") throw new CliError(`${configPath}: has no digital_twins section`, EXIT.usage);
  const raw = twins[name];
  if (!raw || typeof raw !== "object")
    throw new CliError(`${configPath}: digital_twins has no "${name}" (it has: ${Object.keys(twins).join(", ") || "none"})`, EXIT.usage);
  const vars = config.environ ?? {};
  const t: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== null && v !== undefined) t[k] = safeSubstitute(String(v), vars);
  const where = `${configPath} digital_twins.${name}`;
  const need = (k: string) => {
    if (!t[k]) throw new CliError(`${where}: "${k}" is missing`, EXIT.usage);
    return t[k];
  };
  const file = (k: string) => {
    const p = need(k);
    const full = isAbsolute(p) ? p : join(dataDir, p);
    return parseJson(readFile(full, `${where}.${k}`), `${where}.${k} (${full})`);
  };
  const deviceName = need("device_name");
  const spec: MessageInitShape<typeof TwinSpecSchema> = {
    key: name,
    iotDomainId: config.iot?.domain_id ? String(config.iot.domain_id) : "",
    displayName: deviceName,
    externalKey: t.external_key ?? "",
    authId: t.auth_id ?? "",
  };
  if (!t.model_dtdl) return { ...spec, description: `${deviceName} - Unstructured Telemetry` };
  const modelName = need("model_name");
  const dtdl = file("model_dtdl");
  if (dtdl === null || typeof dtdl !== "object" || Array.isArray(dtdl))
    throw new CliError(`${where}.model_dtdl: must be a DTDL interface (a JSON object)`, EXIT.usage);
  const custom = Boolean(t.adapter_envelope);
  let envelope: JsonObject | undefined;
  let routes: JsonObject[] = [];
  if (custom) {
    const e = file("adapter_envelope");
    if (e === null || typeof e !== "object" || Array.isArray(e))
      throw new CliError(`${where}.adapter_envelope: must be a JSON object`, EXIT.usage);
    envelope = e as JsonObject;
    const r = t.adapter_routes ? file("adapter_routes") : [];
    if (!Array.isArray(r) || r.some((x) => x === null || typeof x !== "object" || Array.isArray(x)))
      throw new CliError(`${where}.adapter_routes: must be a JSON array of route objects`, EXIT.usage);
    routes = r as JsonObject[];
  }
  return {
    ...spec,
    description: `${deviceName} - Structured Telemetry with ${custom ? "custom" : "default"} Adapter`,
    model: {
      specUri: modelName,
      displayName: modelName,
      description: t.model_description ?? "",
      spec: { ...(dtdl as JsonObject), "@id": modelName },
    },
    adapter: {
      displayName: t.adapter_name ?? "",
      description: `Default Adapter for ${modelName}`,
      ...(envelope ? { inboundEnvelope: envelope } : {}),
      inboundRoutes: routes,
    },
  };
}

export const TWIN_COLUMNS: readonly Column<Twin>[] = [
  { header: "KEY", value: (t) => t.key },
  { header: "KIND", value: (t) => KIND_NAMES[t.kind] },
  { header: "DISPLAY NAME", value: (t) => t.instance?.displayName ?? "" },
  {
    header: "STATE",
    value: (t) => STATE_NAMES[t.instance?.lifecycleState ?? 0],
    colour: (t) => stateColour(t.instance?.lifecycleState ?? 0),
  },
  { header: "EXTERNAL KEY", value: (t) => t.instance?.externalKey ?? "" },
  { header: "MODEL", value: (t) => t.model?.specUri ?? "" },
  { header: "ADAPTER", value: (t) => t.adapter?.displayName ?? "" },
  { header: "SOURCE", value: (t) => sourceText(t) },
  { header: "SECRET", value: (t) => (t.deviceSecretSet ? "yes" : "no") },
  { header: "ERROR", value: (t) => cell(t.error, 50), colour: (t) => (t.error ? "red" : undefined) },
];

function sourceText(t: Twin): string {
  const s = t.source;
  if (!s) return "";
  return [s.historized && "historized", s.raw && "raw", s.rejected && "rejected"].filter(Boolean).join(",");
}

interface Resource {
  resource: string;
  displayName: string;
  id: string;
  state: LifecycleState;
  created: string;
}

/** A twin's OCI resources as rows (manage-dt logs each: model, adapter, instance). */
export function resourcesOf(t: Twin): Resource[] {
  const rows: Resource[] = [];
  if (t.model)
    rows.push({
      resource: "Digital Twin Model",
      displayName: t.model.specUri,
      id: t.model.id,
      state: t.model.lifecycleState,
      created: ts(t.model.createTime),
    });
  if (t.adapter)
    rows.push({
      resource: "Digital Twin Adapter",
      displayName: t.adapter.displayName,
      id: t.adapter.id,
      state: t.adapter.lifecycleState,
      created: ts(t.adapter.createTime),
    });
  if (t.instance)
    rows.push({
      resource: "Digital Twin Instance",
      displayName: t.instance.displayName,
      id: t.instance.id,
      state: t.instance.lifecycleState,
      created: ts(t.instance.createTime),
    });
  return rows;
}

const RESOURCE_COLUMNS: readonly Column<Resource>[] = [
  { header: "RESOURCE", value: (r) => r.resource },
  { header: "DISPLAY NAME", value: (r) => r.displayName },
  { header: "OCID", value: (r) => r.id },
  { header: "STATE", value: (r) => STATE_NAMES[r.state], colour: (r) => stateColour(r.state) },
  { header: "CREATED", value: (r) => r.created },
];

/** manage-dt query's three tables: their titles and columns over ORDS rows (snake_case fields). */
export const QUERY_TABLES = {
  raw: {
    title: "Recent raw data",
    set: TwinDataSet.RAW,
    columns: [
      { header: "Id", value: (r: JsonObject) => scalar(r.id), align: "right" },
      { header: "Time received (UTC)", value: (r: JsonObject) => scalar(r.time_received) },
      { header: "Endpoint", value: (r: JsonObject) => scalar(r.endpoint) },
    ] as Column<JsonObject>[],
  },
  historized: {
    title: "Recent historized data",
    set: TwinDataSet.HISTORIZED,
    columns: [
      { header: "Id", value: (r: JsonObject) => scalar(r.id), align: "right" },
      { header: "Time observed (UTC)", value: (r: JsonObject) => scalar(r.time_observed) },
      { header: "Content path", value: (r: JsonObject) => scalar(r.content_path) },
      { header: "Value", value: (r: JsonObject) => scalar(r.value) },
    ] as Column<JsonObject>[],
  },
  rejected: {
    title: "Recent rejected data",
    set: TwinDataSet.REJECTED,
    columns: [
      { header: "Id", value: (r: JsonObject) => scalar(r.id), align: "right" },
      { header: "Time received (UTC)", value: (r: JsonObject) => scalar(r.time_received) },
      { header: "Endpoint", value: (r: JsonObject) => scalar(r.endpoint) },
      { header: "Reason code", value: (r: JsonObject) => scalar(r.reason_code) },
      { header: "Reason message", value: (r: JsonObject) => scalar(r.reason_message) },
    ] as Column<JsonObject>[],
  },
} as const;

/** manage-dt prints a table's title with its count: "Recent raw data - 2 record(s)". */
export function tableTitle(title: string, n: number): string {
  return `${title} - ${n} record(s)`;
}

function scalar(v: JsonValue | undefined): string | number | boolean | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "object") return JSON.stringify(v);
  return v;
}

/** Columns of any data set: the rows' own fields, in the order they first appear. */
export function rowColumns(rows: readonly JsonObject[]): Column<JsonObject>[] {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k) && k !== "links") keys.push(k);
  return keys.map((k) => ({
    header: k.toUpperCase().replace(/_/g, " "),
    value: (r: JsonObject) => {
      const v = scalar(r[k]);
      return typeof v === "string" ? cell(v, 80) : v;
    },
  }));
}

const DATA_SETS = {
  raw: TwinDataSet.RAW,
  historized: TwinDataSet.HISTORIZED,
  rejected: TwinDataSet.REJECTED,
  snapshot: TwinDataSet.SNAPSHOT,
  "raw-command": TwinDataSet.RAW_COMMAND,
} as const;
const STATES = { active: LifecycleState.ACTIVE, deleted: LifecycleState.DELETED } as const;

function listOptions(cmd: Command): Command {
  return cmd
    .option("--domain <ocid>", "the IoT domain (default: oci-twin-manager's OCI_IOT_DOMAIN_ID)")
    .option("--state <state>", "active or deleted (default: every state)", choiceFlag("--state", ["active", "deleted"] as const))
    .option("--page-size <n>", "1-1000", intFlag("--page-size", 1, 1000), 100)
    .option("--all", "follow every page");
}

/** A list's pages (with --all every one): the items and the last page's next token, for one merged response. */
async function pages<T>(
  all: boolean | undefined,
  fetch: (token: string) => Promise<{ items: T[]; next: string }>,
  ctx: CliContext,
): Promise<{ items: T[]; nextPageToken: string }> {
  const items: T[] = [];
  let token = "";
  let nextPageToken = "";
  do {
    const r = await fetch(token);
    items.push(...r.items);
    nextPageToken = r.next;
    token = all ? r.next : "";
    if (!all && r.next && ctx.out.format === "table") ctx.out.note("more: give --all");
  } while (token);
  return { items, nextPageToken };
}

export function registerTwin(program: Command, ctx: Ctx): void {
  const twin = program.command("twin").description("OCI IoT Platform digital twins (manage-dt's create | query | delete) and their data");

  examples(
    twin
      .command("create <name>")
      .description(
        "create the digital twin <name> of manage-dt's iot_config.yaml (digital_twins.<name>): its model, adapter and instance; again with the same description: the same twin",
      )
      .option("--data-dir <dir>", "the data directory (manage-dt's)", "./data")
      .option("--iot-config-file <file>", "the IoT config file, relative to the data directory", "iot_config.yaml")
      .option("--key <key>", "Meridian's key for the twin (default: <name>)")
      .option("--device-secret-file <path>", "the device's password (the vault secret's plaintext), for routes into the twin")
      .option("--device-secret-env <name>", "the same, from this environment variable")
      .option("--source <sets>", "publish these data sets on the bus: historized,raw,rejected")
      .action(
        async (
          name: string,
          o: { dataDir: string; iotConfigFile: string; key?: string; deviceSecretFile?: string; deviceSecretEnv?: string; source?: string },
        ) => {
          const c = ctx();
          const dataDir = resolve(o.dataDir);
          const configPath = isAbsolute(o.iotConfigFile) ? o.iotConfigFile : join(dataDir, o.iotConfigFile);
          const spec = twinSpecFromConfig(readText(configPath, "the IoT config file"), configPath, name, dataDir);
          const key = o.key ?? name;
          if (!/^[a-z0-9-]{1,63}$/.test(key))
            throw new CliError(`twin key "${key}": lower-case letters, digits and '-', 1 to 63 characters; give --key`, EXIT.usage);
          const secret = secretFrom(c, { file: o.deviceSecretFile, env: o.deviceSecretEnv }, "the device secret");
          const res = await c.client(OciTwinManagerService).createTwin(
            {
              twin: {
                ...(spec as Record<string, unknown>),
                key,
                ...(secret !== undefined ? { deviceSecret: secret } : {}),
                ...(o.source ? { source: sourceFlags(o.source) } : {}),
              },
            },
            { signal: c.signal },
          );
          if (c.out.format !== "table") return c.out.object(asJson(CreateTwinResponseSchema, res));
          if (!res.twin) return;
          c.out.note(
            res.created
              ? `Digital Twin ${key} created (${KIND_NAMES[res.twin.kind]})`
              : `Digital Twin ${key} exists already with this description: nothing created`,
          );
          c.out.table(resourcesOf(res.twin), RESOURCE_COLUMNS);
        },
      ),
    ["meridian twin create custom-adapter", "meridian twin create default-adapter --data-dir ~/manage-dt/data --source historized"],
  );
  examples(
    twin
      .command("query <twin>")
      .description(
        "manage-dt query: the instance's content, then its recent raw, historized and rejected data; -o json: {twin, kind, content, rawData, historizedData, rejectedData}",
      )
      .option("-l, --last-minutes <n>", "how far back, 1-43200", intFlag("--last-minutes", 1, 43_200), 5)
      .option("--limit <n>", "rows per table, 1-500", intFlag("--limit", 1, 500), 100)
      .option("--content", "also read each raw record's payload (one call per record, as manage-dt does)")
      .action(async (ref: string, o: { lastMinutes: number; limit: number; content?: boolean }) => {
        const c = ctx();
        const client = c.client(OciTwinManagerService);
        const t = (await client.getTwin({ twin: twinRef(ref) }, { signal: c.signal })).twin;
        if (!t) throw new CliError(`twin ${ref}: not found`, EXIT.notFound);
        const structured = t.kind === TwinKind.DEFAULT_ADAPTER || t.kind === TwinKind.CUSTOM_ADAPTER;
        const content = structured ? (await client.getTwinContent({ twin: twinRef(ref) }, { signal: c.signal })).content : undefined;
        const sets = (structured ? (["raw", "historized", "rejected"] as const) : (["raw", "rejected"] as const)).filter(Boolean);
        const data: Record<string, JsonObject[]> = {};
        for (const s of sets) {
          const res = await client.queryTwinData(
            {
              twin: twinRef(ref),
              dataSet: QUERY_TABLES[s].set,
              lastMinutes: o.lastMinutes,
              limit: o.limit,
              includeContent: s === "raw" && o.content === true,
            },
            { signal: c.signal },
          );
          data[s] = res.rows;
        }
        // Several reads: the twin's key and kind, its instance content, and each data set queried (absent: not queried).
        if (c.out.format !== "table")
          return c.out.object({
            twin: t.key,
            kind: KIND_NAMES[t.kind],
            content,
            rawData: data.raw,
            historizedData: data.historized,
            rejectedData: data.rejected,
          });
        if (content !== undefined) {
          c.out.note(c.out.paint("Digital Twin Instance content", "bold"));
          c.out.note(JSON.stringify(content));
        }
        for (const s of sets) {
          const rows = data[s] ?? [];
          c.out.note(c.out.paint(tableTitle(QUERY_TABLES[s].title, rows.length), "bold"));
          const cols =
            s === "raw" && o.content
              ? [...QUERY_TABLES.raw.columns, { header: "Payload", value: (r: JsonObject) => cell(scalar(r.content), 80) }]
              : QUERY_TABLES[s].columns;
          if (rows.length > 0) c.out.table(rows, cols);
        }
      }),
    ["meridian twin query custom-adapter", "meridian twin query custom-adapter --last-minutes 60 -o json"],
  );
  examples(
    twin
      .command("delete <twin>")
      .description("manage-dt delete: the instance, then the adapter and model Meridian created for it (unless another twin uses them)")
      .option("--force", "also delete the adapter and model when other twins use them")
      .action(async (ref: string, o: { force?: boolean }) => {
        const c = ctx();
        const res = await c.client(OciTwinManagerService).deleteTwin({ twin: twinRef(ref), force: o.force === true }, { signal: c.signal });
        const rows = [
          ...res.deletedIds.map((id) => ({ id, outcome: "deleted", why: "" })),
          ...Object.entries(res.kept).map(([id, why]) => ({ id, outcome: "kept", why })),
        ];
        c.out.list(
          rows,
          [
            { header: "OCID", value: (r) => r.id },
            { header: "OUTCOME", value: (r) => r.outcome, colour: (r) => (r.outcome === "deleted" ? "green" : "yellow") },
            { header: "WHY", value: (r) => r.why },
          ],
          asJson(DeleteTwinResponseSchema, res),
        );
      }),
    ["meridian twin delete custom-adapter", "meridian twin delete ocid1.iotdigitaltwininstance.oc1..xxxx --force"],
  );
  examples(
    twin
      .command("list")
      .description("the twins Meridian manages, with the state of their OCI resources")
      .option("--domain <ocid>", "only this IoT domain")
      .option("--all", "follow every page")
      .action(async (o: { domain?: string; all?: boolean }) => {
        const c = ctx();
        const client = c.client(OciTwinManagerService);
        const { items: twins, nextPageToken } = await pages(
          o.all,
          async (pageToken) => {
            const r = await client.listTwins({ iotDomainId: o.domain ?? "", pageSize: 1000, pageToken }, { signal: c.signal });
            return { items: r.twins, next: r.nextPageToken };
          },
          c,
        );
        c.out.list(twins, TWIN_COLUMNS, asJson(ListTwinsResponseSchema, create(ListTwinsResponseSchema, { twins, nextPageToken })));
      }),
    ["meridian twin list", "meridian twin list --all -o json"],
  );
  examples(
    twin
      .command("get <twin>")
      .description("one twin (by key or instance OCID) with its OCI resources")
      .action(async (ref: string) => {
        const c = ctx();
        const res = await c.client(OciTwinManagerService).getTwin({ twin: twinRef(ref) }, { signal: c.signal });
        const t = res.twin;
        c.out.list(t ? [t] : [], TWIN_COLUMNS, asJson(GetTwinResponseSchema, res));
        if (!t) return;
        c.out.table(resourcesOf(t), RESOURCE_COLUMNS);
        if (t.error) c.out.warn(t.error);
      }),
    ["meridian twin get custom-adapter", "meridian twin get custom-adapter -o yaml"],
  );
  examples(
    twin
      .command("data <twin>")
      .description("one data set of a twin from ORDS: raw, historized, rejected, snapshot or raw-command")
      .requiredOption(
        "--set <set>",
        "raw, historized, rejected, snapshot or raw-command",
        choiceFlag("--set", Object.keys(DATA_SETS) as (keyof typeof DATA_SETS)[]),
      )
      .option("-l, --last-minutes <n>", "how far back, 1-43200 (default 5)", intFlag("--last-minutes", 1, 43_200))
      .option("--start <time>", "instead: from this time (RFC 3339 or back from now)", timeFlag("--start"))
      .option("--end <time>", "to this time", timeFlag("--end"))
      .option("--content-path <path>", "historized and snapshot: only this content path (again, or comma-separated, for more)", listFlag)
      .option("--include-content", "raw and rejected: read each row's payload too")
      .option("--limit <n>", "1-500", intFlag("--limit", 1, 500), 100)
      .option("--offset <n>", "rows to skip", intFlag("--offset", 0, 1_000_000), 0)
      .option("--ascending", "oldest first (default newest first, as manage-dt)")
      .action(
        async (
          ref: string,
          o: {
            set: keyof typeof DATA_SETS;
            lastMinutes?: number;
            start?: Timestamp;
            end?: Timestamp;
            contentPath?: string[];
            includeContent?: boolean;
            limit: number;
            offset: number;
            ascending?: boolean;
          },
        ) => {
          const c = ctx();
          if (o.lastMinutes !== undefined && o.start) throw new CliError("--last-minutes or --start: give one", EXIT.usage);
          if (o.end && !o.start) throw new CliError("--end goes with --start", EXIT.usage);
          const res = await c.client(OciTwinManagerService).queryTwinData(
            {
              twin: twinRef(ref),
              dataSet: DATA_SETS[o.set],
              lastMinutes: o.lastMinutes ?? 0,
              startTime: o.start,
              endTime: o.end,
              contentPaths: o.contentPath ?? [],
              includeContent: o.includeContent === true,
              limit: o.limit,
              offset: o.offset,
              ascending: o.ascending === true,
            },
            { signal: c.signal },
          );
          c.out.list(res.rows, rowColumns(res.rows), asJson(QueryTwinDataResponseSchema, res));
          if (res.hasMore && c.out.format === "table") c.out.note(`more rows: --offset ${o.offset + res.rows.length}`);
        },
      ),
    [
      "meridian twin data custom-adapter --set historized --last-minutes 60",
      "meridian twin data custom-adapter --set rejected --start 1d -o json",
    ],
  );
  examples(
    twin
      .command("send <twin> <payload>")
      .description("post one payload to the twin's device endpoint, as its device would (JSON object, @file or @-)")
      .option("--endpoint <path>", "the device endpoint (default iot/v1/telemetry)")
      .action(async (ref: string, payload: string, o: { endpoint?: string }) => {
        const c = ctx();
        if (o.endpoint?.includes("..")) throw new CliError(`--endpoint: "${o.endpoint}" may not hold ".."`, EXIT.usage);
        const res = await c
          .client(OciTwinManagerService)
          .sendTwinData(
            { twin: twinRef(ref), endpoint: o.endpoint ?? "", payload: jsonObjectArg(payload, "the payload") },
            { signal: c.signal },
          );
        c.out.result(`sent to ${ref}`, asJson(SendTwinDataResponseSchema, res));
      }),
    [
      `meridian twin send custom-adapter '{"sht_temperature": 23.8, "qmp_temperature": 24.4, "humidity": 56.1, "pressure": 1012.2, "count": 5479}'`,
    ],
  );
  examples(
    twin
      .command("source <twin>")
      .description("choose which of the twin's data is published on the bus (none: stop)")
      .argument("[sets]", "historized,raw,rejected, or none")
      .option("--poll-ms <ms>", "how often ORDS is asked (default: the service's)", intFlag("--poll-ms", 1000, 86_400_000))
      .option("--start <time>", "where reading starts the first time", timeFlag("--start"))
      .action(async (ref: string, sets: string | undefined, o: { pollMs?: number; start?: Timestamp }) => {
        const c = ctx();
        const src =
          sets === undefined || sets === "none" ? undefined : { ...sourceFlags(sets), pollIntervalMs: o.pollMs ?? 0, startTime: o.start };
        const res = await c.client(OciTwinManagerService).setTwinSource({ twin: twinRef(ref), source: src }, { signal: c.signal });
        c.out.list(res.twin ? [res.twin] : [], TWIN_COLUMNS, asJson(SetTwinSourceResponseSchema, res));
      }),
    ["meridian twin source custom-adapter historized,rejected", "meridian twin source custom-adapter none"],
  );
  examples(
    twin
      .command("secret <twin>")
      .description("give Meridian the device secret routes into the twin post with (or --clear it)")
      .option("--file <path>", "read it from this file")
      .option("--env <name>", "read it from this environment variable")
      .option("--clear", "forget it")
      .action(async (ref: string, o: { file?: string; env?: string; clear?: boolean }) => {
        const c = ctx();
        const secret = o.clear ? "" : secretFrom(c, { file: o.file, env: o.env }, "the device secret");
        if (secret === undefined) throw new CliError("give --file, --env or --clear", EXIT.usage);
        const res = await c
          .client(OciTwinManagerService)
          .setTwinDeviceSecret({ twin: twinRef(ref), deviceSecret: secret }, { signal: c.signal });
        c.out.list(res.twin ? [res.twin] : [], TWIN_COLUMNS, asJson(SetTwinDeviceSecretResponseSchema, res));
      }),
    ["meridian twin secret custom-adapter --env DEVICE_PASSWORD"],
  );

  // ---- the control plane as it is ----
  const models = twin.command("models").description("digital twin models of an IoT domain");
  examples(
    listOptions(models.command("list").description("the domain's models"))
      .option("--spec-uri-prefix <dtmi>", "a DTMI prefix (every version)")
      .action(async (o: { domain?: string; state?: keyof typeof STATES; pageSize: number; all?: boolean; specUriPrefix?: string }) => {
        const c = ctx();
        const client = c.client(OciTwinManagerService);
        const { items, nextPageToken } = await pages(
          o.all,
          async (pageToken) => {
            const r = await client.listDigitalTwinModels(
              {
                iotDomainId: o.domain ?? "",
                specUriStartsWith: o.specUriPrefix ?? "",
                lifecycleState: o.state ? STATES[o.state] : 0,
                pageSize: o.pageSize,
                pageToken,
              },
              { signal: c.signal },
            );
            return { items: r.models, next: r.nextPageToken };
          },
          c,
        );
        c.out.list(
          items,
          MODEL_COLUMNS,
          asJson(ListDigitalTwinModelsResponseSchema, create(ListDigitalTwinModelsResponseSchema, { models: items, nextPageToken })),
        );
      }),
    ["meridian twin models list", "meridian twin models list --spec-uri-prefix dtmi:com:oracle --state active"],
  );
  examples(
    models
      .command("get <ocid>")
      .description("a model with its DTDL")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OciTwinManagerService).getDigitalTwinModel({ id }, { signal: c.signal });
        if (c.out.format !== "table") c.out.object(asJson(GetDigitalTwinModelResponseSchema, res));
        else if (res.model) c.out.object(asJson(DigitalTwinModelSchema, res.model));
      }),
    ["meridian twin models get ocid1.iotdigitaltwinmodel.oc1..xxxx -o json"],
  );
  examples(
    listOptions(twin.command("adapters").description("digital twin adapters of an IoT domain"))
      .option("--display-name <name>", "only this display name")
      .action(async (o: { domain?: string; state?: keyof typeof STATES; pageSize: number; all?: boolean; displayName?: string }) => {
        const c = ctx();
        const client = c.client(OciTwinManagerService);
        const { items, nextPageToken } = await pages(
          o.all,
          async (pageToken) => {
            const r = await client.listDigitalTwinAdapters(
              {
                iotDomainId: o.domain ?? "",
                displayName: o.displayName ?? "",
                lifecycleState: o.state ? STATES[o.state] : 0,
                pageSize: o.pageSize,
                pageToken,
              },
              { signal: c.signal },
            );
            return { items: r.adapters, next: r.nextPageToken };
          },
          c,
        );
        c.out.list(
          items,
          ADAPTER_COLUMNS,
          asJson(ListDigitalTwinAdaptersResponseSchema, create(ListDigitalTwinAdaptersResponseSchema, { adapters: items, nextPageToken })),
        );
      }),
    ["meridian twin adapters", "meridian twin adapters --display-name pvhd-m5-env-cstm-adapter -o json"],
  );
  examples(
    listOptions(twin.command("instances").description("digital twin instances of an IoT domain"))
      .option("--display-name <name>", "only this display name")
      .action(async (o: { domain?: string; state?: keyof typeof STATES; pageSize: number; all?: boolean; displayName?: string }) => {
        const c = ctx();
        const client = c.client(OciTwinManagerService);
        const { items, nextPageToken } = await pages(
          o.all,
          async (pageToken) => {
            const r = await client.listDigitalTwinInstances(
              {
                iotDomainId: o.domain ?? "",
                displayName: o.displayName ?? "",
                lifecycleState: o.state ? STATES[o.state] : 0,
                pageSize: o.pageSize,
                pageToken,
              },
              { signal: c.signal },
            );
            return { items: r.instances, next: r.nextPageToken };
          },
          c,
        );
        c.out.list(
          items,
          INSTANCE_COLUMNS,
          asJson(
            ListDigitalTwinInstancesResponseSchema,
            create(ListDigitalTwinInstancesResponseSchema, { instances: items, nextPageToken }),
          ),
        );
      }),
    ["meridian twin instances --state active", "meridian twin instances --display-name pvhd-m5-env-cstm-01"],
  );
}

function sourceFlags(sets: string): { historized: boolean; raw: boolean; rejected: boolean } {
  const names = sets.split(",").map((s) => s.trim().toLowerCase());
  for (const n of names)
    if (!["historized", "raw", "rejected"].includes(n))
      throw new CliError(`source "${n}": not one of historized, raw, rejected`, EXIT.usage);
  return { historized: names.includes("historized"), raw: names.includes("raw"), rejected: names.includes("rejected") };
}

const MODEL_COLUMNS: readonly Column<DigitalTwinModel>[] = [
  { header: "SPEC URI", value: (m) => m.specUri },
  { header: "DISPLAY NAME", value: (m) => m.displayName },
  { header: "STATE", value: (m) => STATE_NAMES[m.lifecycleState], colour: (m) => stateColour(m.lifecycleState) },
  { header: "OCID", value: (m) => m.id },
  { header: "CREATED", value: (m) => ts(m.createTime) },
];
const ADAPTER_COLUMNS: readonly Column<DigitalTwinAdapter>[] = [
  { header: "DISPLAY NAME", value: (a) => a.displayName },
  { header: "MODEL", value: (a) => a.digitalTwinModelSpecUri },
  { header: "KIND", value: (a) => (a.inboundEnvelope || a.inboundRoutes.length > 0 ? "custom" : "default") },
  { header: "STATE", value: (a) => STATE_NAMES[a.lifecycleState], colour: (a) => stateColour(a.lifecycleState) },
  { header: "OCID", value: (a) => a.id },
];
const INSTANCE_COLUMNS: readonly Column<DigitalTwinInstance>[] = [
  { header: "DISPLAY NAME", value: (i) => i.displayName },
  { header: "EXTERNAL KEY", value: (i) => i.externalKey },
  { header: "MODEL", value: (i) => i.digitalTwinModelSpecUri },
  { header: "CONNECTIVITY", value: (i) => i.connectivityType },
  { header: "STATE", value: (i) => STATE_NAMES[i.lifecycleState], colour: (i) => stateColour(i.lifecycleState) },
  { header: "OCID", value: (i) => i.id },
];

import { writeFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  CheckEndpointResponseSchema,
  type CreatedDefinition,
  CreateEndpointResponseSchema,
  DefinitionKind,
  type DefinitionOutcome,
  DeleteDefinitionsResponseSchema,
  DeleteEndpointResponseSchema,
  type Endpoint,
  type EndpointDefinition,
  EndpointKind,
  type EndpointResult,
  EndpointResultSchema,
  EndpointSchema,
  EndpointStatusSchema,
  GetEndpointResponseSchema,
  GetEndpointStatusResponseSchema,
  ListContainersResponseSchema,
  ListDefinitionsResponseSchema,
  ListEndpointsResponseSchema,
  ListPointsResponseSchema,
  ListTypesResponseSchema,
  OmfAction,
  OmfMessageType,
  OmfSenderService,
  type Point,
  ReadValuesResponseSchema,
  UpdateEndpointResponseSchema,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { Command } from "commander";
import type { CliContext, Column, JsonObject } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import {
  type Check,
  comparePiPoint,
  compareSdsEvent,
  expectedFrom,
  failureMessage,
  fillPlaceholders,
  hasPlaceholders,
  OMF_ACTIONS,
  OMF_KINDS,
  type OmfActionName,
  type OmfKind,
  type OmfMessage,
  parseOmfFiles,
  recordOf,
  SEED_FILE_NAMES,
  sendOrder,
  shortName,
} from "./omf-files.js";
import { asJson, cell, choiceFlag, examples, intFlag, listFlag, numberFlag, readText, secretFrom, timeFlag, ts } from "./options.js";

type Ctx = () => CliContext;

const KINDS = { pi: EndpointKind.PI, adh: EndpointKind.ADH, eds: EndpointKind.EDS } as const;
const KIND_NAMES: Record<number, string> = { [EndpointKind.PI]: "PI", [EndpointKind.ADH]: "ADH", [EndpointKind.EDS]: "EDS" };
const MESSAGE_TYPES: Record<OmfKind, OmfMessageType> = {
  type: OmfMessageType.TYPE,
  container: OmfMessageType.CONTAINER,
  data: OmfMessageType.DATA,
};
const ACTIONS: Record<OmfActionName, OmfAction> = { create: OmfAction.CREATE, update: OmfAction.UPDATE, delete: OmfAction.DELETE };

export const ENDPOINT_COLUMNS: readonly Column<Endpoint>[] = [
  { header: "ID", value: (e) => e.id },
  { header: "KIND", value: (e) => KIND_NAMES[e.kind] ?? "?" },
  { header: "URL", value: (e) => e.url },
  { header: "OMF", value: (e) => e.omfVersion || "1.2" },
  { header: "SECRET", value: (e) => (e.hasSecret ? "yes" : "no") },
  { header: "ORIGIN", value: (e) => e.origin },
  { header: "REVISION", value: (e) => e.revision, align: "right" },
  { header: "INSECURE", value: (e) => e.insecureSettings.join(","), colour: (e) => (e.insecureSettings.length > 0 ? "yellow" : undefined) },
];

const ENDPOINT_FIELDS = [
  ["ID", "id"],
  ["Kind", "kind"],
  ["URL", "url"],
  ["OMF version", "omfVersion"],
  ["User", "username"],
  ["Data server", "dataServerName"],
  ["Tenant", "tenantId"],
  ["Namespace", "namespaceId"],
  ["Client id", "clientId"],
  ["Secret stored", "hasSecret"],
  ["Origin", "origin"],
  ["Created", "createTime"],
  ["Revision", "revision"],
  ["Insecure settings", "insecureSettings"],
] as const;

interface EndpointFlags {
  kind?: keyof typeof KINDS;
  url?: string;
  omfVersion?: string;
  username?: string;
  secret?: string;
  secretFile?: string;
  secretEnv?: string;
  dataServerName?: string;
  tenant?: string;
  namespace?: string;
  clientId?: string;
  apiVersion?: string;
  tokenUrl?: string;
  caPemPath?: string;
  insecureSkipTlsVerify?: boolean;
  allowHttp?: boolean;
  compression?: boolean;
  timeoutMs?: number;
  maxBodyBytes?: number;
  maxValuesPerRequest?: number;
  acceptVerbosity?: string;
  producerToken?: string;
}

function endpointOptions(cmd: Command, creating: boolean): Command {
  return cmd
    .option(
      "--kind <kind>",
      `pi (PI Web API), adh (AVEVA Data Hub, the seed's OCS) or eds (Edge Data Store)${creating ? " (required)" : ""}`,
      choiceFlag("--kind", ["pi", "adh", "eds"] as const),
    )
    .option(
      "--url <url>",
      "PI: the PI Web API root (https://host/piwebapi); ADH: the resource; EDS: http://localhost:5590 (the seed's resource)",
    )
    .option("--omf-version <v>", '"1.0", "1.1" or "1.2" (the endpoint\'s default: 1.2; the seed speaks 1.1)')
    .option("--username <name>", "PI: the Basic-auth user")
    .option("--secret <secret>", "PI: the password; ADH: the client secret (visible to ps: prefer --secret-file / --secret-env)")
    .option("--secret-file <path>", "read the secret from this file")
    .option("--secret-env <name>", "read the secret from this environment variable")
    .option("--data-server-name <name>", "PI: the Data Archive (read-back)")
    .option("--tenant <id>", "ADH: the tenant id")
    .option("--namespace <id>", "ADH: the namespace id")
    .option("--client-id <id>", "ADH: the client id")
    .option("--api-version <v>", "ADH / EDS API version (default v1)")
    .option("--token-url <url>", "ADH: the token endpoint (default: discovery)")
    .option("--ca-pem-path <path>", "a CA bundle on omf-sender's file system (inside OMF_CA_DIR)")
    .option("--insecure-skip-tls-verify", "turn TLS verification off (lab only; needs OMF_ALLOW_INSECURE_ENDPOINTS)")
    .option("--allow-http", "permit plain http for PI / ADH (lab or emulator only)")
    .option("--no-compression", "do not gzip request bodies")
    .option("--timeout-ms <ms>", "per request (default 30000)", intFlag("--timeout-ms", 1, 600_000))
    .option("--max-body-bytes <n>", "body budget per request", intFlag("--max-body-bytes", 1024, 64 * 1024 * 1024))
    .option("--max-values-per-request <n>", "values per data request", intFlag("--max-values-per-request", 1, 1_000_000))
    .option("--accept-verbosity <v>", 'PI: Accept-Verbosity sent with each message, e.g. "verbose"')
    .option("--producer-token <t>", "producertoken sent with OMF 1.0 / 1.1 messages");
}

/** The Endpoint a create or update sends: `base` (the stored one for an update) with the flags given over it. */
export function endpointFrom(id: string, f: EndpointFlags, secret: string | undefined, base?: Endpoint): Endpoint {
  const e = create(
    EndpointSchema,
    base ? { ...base, secret: "", hasSecret: false, origin: "", revision: 0n, insecureSettings: [] } : { id },
  );
  e.id = id;
  if (f.kind !== undefined) e.kind = KINDS[f.kind];
  if (f.url !== undefined) e.url = f.url;
  if (f.omfVersion !== undefined) e.omfVersion = f.omfVersion;
  if (f.username !== undefined) e.username = f.username;
  if (secret !== undefined) e.secret = secret;
  if (f.dataServerName !== undefined) e.dataServerName = f.dataServerName;
  if (f.tenant !== undefined) e.tenantId = f.tenant;
  if (f.namespace !== undefined) e.namespaceId = f.namespace;
  if (f.clientId !== undefined) e.clientId = f.clientId;
  if (f.apiVersion !== undefined) e.apiVersion = f.apiVersion;
  if (f.tokenUrl !== undefined) e.tokenUrl = f.tokenUrl;
  if (f.caPemPath !== undefined) e.caPemPath = f.caPemPath;
  if (f.insecureSkipTlsVerify !== undefined) e.insecureSkipTlsVerify = f.insecureSkipTlsVerify;
  if (f.allowHttp !== undefined) e.allowHttp = f.allowHttp;
  // commander's --no-compression sets compression false; only an explicit flag changes a stored endpoint.
  if (f.compression === false) e.disableCompression = true;
  if (f.timeoutMs !== undefined) e.timeoutMs = f.timeoutMs;
  if (f.maxBodyBytes !== undefined) e.maxBodyBytes = f.maxBodyBytes;
  if (f.maxValuesPerRequest !== undefined) e.maxValuesPerRequest = f.maxValuesPerRequest;
  if (f.acceptVerbosity !== undefined) e.acceptVerbosity = f.acceptVerbosity;
  if (f.producerToken !== undefined) e.producerToken = f.producerToken;
  e.createTime = undefined;
  return e;
}

function requireEndpointFlags(f: EndpointFlags): void {
  if (f.kind === undefined) throw new CliError("--kind is required: pi, adh or eds", EXIT.usage);
  if (f.url === undefined && f.kind !== "eds") throw new CliError(`--url is required for a ${f.kind} endpoint`, EXIT.usage);
}

/** get, create, update: the response for scripts, the endpoint's fields (kind by its name) for people. */
function endpointOut(ctx: CliContext, doc: JsonObject, e: Endpoint | undefined): void {
  if (ctx.out.format !== "table") {
    ctx.out.object(doc);
    return;
  }
  if (!e) return;
  const j = asJson(EndpointSchema, e);
  j.kind = KIND_NAMES[e.kind] ?? j.kind;
  ctx.out.object(j, ENDPOINT_FIELDS);
}

/** One send of the files' objects: a row of `omf send`'s table. */
export interface SendRow {
  iteration: number;
  file: string;
  kind: OmfKind;
  action: OmfActionName;
  id: string;
  result: EndpointResult;
}

export const SEND_COLUMNS: readonly Column<SendRow>[] = [
  { header: "FILE", value: (r) => shortName(r.file) },
  { header: "MESSAGE", value: (r) => r.kind },
  { header: "ACTION", value: (r) => r.action },
  { header: "ID", value: (r) => r.id },
  { header: "ENDPOINT", value: (r) => r.result.endpointId },
  {
    header: "RESULT",
    value: (r) => (r.result.ok ? (r.result.alreadyExists ? "exists" : "ok") : r.result.errorKind || "failed"),
    colour: (r) => (r.result.ok ? "green" : "red"),
  },
  { header: "HTTP", value: (r) => r.result.httpStatus || "", align: "right" },
  { header: "ERROR", value: (r) => cell(r.result.error, 80) },
];

const POINT_COLUMNS: readonly Column<Point>[] = [
  { header: "NAME", value: (p) => p.name },
  { header: "TYPE", value: (p) => p.type },
  { header: "ID", value: (p) => cell(p.id, 40) },
  { header: "DESCRIPTION", value: (p) => cell(p.description, 50) },
];

const DEFINITION_COLUMNS: readonly Column<EndpointDefinition>[] = [
  { header: "ID", value: (d) => d.id },
  { header: "TYPE ID", value: (d) => d.typeId },
];

const KIND_OF: Record<number, string> = { [DefinitionKind.TYPE]: "type", [DefinitionKind.CONTAINER]: "container" };

export const OUTCOME_COLUMNS: readonly Column<DefinitionOutcome>[] = [
  { header: "KIND", value: (d) => KIND_OF[d.kind] ?? "?" },
  { header: "ID", value: (d) => d.id },
  {
    header: "OUTCOME",
    value: (d) => d.outcome,
    colour: (d) => (d.outcome === "failed" ? "red" : d.outcome === "in_use" || d.outcome === "would_delete" ? "yellow" : "green"),
  },
  { header: "ERROR", value: (d) => cell(d.error, 80) },
];

const CREATED_COLUMNS: readonly Column<CreatedDefinition>[] = [
  { header: "KIND", value: (d) => KIND_OF[d.kind] ?? "?" },
  { header: "ID", value: (d) => d.id },
  { header: "TYPE ID", value: (d) => d.typeId },
  { header: "ROUTE", value: (d) => d.routeId || "(SendOmf)" },
  { header: "CREATED", value: (d) => ts(d.createTime) },
];

export const CHECK_COLUMNS: readonly Column<Check>[] = [
  { header: "CHECK", value: (c) => c.what },
  { header: "NAME", value: (c) => c.name },
  { header: "RESULT", value: (c) => (c.ok ? "ok" : "DIFFERS"), colour: (c) => (c.ok ? "green" : "red") },
  { header: "EXPECTED", value: (c) => c.expected ?? "" },
  { header: "FOUND", value: (c) => c.actual ?? c.detail ?? "" },
];

function readFiles(paths: readonly string[]): Array<{ path: string; text: string }> {
  return paths.map((path) => ({ path, text: readText(path, "OMF file") }));
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

interface SendFlags {
  endpoint: string[];
  action: OmfActionName;
  messageType?: OmfKind;
  iterations: number;
  interval: number;
  batch?: boolean;
  keepGoing?: boolean;
  record?: string;
}

/**
 * program.py against the gateway: the objects one per request (or one request per file and kind with --batch), types
 * first, then containers, then data; data templates with null placeholders filled per iteration as get_data does,
 * the iterations --interval seconds apart. Stops at the first failed message (program.py raises), unless --keep-going.
 */
export async function omfSend(ctx: CliContext, files: readonly string[], flags: SendFlags): Promise<SendRow[]> {
  const parsed = parseOmfFiles(readFiles(files), { action: flags.action, kind: flags.messageType });
  const templated = parsed.some(hasPlaceholders);
  const iterations = flags.iterations;
  const client = ctx.client(OmfSenderService);
  const definitions = sendOrder(parsed.filter((m) => m.kind !== "data"));
  const data = sendOrder(parsed.filter((m) => m.kind === "data"));
  const perIteration = flags.batch ? groups(data).length : data.length;
  const total = (flags.batch ? groups(definitions).length : definitions.length) + perIteration * iterations;
  const rows: SendRow[] = [];
  const progress = ctx.progress("sending OMF", total);
  let failed = 0;
  let lastSent: OmfMessage[] = [];
  const send = async (batch: OmfMessage[], iteration: number): Promise<boolean> => {
    const first = batch[0]!;
    const res = await client.sendOmf(
      {
        messageType: MESSAGE_TYPES[first.kind],
        action: ACTIONS[first.action],
        body: JSON.stringify(batch.map((m) => m.object)),
        endpointIds: flags.endpoint,
      },
      { signal: ctx.signal },
    );
    progress.tick();
    let ok = true;
    for (const result of res.results) {
      for (const m of batch) rows.push({ iteration, file: m.file, kind: m.kind, action: m.action, id: m.id, result });
      if (!result.ok) ok = false;
    }
    if (!ok) failed++;
    return ok || flags.keepGoing === true;
  };
  const runAll = async () => {
    for (const b of flags.batch ? groups(definitions) : definitions.map((m) => [m])) if (!(await send(b, 0))) return;
    for (let i = 0; i < iterations && !ctx.signal.aborted; i++) {
      if (i > 0) await sleep(flags.interval * 1000, ctx.signal);
      if (ctx.signal.aborted) return;
      const filled = templated
        ? fillPlaceholders([...parsed.filter((m) => m.kind !== "data"), ...data], i).filter((m) => m.kind === "data")
        : data;
      for (const b of flags.batch ? groups(filled) : filled.map((m) => [m])) if (!(await send(b, i))) return;
      lastSent = filled;
    }
  };
  try {
    await runAll();
  } finally {
    progress.done();
  }
  if (flags.record !== undefined) {
    writeFileSync(flags.record, `${JSON.stringify(recordOf([...definitions, ...lastSent]), null, 2)}\n`);
    ctx.out.note(`recorded what was sent in ${flags.record} (give it to omf verify)`);
  }
  // Several SendOmf calls: one row per message and endpoint, its endpoint result as protobuf JSON under `result`.
  ctx.out.list(
    rows,
    iterations > 1 ? [{ header: "ITER", value: (r: SendRow) => r.iteration, align: "right" as const }, ...SEND_COLUMNS] : SEND_COLUMNS,
    {
      sends: rows.map((r) => ({
        iteration: r.iteration,
        file: r.file,
        messageType: r.kind,
        action: r.action,
        id: r.id,
        result: asJson(EndpointResultSchema, r.result),
      })),
    },
  );
  if (ctx.signal.aborted) throw new CliError(`interrupted after ${rows.length} of ${total} sends`, EXIT.interrupted);
  if (failed > 0) {
    const first = rows.find((r) => !r.result.ok)!;
    throw new CliError(
      `${failed} message${failed === 1 ? "" : "s"} failed; first: ${first.kind} ${first.id} (${shortName(first.file)}) at ${first.result.endpointId}: ${first.result.error || first.result.errorKind}`,
      EXIT.failed,
    );
  }
  return rows;
}

/** --batch: consecutive messages of one file, kind and action go as one request. */
function groups(messages: readonly OmfMessage[]): OmfMessage[][] {
  const out: OmfMessage[][] = [];
  for (const m of messages) {
    const g = out[out.length - 1];
    if (g && g[0]!.file === m.file && g[0]!.kind === m.kind && g[0]!.action === m.action) g.push(m);
    else out.push([m]);
  }
  return out;
}

/**
 * test.py against the gateway. PI Web API: for each container the points named `{container}*`; each must hold a
 * value (not "Pt Created") equal to the last sent (a dotted name compares that property). Data Hub / EDS: each type
 * and stream exists (the stream of its type), and each stream's last event equals what was sent, its index the same
 * instant. Without concrete data values (templates), existence only.
 */
export async function omfVerify(ctx: CliContext, files: readonly string[], endpointId: string): Promise<Check[]> {
  const expected = expectedFrom(parseOmfFiles(readFiles(files), { action: "create" }));
  const client = ctx.client(OmfSenderService);
  const endpoint = (await client.getEndpoint({ id: endpointId }, { signal: ctx.signal })).endpoint;
  const checks: Check[] = [];
  const containerIds = [
    ...expected.containers.map((c) => c.id),
    ...[...expected.lastValues.keys()].filter((id) => !expected.containers.some((c) => c.id === id)),
  ];
  const progress = ctx.progress("reading back", containerIds.length + expected.types.length);
  try {
    if (endpoint?.kind === EndpointKind.PI) {
      for (const c of containerIds) {
        const points = (await client.listPoints({ endpointId, nameFilter: `${c}*`, pageSize: 1000 }, { signal: ctx.signal })).points;
        progress.tick();
        if (points.length === 0) {
          checks.push({ what: "point", name: `${c}*`, ok: false, detail: "no PI point of this container" });
          continue;
        }
        for (const p of points) {
          const v = await client.readValues({ endpointId, point: p.name, last: true }, { signal: ctx.signal });
          const raw = v.values[0]?.valueJson;
          const value = raw === undefined ? undefined : JSON.parse(raw);
          const ptCreated =
            v.noData || (value !== null && typeof value === "object" && (value as { Name?: unknown }).Name === "Pt Created");
          checks.push({ what: "point", name: p.name, ok: !ptCreated, detail: ptCreated ? "holds no value (Pt Created)" : "found" });
          const sent = expected.lastValues.get(c);
          if (!ptCreated && sent) checks.push(...comparePiPoint(p.name, value, sent));
        }
      }
    } else {
      for (const t of expected.types) {
        const found = (await client.listTypes({ endpointId, idFilter: t }, { signal: ctx.signal })).types.some((x) => x.id === t);
        progress.tick();
        checks.push({ what: "type", name: t, ok: found, detail: found ? "found" : "not found" });
      }
      for (const c of containerIds) {
        const want = expected.containers.find((x) => x.id === c)?.typeId;
        const streams = (await client.listContainers({ endpointId, idFilter: c }, { signal: ctx.signal })).containers;
        progress.tick();
        const s = streams.find((x) => x.id === c);
        const ok = s !== undefined && (want === undefined || s.typeId === want);
        checks.push({
          what: "container",
          name: c,
          ok,
          ...(want ? { expected: want } : {}),
          detail: s === undefined ? "not found" : s.typeId,
        });
        const sent = expected.lastValues.get(c);
        if (!s || !sent) continue;
        const last = await client.readValues({ endpointId, point: c, last: true }, { signal: ctx.signal });
        const raw = last.values[0]?.valueJson;
        if (last.noData || raw === undefined) {
          checks.push({ what: "value", name: c, ok: false, detail: "the stream holds no event" });
          continue;
        }
        checks.push(...compareSdsEvent(c, JSON.parse(raw) as Record<string, unknown>, sent));
      }
    }
  } finally {
    progress.done();
  }
  if (expected.lastValues.size === 0 && containerIds.length > 0)
    ctx.out.warn(
      "the files give no data values (templates with null placeholders): only existence was checked; give the file omf send --record wrote",
    );
  return checks;
}

export function registerOmf(program: Command, ctx: Ctx): void {
  const omf = program
    .command("omf")
    .description("OMF endpoints (PI Web API, AVEVA Data Hub, Edge Data Store): send, read back, verify, clean up");

  // ---- endpoints ----
  const endpoints = omf.command("endpoints").description("the OMF endpoints omf-sender sends to");
  examples(
    endpoints
      .command("list")
      .description("every endpoint (credentials are never shown)")
      .action(async () => {
        const c = ctx();
        const res = await c.client(OmfSenderService).listEndpoints({}, { signal: c.signal });
        c.out.list(res.endpoints, ENDPOINT_COLUMNS, asJson(ListEndpointsResponseSchema, res));
      }),
    ["meridian omf endpoints list", "meridian omf endpoints list -o json"],
  );
  examples(
    endpoints
      .command("get <id>")
      .description("one endpoint with its revision (what update and delete take)")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OmfSenderService).getEndpoint({ id }, { signal: c.signal });
        endpointOut(c, asJson(GetEndpointResponseSchema, res), res.endpoint);
      }),
    ["meridian omf endpoints get plant-pi", "meridian omf endpoints get plant-pi -o yaml"],
  );
  examples(
    endpointOptions(endpoints.command("create <id>").description("add an endpoint (the seed's config.json entry, as flags)"), true).action(
      async (id: string, f: EndpointFlags) => {
        const c = ctx();
        requireEndpointFlags(f);
        const secret = secretFrom(c, { value: f.secret, file: f.secretFile, env: f.secretEnv }, "the secret");
        const res = await c.client(OmfSenderService).createEndpoint({ endpoint: endpointFrom(id, f, secret) }, { signal: c.signal });
        endpointOut(c, asJson(CreateEndpointResponseSchema, res), res.endpoint);
      },
    ),
    [
      "meridian omf endpoints create plant-pi --kind pi --url https://pi.example/piwebapi --username omf --secret-file ./pi-password --data-server-name PI01",
      "meridian omf endpoints create cloud --kind adh --url https://uswe.datahub.connect.aveva.com --tenant T --namespace Samples --client-id C --secret-env ADH_SECRET",
      "meridian omf endpoints create edge --kind eds --url http://localhost:5590",
    ],
  );
  examples(
    endpointOptions(
      endpoints
        .command("update <id>")
        .description("change an endpoint: reads it, applies the flags given, writes it back at the revision read")
        .option("--revision <n>", "the revision you read (default: the one just read)", intFlag("--revision", 1, Number.MAX_SAFE_INTEGER)),
      false,
    ).action(async (id: string, f: EndpointFlags & { revision?: number }) => {
      const c = ctx();
      const client = c.client(OmfSenderService);
      const stored = (await client.getEndpoint({ id }, { signal: c.signal })).endpoint;
      if (!stored) throw new CliError(`endpoint ${id}: not found`, EXIT.notFound);
      const secret = secretFrom(c, { value: f.secret, file: f.secretFile, env: f.secretEnv }, "the secret");
      const revision = f.revision !== undefined ? BigInt(f.revision) : stored.revision;
      const res = await client.updateEndpoint({ endpoint: endpointFrom(id, f, secret, stored), revision }, { signal: c.signal });
      endpointOut(c, asJson(UpdateEndpointResponseSchema, res), res.endpoint);
    }),
    [
      "meridian omf endpoints update plant-pi --timeout-ms 10000",
      "meridian omf endpoints update plant-pi --url https://pi2.example/piwebapi --secret-file ./pi-password",
    ],
  );
  examples(
    endpoints
      .command("delete <id>")
      .description("remove an API-created endpoint")
      .option("--revision <n>", "only at this revision (0: whatever is stored)", intFlag("--revision", 0, Number.MAX_SAFE_INTEGER), 0)
      .action(async (id: string, o: { revision: number }) => {
        const c = ctx();
        const res = await c.client(OmfSenderService).deleteEndpoint({ id, revision: BigInt(o.revision) }, { signal: c.signal });
        c.out.result(`endpoint ${id} deleted`, asJson(DeleteEndpointResponseSchema, res));
      }),
    ["meridian omf endpoints delete plant-pi", "meridian omf endpoints delete plant-pi --revision 3"],
  );
  examples(
    endpoints
      .command("check <id>")
      .description("authenticate and reach the endpoint's OMF resource, changing nothing (exit 1 when it cannot)")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OmfSenderService).checkEndpoint({ id }, { signal: c.signal });
        c.out.object(asJson(CheckEndpointResponseSchema, res), [
          ["Reachable", "reachable"],
          ["Authenticated", "authenticated"],
          ["HTTP status", "httpStatus"],
          ["Latency (ms)", "latencyMs"],
          ["Error", "error"],
        ]);
        if (!res.reachable || !res.authenticated)
          throw new CliError(
            `endpoint ${id}: ${!res.reachable ? "not reachable" : "not authenticated"}${res.error ? `: ${res.error}` : ""}`,
            EXIT.failed,
          );
      }),
    ["meridian omf endpoints check plant-pi"],
  );
  examples(
    endpoints
      .command("status <id>")
      .description("what omf-sender sent to the endpoint, what failed and what waits for it")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OmfSenderService).getEndpointStatus({ id }, { signal: c.signal });
        if (c.out.format !== "table") c.out.object(asJson(GetEndpointStatusResponseSchema, res));
        if (!res.status) return;
        if (c.out.format === "table")
          c.out.object(asJson(EndpointStatusSchema, res.status), [
            ["Endpoint", "endpointId"],
            ["Routes", "routes"],
            ["Sent events", "sentEvents"],
            ["Sent messages", "sentMessages"],
            ["Failed events", "failedEvents"],
            ["Failed messages", "failedMessages"],
            ["Buffered events", "bufferedEvents"],
            ["Pending messages", "pendingMessages"],
            ["Containers", "containers"],
            ["Max containers", "maxContainers"],
            ["OMF version", "omfVersion"],
            ["Version source", "omfVersionSource"],
            ["Last success", "lastSuccessTime"],
            ["Last error", "lastError"],
            ["Last error time", "lastErrorTime"],
            ["Configuration error", "configurationError"],
            ["Warnings", "warnings"],
          ]);
        for (const w of res.status.warnings) c.out.warn(w);
      }),
    ["meridian omf endpoints status plant-pi", "meridian omf endpoints status plant-pi -o json"],
  );

  // ---- send / verify / cleanup ----
  examples(
    omf
      .command("send [files...]")
      .description(
        "send seed-style OMF files (OMF-Types.json, OMF-Containers.json, OMF-Data.json: arrays of types / containers / data) as program.py does: types, then containers, then data, one object per request; null placeholders in data are filled per iteration as get_data does; -o json: {sends: [{iteration, file, messageType, action, id, result}]}",
      )
      .requiredOption("-e, --endpoint <id>", "the endpoint to send to (again, or comma-separated, for several)", listFlag)
      .option("--action <action>", "create, update or delete, for files that do not say", choiceFlag("--action", OMF_ACTIONS), "create")
      .option(
        "--message-type <type>",
        "type, container or data: every object of the files is one (default: each object says)",
        choiceFlag("--message-type", OMF_KINDS),
      )
      .option(
        "--iterations <n>",
        "send the data this many times (program.py loops; its test sends 2)",
        intFlag("--iterations", 1, 100_000),
        1,
      )
      .option("--interval <seconds>", "between iterations (program.py sleeps 1 s)", numberFlag("--interval", 0, 3600), 1)
      .option("--batch", "one request per file and message type instead of one per object")
      .option("--keep-going", "go on after a failed message (program.py stops)")
      .option("--record <file>", "write what was sent last (placeholders filled) for omf verify")
      .action(async (files: string[], f: SendFlags) => {
        const c = ctx();
        await omfSend(c, files.length > 0 ? files : SEED_FILE_NAMES, f);
      }),
    [
      "meridian omf send -e plant-pi OMF-Types.json OMF-Containers.json OMF-Data.json",
      "meridian omf send -e plant-pi --iterations 2 --record sent.json            # the seed's files in the current directory",
      "meridian omf send -e plant-pi --action delete OMF-Containers.json OMF-Types.json",
    ],
  );
  examples(
    omf
      .command("verify [files...]")
      .description(
        "read back what the files say from PI / Data Hub / EDS and compare, as test.py does; exit 1 naming each point or container that differs; -o json: {checks: [{what, name, ok, expected, actual, detail}], passed}",
      )
      .requiredOption("-e, --endpoint <id>", "the endpoint to read")
      .action(async (files: string[], o: { endpoint: string }) => {
        const c = ctx();
        const checks = await omfVerify(c, files.length > 0 ? files : SEED_FILE_NAMES, o.endpoint);
        // Computed from several reads: every check, and whether all passed.
        c.out.list(checks, CHECK_COLUMNS, { checks, passed: checks.every((x) => x.ok) });
        if (checks.some((x) => !x.ok)) throw new CliError(failureMessage(checks), EXIT.failed);
        c.out.note(`verified: ${checks.length} check${checks.length === 1 ? "" : "s"} passed`);
      }),
    [
      "meridian omf send -e plant-pi --iterations 2 --record sent.json && meridian omf verify -e plant-pi OMF-Types.json OMF-Containers.json sent.json",
      "meridian omf verify -e edge OMF-Types.json OMF-Containers.json sent.json -o json",
    ],
  );
  examples(
    omf
      .command("cleanup")
      .description("delete the types and containers omf-sender created at the endpoint, containers first (test.py's cleanup)")
      .requiredOption("-e, --endpoint <id>", "the endpoint")
      .option("--route <id>", "only what this route created first")
      .option("--dry-run", "list what would be deleted; delete nothing")
      .option("--max <n>", "definitions per call (the verb calls until none remain)", intFlag("--max", 1, 10_000), 1000)
      .action(async (o: { endpoint: string; route?: string; dryRun?: boolean; max: number }) => {
        const c = ctx();
        const client = c.client(OmfSenderService);
        // Calls until none remain: their outcomes in one response (counts summed, `remaining` from the last call).
        const all = create(DeleteDefinitionsResponseSchema, { dryRun: o.dryRun === true });
        const results = all.results;
        let failed = 0;
        const progress = c.progress("deleting definitions");
        try {
          for (;;) {
            const res = await client.deleteDefinitions(
              { endpointId: o.endpoint, routeId: o.route ?? "", dryRun: o.dryRun === true, maxDefinitions: o.max },
              { signal: c.signal },
            );
            results.push(...res.results);
            failed += res.failed;
            all.deleted += res.deleted;
            all.failed = failed;
            all.remaining = res.remaining;
            progress.total(results.length + res.remaining);
            progress.tick(res.results.length);
            // A dry run deletes nothing, and a call that deleted nothing would give the same answer again.
            if (res.dryRun || res.remaining === 0 || res.results.length === 0 || res.deleted === 0) break;
          }
        } finally {
          progress.done();
        }
        c.out.list(results, OUTCOME_COLUMNS, asJson(DeleteDefinitionsResponseSchema, all));
        if (failed > 0) throw new CliError(`${failed} definition${failed === 1 ? "" : "s"} could not be deleted`, EXIT.failed);
      }),
    ["meridian omf cleanup -e plant-pi", "meridian omf cleanup -e plant-pi --route plant-to-pi --dry-run"],
  );

  // ---- reads ----
  examples(
    omf
      .command("points")
      .description("PI points (PI Web API) or streams (Data Hub / EDS) whose name matches")
      .requiredOption("-e, --endpoint <id>", "the endpoint")
      .option("--filter <pattern>", "* any run, ? one character, case-insensitive")
      .option("--page-size <n>", "1 to 1000", intFlag("--page-size", 1, 1000), 1000)
      .option("--all", "follow every page")
      .action(async (o: { endpoint: string; filter?: string; pageSize: number; all?: boolean }) => {
        const c = ctx();
        const client = c.client(OmfSenderService);
        // With --all, the pages' points in one response, as if one page had held them all.
        const all = create(ListPointsResponseSchema);
        const points = all.points;
        let pageToken = "";
        do {
          const res = await client.listPoints(
            { endpointId: o.endpoint, nameFilter: o.filter ?? "", pageSize: o.pageSize, pageToken },
            { signal: c.signal },
          );
          points.push(...res.points);
          all.nextPageToken = res.nextPageToken;
          pageToken = o.all ? res.nextPageToken : "";
          if (!o.all && res.nextPageToken) c.out.note("more points: give --all");
        } while (pageToken);
        c.out.list(points, POINT_COLUMNS, asJson(ListPointsResponseSchema, all));
      }),
    ["meridian omf points -e plant-pi --filter 'FirstContainer*'", "meridian omf points -e edge --all -o json"],
  );
  examples(
    omf
      .command("values <point>")
      .description("a point's (PI) or stream's (Data Hub / EDS) values: the last one, or those in a window")
      .requiredOption("-e, --endpoint <id>", "the endpoint")
      .option("--last", "the current (last) value only")
      .option("--start <time>", "window start: RFC 3339, or back from now (15m, 2h, 1d)", timeFlag("--start"))
      .option("--end <time>", "window end", timeFlag("--end"))
      .option("--max <n>", "1 to 10000", intFlag("--max", 1, 10_000), 1000)
      .action(async (point: string, o: { endpoint: string; last?: boolean; start?: Timestamp; end?: Timestamp; max: number }) => {
        const c = ctx();
        if (o.last && (o.start || o.end)) throw new CliError("--last cannot be given with --start or --end", EXIT.usage);
        const res = await c
          .client(OmfSenderService)
          .readValues(
            { endpointId: o.endpoint, point, last: o.last === true, startTime: o.start, endTime: o.end, maxCount: o.max },
            { signal: c.signal },
          );
        if (res.noData) c.out.note(`${point} holds no value`);
        if (res.truncated) c.out.note(`${o.max} values shown: there may be more in the window`);
        c.out.list(
          res.values,
          [
            { header: "TIMESTAMP", value: (v) => v.timestamp },
            { header: "VALUE", value: (v) => cell(v.valueJson, 100) },
          ],
          asJson(ReadValuesResponseSchema, res),
        );
      }),
    ["meridian omf values -e plant-pi ThirdContainer.NumberProperty1 --last", "meridian omf values -e edge FirstContainer --start 1h"],
  );
  for (const [name, what] of [
    ["types", "the SDS types at a Data Hub / EDS endpoint"],
    ["containers", "the SDS streams (OMF containers) at a Data Hub / EDS endpoint"],
  ] as const) {
    examples(
      omf
        .command(name)
        .description(what)
        .requiredOption("-e, --endpoint <id>", "the endpoint")
        .option("--filter <pattern>", "on ids: * any run, ? one character")
        .option("--page-size <n>", "1 to 1000", intFlag("--page-size", 1, 1000), 1000)
        .action(async (o: { endpoint: string; filter?: string; pageSize: number }) => {
          const c = ctx();
          const client = c.client(OmfSenderService);
          const req = { endpointId: o.endpoint, idFilter: o.filter ?? "", pageSize: o.pageSize };
          if (name === "types") {
            const res = await client.listTypes(req, { signal: c.signal });
            c.out.list(res.types, DEFINITION_COLUMNS.slice(0, 1), asJson(ListTypesResponseSchema, res));
          } else {
            const res = await client.listContainers(req, { signal: c.signal });
            c.out.list(res.containers, DEFINITION_COLUMNS, asJson(ListContainersResponseSchema, res));
          }
        }),
      [`meridian omf ${name} -e edge`, `meridian omf ${name} -e cloud --filter '*Dynamic*' -o json`],
    );
  }
  examples(
    omf
      .command("definitions")
      .description("the types and containers omf-sender created at the endpoint (what cleanup deletes)")
      .requiredOption("-e, --endpoint <id>", "the endpoint")
      .option("--route <id>", "only what this route created first")
      .action(async (o: { endpoint: string; route?: string }) => {
        const c = ctx();
        const client = c.client(OmfSenderService);
        // Every page's definitions in one response, as if one page had held them all.
        const all = create(ListDefinitionsResponseSchema);
        const defs = all.definitions;
        let pageToken = "";
        do {
          const res = await client.listDefinitions(
            { endpointId: o.endpoint, routeId: o.route ?? "", pageSize: 1000, pageToken },
            { signal: c.signal },
          );
          defs.push(...res.definitions);
          pageToken = res.nextPageToken;
        } while (pageToken);
        c.out.list(defs, CREATED_COLUMNS, asJson(ListDefinitionsResponseSchema, all));
      }),
    ["meridian omf definitions -e plant-pi"],
  );
}

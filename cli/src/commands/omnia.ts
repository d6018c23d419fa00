import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type AggregateRow,
  CreateReaderResponseSchema,
  CreateTimeseriesResponseSchema,
  DataFormat,
  type Datapoint,
  DeleteDataResponseSchema,
  DeleteReaderResponseSchema,
  DeleteTimeseriesResponseSchema,
  GetAggregatesResponseSchema,
  GetAuthPromptResponseSchema,
  GetDataResponseSchema,
  GetFirstOrLatestResponseSchema,
  GetReaderResponseSchema,
  GetTimeseriesResponseSchema,
  ListReadersResponseSchema,
  OmniaReaderService,
  PauseReaderResponseSchema,
  type Reader,
  SearchTimeseriesResponseSchema,
  type SeriesDataSchema,
  type SeriesSelectorSchema,
  type Timeseries,
  TimeseriesSchema,
  UpdateTimeseriesResponseSchema,
  WriteDataResponseSchema,
} from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import type { Command } from "commander";
import type { CliContext, Column, JsonObject } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import { asJson, choiceFlag, examples, intFlag, jsonArg, parseTime, timeFlag, ts } from "./options.js";

type Ctx = () => CliContext;

export const TIMESERIES_COLUMNS: readonly Column<Timeseries>[] = [
  { header: "ID", value: (t) => t.id },
  { header: "NAME", value: (t) => t.name },
  { header: "FACILITY", value: (t) => t.facility },
  { header: "UNIT", value: (t) => t.unit },
  { header: "SOURCE", value: (t) => t.source },
  { header: "DESCRIPTION", value: (t) => t.description },
];

export const DATAPOINT_COLUMNS: readonly Column<Datapoint>[] = [
  { header: "TIME", value: (d) => ts(d.time) },
  { header: "VALUE", value: (d) => d.value, align: "right" },
  {
    header: "STATUS",
    value: (d) => d.status,
    align: "right",
    colour: (d) => (d.status === 192 ? undefined : d.status === 0 ? "red" : "yellow"),
  },
];

export const READER_COLUMNS: readonly Column<Reader>[] = [
  { header: "ID", value: (r) => r.spec?.id ?? "" },
  {
    header: "STATE",
    value: (r) => r.state,
    colour: (r) => (r.state === "running" ? "green" : r.state === "failing" ? "red" : r.state === "paused" ? "yellow" : undefined),
  },
  { header: "SERIES", value: (r) => r.cursors.length, align: "right" },
  { header: "INTERVAL", value: (r) => `${r.spec?.intervalSeconds ?? 60}s` },
  { header: "LAG", value: (r) => `${r.spec?.lagSeconds ?? 60}s` },
  { header: "PUBLISHED", value: (r) => r.eventsPublished, align: "right" },
  { header: "LAST POLL", value: (r) => ts(r.lastPollTime) },
  { header: "LAST ERROR", value: (r) => r.lastError },
];

const AGGREGATES = ["avg", "min", "max", "sum", "stddev", "count", "first", "last"] as const;

/** `--series` of a reader: a series id (a UUID), or `name[@facility]` with * wildcards. */
export function seriesSelector(value: string): MessageInitShape<typeof SeriesSelectorSchema> {
  const v = value.trim();
  if (v === "") throw new CliError("--series: empty", EXIT.usage);
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) return { selector: { case: "id", value: v } };
  const at = v.lastIndexOf("@");
  const name = at > 0 ? v.slice(0, at) : v;
  const facility = at > 0 ? v.slice(at + 1) : "";
  return { selector: { case: "query", value: { name, facility } } };
}

/**
 * Datapoints to write, as the seed's write_data takes them: a JSON file `{"datapoints": [{time, value, status}]}`, a
 * bare array of those, or `{"items": [{id, datapoints}]}` (write_multiple); values as `time=value[:status]` on the command
 * line. Status defaults to 192 (good).
 */
export function datapointsFrom(id: string | undefined, doc: unknown, where: string): MessageInitShape<typeof SeriesDataSchema>[] {
  const point = (p: unknown, i: number) => {
    if (p === null || typeof p !== "object") throw new CliError(`${where} datapoint ${i}: not an object`, EXIT.usage);
    const { time, value, status } = p as { time?: unknown; value?: unknown; status?: unknown };
    if (typeof time !== "string" || Number.isNaN(Date.parse(time)))
      throw new CliError(`${where} datapoint ${i}: "time" must be an RFC 3339 time`, EXIT.usage);
    if (typeof value !== "number" || !Number.isFinite(value))
      throw new CliError(`${where} datapoint ${i}: "value" must be a number`, EXIT.usage);
    if (status !== undefined && (typeof status !== "number" || !Number.isInteger(status) || status < 0))
      throw new CliError(`${where} datapoint ${i}: "status" must be a whole number`, EXIT.usage);
    return { time: timestampFromDate(new Date(time)), value, status: (status as number | undefined) ?? 192 };
  };
  const series = (sid: unknown, points: unknown, w: string) => {
    if (typeof sid !== "string" || sid === "")
      throw new CliError(`${w}: the series id is missing (give it as the argument or "id")`, EXIT.usage);
    if (!Array.isArray(points) || points.length === 0) throw new CliError(`${w}: "datapoints" must be a non-empty array`, EXIT.usage);
    return { id: sid, datapoints: points.map(point) };
  };
  if (Array.isArray(doc)) return [series(id, doc, where)];
  if (doc !== null && typeof doc === "object") {
    const o = doc as { items?: unknown; datapoints?: unknown; id?: unknown };
    if (Array.isArray(o.items)) {
      if (o.items.length > 100) throw new CliError(`${where}: ${o.items.length} series, at most 100 per write`, EXIT.usage);
      return o.items.map((it, i) =>
        series((it as { id?: unknown })?.id, (it as { datapoints?: unknown })?.datapoints, `${where} item ${i}`),
      );
    }
    return [series(o.id ?? id, o.datapoints, where)];
  }
  throw new CliError(`${where}: must be {"datapoints": [...]}, {"items": [...]} or an array of datapoints`, EXIT.usage);
}

/** `time=value[:status]` (time as --start takes it). */
export function datapointArg(arg: string, i: number): { time: string; value: number; status: number } {
  const eq = arg.lastIndexOf("=");
  if (eq <= 0) throw new CliError(`datapoint ${i} "${arg}": not time=value[:status]`, EXIT.usage);
  const [v, s] = arg.slice(eq + 1).split(":");
  const value = Number(v);
  const status = s === undefined ? 192 : Number(s);
  if (v === "" || !Number.isFinite(value)) throw new CliError(`datapoint ${i} "${arg}": the value is not a number`, EXIT.usage);
  if (!Number.isInteger(status) || status < 0) throw new CliError(`datapoint ${i} "${arg}": the status is not a whole number`, EXIT.usage);
  return { time: parseTime(`datapoint ${i}`, arg.slice(0, eq)).toISOString(), value, status };
}

interface Window {
  start?: Timestamp;
  end?: Timestamp;
}

function windowOptions(cmd: Command): Command {
  return cmd
    .option("--start <time>", "from: RFC 3339, or back from now (15m, 2h, 1d)", timeFlag("--start"))
    .option("--end <time>", "to: RFC 3339, or back from now", timeFlag("--end"));
}

/** get, create, update: the response for scripts, the series' fields for people. */
function timeseriesOut(c: CliContext, doc: JsonObject, t: Timeseries | undefined): void {
  if (c.out.format !== "table") c.out.object(doc);
  else if (t) c.out.object(asJson(TimeseriesSchema, t));
}

export function registerOmnia(program: Command, ctx: Ctx): void {
  const omnia = program
    .command("omnia")
    .description("Equinor Omnia Timeseries: series, datapoints and the readers that put them on the bus");

  examples(
    omnia
      .command("search [query]")
      .description("series by name (* wildcards), facility, source, … (the client's search_timeseries)")
      .option("--name <name>", "the series name")
      .option("--facility <f>", "the facility")
      .option("--source <s>", "the source, e.g. IMS")
      .option("--description <d>", "the description")
      .option("--unit <u>", "the unit")
      .option("--asset-id <id>", "the asset id")
      .option("--external-id <id>", "the external id")
      .option("--limit <n>", "1-100000 (default 1000)", intFlag("--limit", 1, 100_000))
      .option("--continuation-token <t>", "the next page of a previous search")
      .action(async (query: string | undefined, o: Record<string, string | number | undefined>) => {
        const c = ctx();
        const name = (o.name as string | undefined) ?? query;
        if (!name && !o.facility && !o.source && !o.description && !o.unit && !o.assetId && !o.externalId)
          throw new CliError(
            "give a query or at least one of --name, --facility, --source, --description, --unit, --asset-id, --external-id",
            EXIT.usage,
          );
        const res = await c.client(OmniaReaderService).searchTimeseries(
          {
            name: name ?? "",
            facility: (o.facility as string) ?? "",
            source: (o.source as string) ?? "",
            description: (o.description as string) ?? "",
            unit: (o.unit as string) ?? "",
            assetId: (o.assetId as string) ?? "",
            externalId: (o.externalId as string) ?? "",
            limit: o.limit as number | undefined,
            continuationToken: (o.continuationToken as string) ?? "",
          },
          { signal: c.signal },
        );
        c.out.list(res.items, TIMESERIES_COLUMNS, asJson(SearchTimeseriesResponseSchema, res));
        if (res.continuationToken && c.out.format === "table") c.out.note(`more: --continuation-token ${res.continuationToken}`);
      }),
    ["meridian omnia search 'ASGB.17IIC1030*' --source IMS", "meridian omnia search --facility 1191 --limit 10 -o json"],
  );
  examples(
    omnia
      .command("get <id>")
      .description("one series' metadata (get_timeseries_by_id)")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OmniaReaderService).getTimeseries({ id }, { signal: c.signal });
        timeseriesOut(c, asJson(GetTimeseriesResponseSchema, res), res.timeseries);
      }),
    ["meridian omnia get 3f2a7c1e-…"],
  );
  for (const latest of [true, false]) {
    const verb = latest ? "latest" : "first";
    examples(
      omnia
        .command(`${verb} <id>`)
        .description(`the ${verb} datapoint of a series (get_${verb}_datapoint)`)
        .option("--after <time>", "only after this time", timeFlag("--after"))
        .option("--before <time>", "only before this time", timeFlag("--before"))
        .action(async (id: string, o: { after?: Timestamp; before?: Timestamp }) => {
          const c = ctx();
          const res = await c
            .client(OmniaReaderService)
            .getFirstOrLatest({ id, latest, afterTime: o.after, beforeTime: o.before }, { signal: c.signal });
          if (!res.datapoint) throw new CliError(`series ${id}: no datapoint in the window`, EXIT.notFound);
          c.out.list([res.datapoint], DATAPOINT_COLUMNS, asJson(GetFirstOrLatestResponseSchema, res));
        }),
      [`meridian omnia ${verb} 3f2a7c1e-…`, `meridian omnia ${verb} 3f2a7c1e-… --before 1h -o json`],
    );
  }
  examples(
    windowOptions(omnia.command("data <id>").description("raw datapoints of a series (get_datapoints)"))
      .option("--limit <n>", "1-100000 (default 1000)", intFlag("--limit", 1, 100_000))
      .option("--status <codes>", "only these statuses, comma-separated (192 good, 64 questionable, 0 bad)")
      .option("--include-outside-points", "also the points just outside the window")
      .option("--all", "follow every continuation token")
      .option("--continuation-token <t>", "the next page of a previous call")
      .action(
        async (
          id: string,
          o: Window & { limit?: number; status?: string; includeOutsidePoints?: boolean; all?: boolean; continuationToken?: string },
        ) => {
          const c = ctx();
          const status = o.status
            ? o.status.split(",").map((s) => {
                const n = Number(s.trim());
                if (!Number.isInteger(n) || n < 0) throw new CliError(`--status: "${s}" is not a status code`, EXIT.usage);
                return n;
              })
            : [];
          const client = c.client(OmniaReaderService);
          const points: Datapoint[] = [];
          let token = o.continuationToken ?? "";
          let last = "";
          do {
            const res = await client.getData(
              {
                id,
                startTime: o.start,
                endTime: o.end,
                limit: o.limit,
                status,
                includeOutsidePoints: o.includeOutsidePoints === true,
                continuationToken: token,
              },
              { signal: c.signal },
            );
            points.push(...(res.data?.datapoints ?? []));
            last = res.continuationToken;
            token = o.all ? res.continuationToken : "";
          } while (token);
          c.out.list(
            points,
            DATAPOINT_COLUMNS,
            asJson(
              GetDataResponseSchema,
              create(GetDataResponseSchema, { data: { id, datapoints: points }, continuationToken: o.all ? "" : last }),
            ),
          );
          if (!o.all && last && c.out.format === "table") c.out.note(`more: --all, or --continuation-token ${last}`);
        },
      ),
    [
      "meridian omnia data 3f2a7c1e-… --start 1h",
      "meridian omnia data 3f2a7c1e-… --start 2026-01-01T00:00:00Z --end 2026-01-02T00:00:00Z --all -o json",
    ],
  );
  examples(
    windowOptions(omnia.command("aggregates <id>").description("aggregated datapoints (get_aggregates)"))
      .requiredOption("--functions <list>", `comma-separated: ${AGGREGATES.join(", ")}`)
      .option("--interval <n[s|m|h|d]>", "the processing interval, e.g. 15m")
      .option("--limit <n>", "rows", intFlag("--limit", 1, 100_000))
      .action(async (id: string, o: Window & { functions: string; interval?: string; limit?: number }) => {
        const c = ctx();
        const fns = o.functions.split(",").map((s) => s.trim().toLowerCase());
        for (const f of fns)
          if (!(AGGREGATES as readonly string[]).includes(f))
            throw new CliError(`--functions: "${f}" is not one of ${AGGREGATES.join(", ")}`, EXIT.usage);
        if (o.interval !== undefined && !/^\d+[smhd]$/.test(o.interval))
          throw new CliError(`--interval: "${o.interval}" is not <n><s|m|h|d>, e.g. 15m`, EXIT.usage);
        const res = await c
          .client(OmniaReaderService)
          .getAggregates(
            { id, aggregateFunctions: fns, startTime: o.start, endTime: o.end, processingInterval: o.interval ?? "", limit: o.limit },
            { signal: c.signal },
          );
        const cols: Column<AggregateRow>[] = [
          { header: "TIME", value: (r) => ts(r.time) },
          ...fns.map((f) => ({ header: f.toUpperCase(), value: (r: AggregateRow) => r.values[f], align: "right" as const })),
        ];
        c.out.list(res.rows, cols, asJson(GetAggregatesResponseSchema, res));
      }),
    ["meridian omnia aggregates 3f2a7c1e-… --functions avg,min,max --interval 15m --start 1d"],
  );
  examples(
    omnia
      .command("write [id] [datapoints...]")
      .description("write datapoints (write_data / write_multiple): time=value[:status] arguments, or --file")
      .option("--file <path>", 'a JSON file: {"datapoints": [{time, value, status}]}, or {"items": [{id, datapoints}]} for several series')
      .option("--async", "Omnia answers before it stored the points")
      .action(async (id: string | undefined, points: string[], o: { file?: string; async?: boolean }) => {
        const c = ctx();
        let items: MessageInitShape<typeof SeriesDataSchema>[];
        if (o.file !== undefined) {
          if (points.length > 0) throw new CliError("give datapoints as arguments or --file, not both", EXIT.usage);
          items = datapointsFrom(id, jsonArg(`@${o.file}`, "--file"), `--file ${o.file}`);
        } else {
          if (!id || points.length === 0)
            throw new CliError("give the series id and datapoints as time=value[:status], or --file", EXIT.usage);
          items = datapointsFrom(id, points.map(datapointArg), "the datapoints");
        }
        const res = await c.client(OmniaReaderService).writeData({ items, async: o.async === true }, { signal: c.signal });
        const n = items.reduce((s, i) => s + (i.datapoints?.length ?? 0), 0);
        c.out.result(
          `${n} datapoint${n === 1 ? "" : "s"} written to ${items.length} series${o.async ? " (asynchronously)" : ""}`,
          asJson(WriteDataResponseSchema, res),
        );
      }),
    ["meridian omnia write 3f2a7c1e-… 2026-01-02T03:04:05Z=21.5 now=22:192", "meridian omnia write --file points.json"],
  );
  examples(
    omnia
      .command("create")
      .description("create a series (name and facility required); --get-or-add returns the existing one")
      .requiredOption("--name <name>", "the series name")
      .requiredOption("--facility <f>", "the facility")
      .option("--description <d>", "the description")
      .option("--unit <u>", "the unit")
      .option("--asset-id <id>", "the asset id")
      .option("--external-id <id>", "the external id")
      .option("--get-or-add", "POST /getoradd: the existing series when there is one")
      .action(async (o: Record<string, string | boolean | undefined>) => {
        const c = ctx();
        const res = await c.client(OmniaReaderService).createTimeseries(
          {
            timeseries: {
              name: String(o.name),
              facility: String(o.facility),
              description: (o.description as string) ?? "",
              unit: (o.unit as string) ?? "",
              assetId: (o.assetId as string) ?? "",
              externalId: (o.externalId as string) ?? "",
            },
            getOrAdd: o.getOrAdd === true,
          },
          { signal: c.signal },
        );
        timeseriesOut(c, asJson(CreateTimeseriesResponseSchema, res), res.timeseries);
      }),
    ["meridian omnia create --name 'Meridian test' --facility 1191 --unit degC"],
  );
  examples(
    omnia
      .command("update <id>")
      .description("change a series' metadata (only the fields given)")
      .option("--name <name>", "the name")
      .option("--description <d>", "the description")
      .option("--unit <u>", "the unit")
      .option("--facility <f>", "the facility")
      .action(async (id: string, o: Record<string, string | undefined>) => {
        const c = ctx();
        if (Object.values(o).every((v) => v === undefined))
          throw new CliError("give at least one of --name, --description, --unit, --facility", EXIT.usage);
        const res = await c
          .client(OmniaReaderService)
          .updateTimeseries(
            { id, timeseries: { name: o.name ?? "", description: o.description ?? "", unit: o.unit ?? "", facility: o.facility ?? "" } },
            { signal: c.signal },
          );
        timeseriesOut(c, asJson(UpdateTimeseriesResponseSchema, res), res.timeseries);
      }),
    ["meridian omnia update 3f2a7c1e-… --unit bar"],
  );
  examples(
    windowOptions(
      omnia.command("delete <id>").description("delete a series, or with --start and --end only its datapoints in [start, end)"),
    ).action(async (id: string, o: Window) => {
      const c = ctx();
      const client = c.client(OmniaReaderService);
      if ((o.start === undefined) !== (o.end === undefined))
        throw new CliError("--start and --end go together (the datapoints in [start, end))", EXIT.usage);
      if (o.start && o.end) {
        const res = await client.deleteData({ id, startTime: o.start, endTime: o.end }, { signal: c.signal });
        c.out.result(`datapoints of ${id} from ${ts(o.start)} to ${ts(o.end)} deleted`, asJson(DeleteDataResponseSchema, res));
      } else {
        const res = await client.deleteTimeseries({ id }, { signal: c.signal });
        c.out.result(`series ${id} deleted`, asJson(DeleteTimeseriesResponseSchema, res));
      }
    }),
    ["meridian omnia delete 3f2a7c1e-…", "meridian omnia delete 3f2a7c1e-… --start 2026-01-01T00:00:00Z --end 2026-01-02T00:00:00Z"],
  );

  // ---- readers ----
  const readers = omnia.command("readers").description("readers: series polled onto the bus");
  examples(
    readers
      .command("create <id>")
      .description("create a reader (or replace the one with this id)")
      .requiredOption(
        "-s, --series <selector>",
        "a series id, or name[@facility] with * wildcards; again for more (1-100)",
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      )
      .option("--interval <seconds>", "between polls, 1-86400 (default 60)", intFlag("--interval", 1, 86_400))
      .option("--lag <seconds>", "how far behind now a poll stops, 0-86400 (default 60)", intFlag("--lag", 0, 86_400))
      .option("--page-size <n>", "datapoints per page, 1-100000 (default 1000)", intFlag("--page-size", 1, 100_000))
      .option("--format <f>", "json or protobuf", choiceFlag("--format", ["json", "protobuf"] as const))
      .option("--start <time>", "where new series' cursors start (default now)", timeFlag("--start"))
      .option("--paused", "create it paused")
      .action(
        async (
          id: string,
          o: {
            series: string[];
            interval?: number;
            lag?: number;
            pageSize?: number;
            format?: "json" | "protobuf";
            start?: Timestamp;
            paused?: boolean;
          },
        ) => {
          const c = ctx();
          if (o.series.length > 100) throw new CliError(`--series: ${o.series.length} selectors, at most 100`, EXIT.usage);
          const res = await c.client(OmniaReaderService).createReader(
            {
              reader: {
                id,
                series: o.series.map(seriesSelector),
                intervalSeconds: o.interval,
                lagSeconds: o.lag,
                pageSize: o.pageSize,
                format: o.format === "protobuf" ? DataFormat.PROTOBUF : o.format === "json" ? DataFormat.JSON : DataFormat.UNSPECIFIED,
                startTime: o.start,
                paused: o.paused === true,
              },
            },
            { signal: c.signal },
          );
          c.out.list(res.reader ? [res.reader] : [], READER_COLUMNS, asJson(CreateReaderResponseSchema, res));
        },
      ),
    ["meridian omnia readers create plant -s 'ASGB.17*@1191' -s 3f2a7c1e-… --interval 30 --start 1h"],
  );
  examples(
    readers
      .command("list")
      .description("every reader")
      .action(async () => {
        const c = ctx();
        const res = await c.client(OmniaReaderService).listReaders({}, { signal: c.signal });
        c.out.list(res.readers, READER_COLUMNS, asJson(ListReadersResponseSchema, res));
      }),
    ["meridian omnia readers list"],
  );
  examples(
    readers
      .command("get <id>")
      .description("a reader with its series' cursors")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OmniaReaderService).getReader({ id }, { signal: c.signal });
        c.out.list(res.reader ? [res.reader] : [], READER_COLUMNS, asJson(GetReaderResponseSchema, res));
        if (!res.reader) return;
        c.out.table(res.reader.cursors, [
          { header: "SERIES", value: (s) => s.seriesId },
          { header: "NAME", value: (s) => s.name },
          { header: "FACILITY", value: (s) => s.facility },
          { header: "CURSOR", value: (s) => ts(s.cursor) },
        ]);
      }),
    ["meridian omnia readers get plant"],
  );
  for (const [verb, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const) {
    examples(
      readers
        .command(`${verb} <id>`)
        .description(`${verb} a reader (its cursors stay)`)
        .action(async (id: string) => {
          const c = ctx();
          const res = await c.client(OmniaReaderService).pauseReader({ id, paused }, { signal: c.signal });
          c.out.list(res.reader ? [res.reader] : [], READER_COLUMNS, asJson(PauseReaderResponseSchema, res));
        }),
      [`meridian omnia readers ${verb} plant`],
    );
  }
  examples(
    readers
      .command("delete <id>")
      .description("stop a reader and forget it and its cursors")
      .action(async (id: string) => {
        const c = ctx();
        const res = await c.client(OmniaReaderService).deleteReader({ id }, { signal: c.signal });
        c.out.result(`reader ${id} deleted`, asJson(DeleteReaderResponseSchema, res));
      }),
    ["meridian omnia readers delete plant"],
  );
  examples(
    omnia
      .command("auth")
      .description("the pending device-code sign-in of omnia-reader (OMNIA_AUTH_MODE=device-code)")
      .action(async () => {
        const c = ctx();
        const res = await c.client(OmniaReaderService).getAuthPrompt({}, { signal: c.signal });
        if (c.out.format !== "table") return c.out.object(asJson(GetAuthPromptResponseSchema, res));
        if (!res.userCode) return c.out.note("no sign-in is pending");
        c.out.object(
          { userCode: res.userCode, verificationUri: res.verificationUri, message: res.message, expiresTime: ts(res.expiresTime) },
          [
            ["Code", "userCode"],
            ["Go to", "verificationUri"],
            ["Message", "message"],
            ["Expires", "expiresTime"],
          ],
        );
      }),
    ["meridian omnia auth"],
  );
}

import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type DeadLetter,
  type DeadLetterFilter,
  DeadLetterFilterSchema,
  DeadLetterSchema,
  DeadLetterService,
  GetDeadLetterResponseSchema,
  PurgeDeadLettersResponseSchema,
  ReplayOutcome,
  type ReplayResult,
  ReplayResultSchema,
  ReplayState,
} from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { InvalidArgumentError } from "commander";
import type { CliContext, Colour, Column } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import { protoJson } from "../kit/output.js";
import { bytes, chunks, parseSequences, when } from "../kit/parse.js";
import { eventLine } from "./tail.js";

export interface DlqFilterOptions {
  consumer?: string;
  route?: string;
  reason?: string;
  since?: Date;
  until?: Date;
  state?: "pending" | "replayed";
}

/** The gateway takes at most 500 sequences per replay or purge call, and pages of at most 500. */
export const CHUNK = 500;
const MAX_BY_FILTER = 100_000;

export function hasFilter(opts: DlqFilterOptions): boolean {
  return Boolean(opts.consumer || opts.route || opts.reason || opts.since || opts.until || opts.state);
}

export function filterOf(opts: DlqFilterOptions): DeadLetterFilter {
  if (opts.since && opts.until && opts.since >= opts.until) throw new CliError("--since must be before --until", EXIT.usage);
  return create(DeadLetterFilterSchema, {
    consumer: opts.consumer ?? "",
    routeId: opts.route ?? "",
    reasonContains: opts.reason ?? "",
    ...(opts.since ? { since: timestampFromDate(opts.since) } : {}),
    ...(opts.until ? { until: timestampFromDate(opts.until) } : {}),
    state: opts.state === "pending" ? ReplayState.PENDING : opts.state === "replayed" ? ReplayState.REPLAYED : ReplayState.UNSPECIFIED,
  });
}

function sequences(args: readonly string[]): bigint[] {
  try {
    return parseSequences(args);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

/** Lists matching letters, following pages until `limit` or the end. */
async function collect(ctx: CliContext, filter: DeadLetterFilter, limit: number, onPage?: (n: number) => void): Promise<DeadLetter[]> {
  const client = ctx.client(DeadLetterService);
  const out: DeadLetter[] = [];
  let pageToken = "";
  for (;;) {
    const pageSize = Math.min(CHUNK, limit - out.length);
    const res = await client.listDeadLetters({ filter, pageSize, pageToken }, { signal: ctx.signal });
    out.push(...res.deadLetters.slice(0, limit - out.length));
    onPage?.(out.length);
    if (!res.nextPageToken || res.nextPageToken === pageToken || out.length >= limit) return out;
    pageToken = res.nextPageToken;
  }
}

const stateOf = (d: DeadLetter): [string, Colour] => (d.replay ? ["replayed", "green"] : ["pending", "yellow"]);

const COLUMNS: Column<DeadLetter>[] = [
  { header: "seq", value: (d) => d.sequence, align: "right" },
  { header: "time", value: (d) => when(d.time ? timestampDate(d.time) : undefined) },
  { header: "consumer", value: (d) => d.consumer },
  { header: "route", value: (d) => d.routeId },
  { header: "reason", value: (d) => d.reason, colour: () => "red" },
  { header: "deliveries", value: (d) => d.deliveries, align: "right" },
  { header: "size", value: (d) => bytes(d.sizeBytes), align: "right" },
  { header: "state", value: (d) => stateOf(d)[0], colour: (d) => stateOf(d)[1] },
];

export async function listDeadLetters(ctx: CliContext, opts: DlqFilterOptions & { limit: number }): Promise<void> {
  const letters = await collect(ctx, filterOf(opts), opts.limit);
  // Pages up to --limit: the letters as ListDeadLetters gives them, under the same key.
  ctx.out.list(letters, COLUMNS, { deadLetters: letters.map((d) => protoJson(DeadLetterSchema, d)) });
}

export async function showDeadLetter(ctx: CliContext, arg: string): Promise<void> {
  const [sequence, ...more] = sequences([arg]);
  if (sequence === undefined || more.length > 0) throw new CliError("dlq show: one sequence", EXIT.usage);
  const res = await ctx.client(DeadLetterService).getDeadLetter({ sequence }, { signal: ctx.signal });
  const { out } = ctx;
  if (out.format !== "table") {
    out.object(protoJson(GetDeadLetterResponseSchema, res));
    return;
  }
  const d = res.deadLetter;
  if (!d) throw new CliError(`dead letter ${sequence}: the gateway answered without it`, EXIT.error);
  out.object({
    sequence: d.sequence,
    time: when(d.time ? timestampDate(d.time) : undefined),
    consumer: d.consumer,
    route: d.routeId,
    reason: out.paint(d.reason, "red"),
    detail: d.detail,
    "original subject": d.originalSubject,
    "original sequence": d.originalSequence || "",
    deliveries: d.deliveries,
    size: bytes(d.sizeBytes),
    state: d.replay
      ? out.paint(
          `replayed ${when(d.replay.time ? timestampDate(d.replay.time) : undefined)} by ${d.replay.caller} to ${d.replay.consumer} (sequence ${d.replay.sequence})`,
          "green",
        )
      : out.paint("pending", "yellow"),
  });
  const headers = Object.entries(res.headers).sort(([a], [b]) => a.localeCompare(b));
  if (headers.length > 0) {
    out.note("");
    out.note(out.paint("HEADERS", "bold"));
    out.table(headers, [
      { header: "name", value: ([k]) => k },
      { header: "value", value: ([, v]) => v },
    ]);
  }
  out.note("");
  if (res.batch) {
    out.note(out.paint(`PAYLOAD: batch ${res.batch.id}, ${res.batch.events.length} events`, "bold"));
    for (const ev of res.batch.events) out.note(eventLine(ctx, ev, ev.points));
  } else {
    out.note(out.paint(`PAYLOAD: ${res.payload.length} bytes`, "bold"));
    const text = Buffer.from(res.payload).toString("utf8");
    // Text as text; anything else as base64, so a terminal never gets control bytes.
    const printable = !text.includes("\uFFFD") && !/[\u0000-\u0008\u000E-\u001F]/.test(text);
    out.note(printable ? text : Buffer.from(res.payload).toString("base64"));
  }
}

const OUTCOME: Record<ReplayOutcome, [string, Colour]> = {
  [ReplayOutcome.UNSPECIFIED]: ["unknown", "gray"],
  [ReplayOutcome.REPLAYED]: ["replayed", "green"],
  [ReplayOutcome.ALREADY_REPLAYED]: ["already replayed", "yellow"],
  [ReplayOutcome.NOT_FOUND]: ["not found", "gray"],
  [ReplayOutcome.REFUSED]: ["refused", "red"],
};

/** The sequences a replay or purge acts on: the arguments, or every letter the filter matches. */
async function targets(ctx: CliContext, args: string[], opts: DlqFilterOptions, verb: string, all = false): Promise<bigint[]> {
  const given = sequences(args);
  if (given.length > 0) {
    if (hasFilter(opts) || all) throw new CliError(`dlq ${verb}: sequences or a filter, not both`, EXIT.usage);
    return given;
  }
  if (!hasFilter(opts) && !all)
    throw new CliError(`dlq ${verb}: name sequences, or a filter (--consumer, --route, --reason, --since, --until, --state)`, EXIT.usage);
  const progress = ctx.progress("listing");
  try {
    const letters = await collect(ctx, filterOf(opts), MAX_BY_FILTER, (n) => progress.total(n));
    return letters.map((d) => d.sequence);
  } finally {
    progress.done();
  }
}

export async function replayDeadLetters(ctx: CliContext, args: string[], opts: DlqFilterOptions & { toRoute?: string }): Promise<void> {
  // A filter replays what has not been replayed yet unless told otherwise: the others would only answer "already".
  const filterOpts = args.length === 0 && !opts.state ? { ...opts, state: "pending" as const } : opts;
  const seqs = await targets(ctx, args, args.length === 0 && hasFilter(opts) ? filterOpts : opts, "replay");
  const client = ctx.client(DeadLetterService);
  const results: ReplayResult[] = [];
  const progress = ctx.progress("replaying", seqs.length);
  let interrupted = false;
  try {
    for (const chunk of chunks(seqs, CHUNK)) {
      if (ctx.signal.aborted) {
        interrupted = true;
        break;
      }
      const res = await client.replayDeadLetters({ sequences: chunk, routeId: opts.toRoute ?? "" }, { signal: ctx.signal });
      results.push(...res.results);
      progress.tick(chunk.length);
    }
  } finally {
    progress.done();
  }
  const { out } = ctx;
  out.list(
    results,
    [
      { header: "seq", value: (r) => r.sequence, align: "right" },
      { header: "outcome", value: (r) => OUTCOME[r.outcome]?.[0] ?? String(r.outcome), colour: (r) => OUTCOME[r.outcome]?.[1] },
      { header: "to", value: (r) => r.replay?.consumer },
      { header: "message", value: (r) => r.message },
    ],
    // One ReplayDeadLetters call per chunk of 500: every chunk's results, under the response's key.
    { results: results.map((r) => protoJson(ReplayResultSchema, r)) },
  );
  const count = (o: ReplayOutcome) => results.filter((r) => r.outcome === o).length;
  const refused = count(ReplayOutcome.REFUSED);
  out.note(
    `${count(ReplayOutcome.REPLAYED)} replayed, ${count(ReplayOutcome.ALREADY_REPLAYED)} already replayed, ${count(ReplayOutcome.NOT_FOUND)} not found, ${refused} refused`,
  );
  if (interrupted) throw new CliError(`stopped after ${results.length} of ${seqs.length} letters`, EXIT.interrupted);
  if (refused > 0) throw new CliError(`${refused} of ${results.length} letters refused (see above)`, EXIT.failed);
}

export async function purgeDeadLetters(
  ctx: CliContext,
  args: string[],
  opts: DlqFilterOptions & { all?: boolean; yes?: boolean },
): Promise<void> {
  const client = ctx.client(DeadLetterService);
  const given = sequences(args);
  let purged = 0n;
  if (given.length === 0) {
    if (opts.all && hasFilter(opts)) throw new CliError("dlq purge: --all or a filter, not both", EXIT.usage);
    if (!opts.all && !hasFilter(opts)) throw new CliError("dlq purge: name sequences, a filter, or --all", EXIT.usage);
    if (!opts.yes) throw new CliError(`dlq purge ${opts.all ? "--all" : "by filter"} deletes for good: add --yes`, EXIT.usage);
    // The gateway purges by filter itself (a consumer's subject at once, otherwise scanning): one call.
    const res = await client.purgeDeadLetters(opts.all ? { all: true } : { filter: filterOf(opts) }, { signal: ctx.signal });
    purged = res.purged;
  } else {
    if (hasFilter(opts) || opts.all) throw new CliError("dlq purge: sequences or a filter, not both", EXIT.usage);
    const progress = ctx.progress("purging", given.length);
    try {
      for (const chunk of chunks(given, CHUNK)) {
        if (ctx.signal.aborted) throw new CliError(`stopped after purging ${purged} letters`, EXIT.interrupted);
        const res = await client.purgeDeadLetters({ sequences: chunk }, { signal: ctx.signal });
        purged += res.purged;
        progress.tick(chunk.length);
      }
    } finally {
      progress.done();
    }
  }
  // One call, or one per chunk of 500: the purged count summed, in the response's shape.
  ctx.out.result(
    `${purged} dead letters purged`,
    protoJson(PurgeDeadLettersResponseSchema, create(PurgeDeadLettersResponseSchema, { purged })),
  );
}

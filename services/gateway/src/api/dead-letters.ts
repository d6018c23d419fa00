import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type Bus,
  consumerBacklog,
  DeadLetters,
  KeyExistsError,
  KvBucket,
  parseRouteConsumerName,
  protoCodec,
  routeBucket,
  routeConsumerName,
  SCHEMA_HEADER,
  type StoredDeadLetter,
  subjectMatches,
  subjectMayHold,
  TELEMETRY_BATCH_SCHEMA,
  telemetrySelection,
} from "@meridian/bus";
import {
  type DeadLetter,
  type DeadLetterFilter,
  DeadLetterSchema,
  type DeadLetterService,
  type Replay,
  ReplayOutcome,
  type ReplayResult,
  ReplayResultSchema,
  ReplaySchema,
  ReplayState,
} from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { type Route, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, TelemetryBatchSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { callerOf, requestLogger } from "@meridian/service-kit";
import { DeadLetterNotFoundError } from "./errors.js";
import {
  isEmptyDeadLetterFilter,
  validateGetDeadLetter,
  validateListDeadLetters,
  validatePurgeDeadLetters,
  validateReplayDeadLetters,
} from "./validation.js";

/** Replay records, keyed by dead-letter sequence; the gateway's own bucket. */
export const REPLAY_BUCKET = "deadletter_replays";
/** Dead letters one ListDeadLetters page (and one round of a purge by filter) reads at most. */
export const MAX_SCANNED_PER_PAGE = 10_000;
/** Matches a purge by filter holds in memory at once (payloads included). */
const PURGE_PAGE = 500;
/** Dead letters of one Replay or Purge call worked on at once: each is a few bus round trips. */
const CONCURRENCY = 16;

/** The replay record of every dead letter replayed, kept as long as dead letters are (the DEADLETTER stream's age). */
export function replayBucket(bus: Bus): KvBucket<Replay> {
  return new KvBucket(bus, REPLAY_BUCKET, protoCodec(ReplaySchema), { ttlMs: bus.limits.deadLetterMaxAgeMs });
}

/** Every consumer name a route's sink can have. */
function routeConsumers(routeId: string): Set<string> {
  return new Set(
    Object.values(Platform)
      .filter((p): p is Platform => typeof p === "number" && p !== Platform.UNSPECIFIED)
      .map((p) => routeConsumerName(routeId, p)),
  );
}

/** `read` called once per key; every later call gets the same answer. */
function once<T>(read: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const answers = new Map<string, Promise<T>>();
  return (key) => {
    let answer = answers.get(key);
    if (!answer) {
      answer = read(key);
      answers.set(key, answer);
    }
    return answer;
  };
}

/** Runs `work` over `items` with at most `limit` at once; results in the items' order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function deadLetterService(bus: Bus): ServiceImpl<typeof DeadLetterService> {
  const letters = new DeadLetters(bus);
  const replays = replayBucket(bus);
  const routes = routeBucket(bus);

  const toProto = (l: StoredDeadLetter, replay: Replay | undefined): DeadLetter =>
    create(DeadLetterSchema, {
      sequence: BigInt(l.sequence),
      time: timestampFromDate(l.time),
      consumer: l.consumer,
      routeId: l.original ? (parseRouteConsumerName(l.consumer)?.routeId ?? "") : "",
      reason: l.reason,
      detail: l.detail,
      originalSubject: l.original?.subject ?? "",
      originalSequence: BigInt(l.original?.sequence ?? 0),
      deliveries: l.original?.deliveries ?? 0,
      sizeBytes: l.data.length,
      ...(replay ? { replay } : {}),
    });

  /**
   * The filter's conditions that are not the page's own bounds (consumer subject, since, until), and the replay record
   * of each match, read once.
   */
  const matcher = (f: DeadLetterFilter | undefined) => {
    const known = new Map<number, Replay | undefined>();
    const replayOf = async (seq: number) => {
      if (!known.has(seq)) known.set(seq, await replays.get(String(seq)));
      return known.get(seq);
    };
    const consumers = f?.routeId ? routeConsumers(f.routeId) : undefined;
    const reason = f?.reasonContains.toLowerCase();
    const match = async (l: StoredDeadLetter) => {
      if (consumers && !(l.original && consumers.has(l.consumer))) return false;
      if (reason && !l.reason.toLowerCase().includes(reason) && !l.detail.toLowerCase().includes(reason)) return false;
      if (f?.state === ReplayState.PENDING) return (await replayOf(l.sequence)) === undefined;
      if (f?.state === ReplayState.REPLAYED) return (await replayOf(l.sequence)) !== undefined;
      return true;
    };
    return { match, replayOf };
  };

  const pageOf = (f: DeadLetterFilter | undefined, from: number | undefined, limit: number) => {
    const { match, replayOf } = matcher(f);
    return {
      replayOf,
      page: letters.page({
        fromSequence: from,
        since: f?.since ? timestampDate(f.since) : undefined,
        until: f?.until ? timestampDate(f.until) : undefined,
        consumer: f?.consumer || undefined,
        limit,
        maxScanned: MAX_SCANNED_PER_PAGE,
        match,
      }),
    };
  };

  return {
    async listDeadLetters(req) {
      const { pageSize, from } = validateListDeadLetters(req);
      const { page, replayOf } = pageOf(req.filter, from, pageSize);
      const p = await page;
      const deadLetters = await mapLimit(p.letters, CONCURRENCY, async (l) => toProto(l, await replayOf(l.sequence)));
      return { deadLetters, nextPageToken: p.next === undefined ? "" : String(p.next), scanned: BigInt(p.scanned) };
    },

    async getDeadLetter(req) {
      const sequence = validateGetDeadLetter(req);
      const l = await letters.get(sequence);
      if (!l) throw new DeadLetterNotFoundError(sequence);
      let batch: ReturnType<typeof fromBinary<typeof TelemetryBatchSchema>> | undefined;
      if (l.headers[SCHEMA_HEADER] === TELEMETRY_BATCH_SCHEMA) {
        try {
          batch = fromBinary(TelemetryBatchSchema, l.data);
        } catch {
          // Undecodable is one reason a sink gives up: the raw payload says the rest.
        }
      }
      return {
        deadLetter: toProto(l, await replays.get(String(sequence))),
        payload: l.data,
        headers: l.headers,
        ...(batch ? { batch } : {}),
      };
    },

    async replayDeadLetters(req, ctx) {
      const sequences = validateReplayDeadLetters(req);
      const caller = callerOf(ctx).name;
      // Read once per call: every dead letter of a call is checked against the same routes and consumers.
      const route = once((id: string) => routes.get(id));
      const consumerExists = once(async (name: string) => (await consumerBacklog(bus, name)) !== undefined);

      /** The consumer a dead letter is replayed to, or why it cannot be. */
      const targetOf = async (l: StoredDeadLetter): Promise<{ consumer: string; routeId: string } | { refused: string }> => {
        const subject = l.original?.subject;
        if (!subject)
          return {
            refused: `dead letter ${l.sequence} is ${l.consumer}'s, a source's: it never reached the bus, so there is no subject to put it back on (GetDeadLetter has its payload)`,
          };
        let r: Route | undefined;
        if (req.routeId) {
          r = await route(req.routeId);
          if (!r) return { refused: `route "${req.routeId}" not found` };
          if (r.disabled) return { refused: `route "${req.routeId}" is disabled; enable it first` };
        } else {
          const parsed = parseRouteConsumerName(l.consumer);
          if (!parsed) return { refused: `consumer "${l.consumer}" is not a route's sink; replay it to a route with route_id` };
          r = await route(parsed.routeId);
          if (!r)
            return {
              refused: `route "${parsed.routeId}" of consumer "${l.consumer}" no longer exists; replay it to another route with route_id`,
            };
          if (r.sink?.platform !== parsed.sinkPlatform)
            return {
              refused: `route "${parsed.routeId}" now delivers to another platform than consumer "${l.consumer}"; replay it with route_id`,
            };
        }
        const name = r.id;
        if (r.state === RouteState.DRAINING)
          return { refused: `route "${name}" is draining: its sink skips what was published after the delete` };
        if (!r.sink?.platform) return { refused: `route "${name}" has no sink` };
        // What the route's consumer reads: a device route also reads its connection's several-devices messages.
        const selection = telemetrySelection(r.source);
        if (!subjectMatches(selection.subject, subject) || (selection.events && !subjectMayHold(subject, selection.events))) {
          const filter = selection.events ? `${selection.subject} for device ${selection.events.device}` : selection.subject;
          return { refused: `route "${name}"'s source (${filter}) does not match the dead letter's subject ${subject}` };
        }
        const consumer = routeConsumerName(r.id, r.sink.platform);
        // A consumer created later starts after the replay and would never see it.
        if (!(await consumerExists(consumer)))
          return { refused: `route "${name}"'s sink has not created its consumer ${consumer} yet; replay once the sink runs` };
        return { consumer, routeId: r.id };
      };

      const replayOne = async (sequence: number): Promise<ReplayResult> => {
        const result = (outcome: ReplayOutcome, extra: { replay?: Replay; message?: string } = {}) =>
          create(ReplayResultSchema, { sequence: BigInt(sequence), outcome, ...extra });
        const key = String(sequence);
        // Both read at once; the record decides first.
        const [before, l] = await Promise.all([replays.get(key), letters.get(sequence)]);
        if (before)
          return result(ReplayOutcome.ALREADY_REPLAYED, { replay: before, message: "replayed before; not put on the stream again" });
        if (!l) return result(ReplayOutcome.NOT_FOUND, { message: `dead letter ${sequence} not found` });
        const target = await targetOf(l);
        if ("refused" in target) return result(ReplayOutcome.REFUSED, { message: target.refused });
        // A concurrent or retried replay of the same dead letter is one message on the stream (its msgId) …
        const published = await letters.replay(l, target.consumer);
        const replay = create(ReplaySchema, {
          time: timestampNow(),
          subject: published.subject,
          sequence: BigInt(published.seq),
          consumer: target.consumer,
          routeId: target.routeId,
          caller,
        });
        try {
          await replays.create(key, replay);
        } catch (err) {
          if (!(err instanceof KeyExistsError)) throw err;
          // … and one record: whoever recorded it first answers for both.
          const theirs = await replays.get(key);
          return result(ReplayOutcome.ALREADY_REPLAYED, {
            ...(theirs ? { replay: theirs } : {}),
            message: "replayed meanwhile by another call",
          });
        }
        return result(ReplayOutcome.REPLAYED, { replay });
      };

      const results = await mapLimit(sequences, CONCURRENCY, replayOne);
      const count = (o: ReplayOutcome) => results.filter((r) => r.outcome === o).length;
      requestLogger(ctx).info(
        {
          audit: "deadletters.replay",
          caller,
          routeId: req.routeId || undefined,
          requested: sequences.length,
          replayed: count(ReplayOutcome.REPLAYED),
          alreadyReplayed: count(ReplayOutcome.ALREADY_REPLAYED),
          notFound: count(ReplayOutcome.NOT_FOUND),
          refused: count(ReplayOutcome.REFUSED),
        },
        "dead letters replayed",
      );
      return { results };
    },

    async purgeDeadLetters(req, ctx) {
      const sequences = validatePurgeDeadLetters(req);
      const f = req.filter;
      let purged = 0;
      const remove = async (sequence: number) => {
        if (await letters.delete(sequence)) purged++;
        await replays.delete(String(sequence));
      };
      if (sequences.length > 0) {
        await mapLimit(sequences, CONCURRENCY, remove);
      } else if (isEmptyDeadLetterFilter(f) || (f?.consumer && isEmptyDeadLetterFilter({ ...f, consumer: "" }))) {
        // The whole stream, or one consumer's subject: the server purges it in one call.
        purged = await letters.purge(f?.consumer || undefined);
        await sweepReplays(letters, replays);
      } else {
        for (let from: number | undefined; ; ) {
          const { page } = pageOf(f, from, PURGE_PAGE);
          const p = await page;
          await mapLimit(
            p.letters.map((l) => l.sequence),
            CONCURRENCY,
            remove,
          );
          if (p.next === undefined) break;
          from = p.next;
        }
      }
      requestLogger(ctx).warn(
        { audit: "deadletters.purge", caller: callerOf(ctx).name, sequences: sequences.length, all: req.all, purged },
        "dead letters purged",
      );
      return { purged: BigInt(purged) };
    },
  };
}

/**
 * Removes the replay records of dead letters the stream no longer holds. Each is checked rather than all dropped: a
 * dead letter stored and replayed since the purge keeps its record.
 */
async function sweepReplays(letters: DeadLetters, replays: KvBucket<Replay>): Promise<void> {
  const keys = await replays.keys();
  await mapLimit(keys, CONCURRENCY, async (key) => {
    if (!(await letters.get(Number(key)))) await replays.delete(key);
  });
}

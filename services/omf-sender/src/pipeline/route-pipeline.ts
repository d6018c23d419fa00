import type { Bus, Delivery, DurableConsumer } from "@meridian/bus";
import { consumerInfo, drainThroughOf, routeConsumer, routeConsumerName } from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, MAX_RETRY_AFTER_MS, RetryableError, retryHintOf } from "@meridian/retry";
import type { Logger } from "pino";
import {
  dataMessage,
  type OmfAction,
  OmfBadRequestError,
  type OmfClient,
  OmfConflictError,
  type OmfContainer,
  OmfNotFoundError,
  OmfPayloadTooLargeError,
  type OmfType,
} from "../platform/index.js";
import { runBatches } from "./batcher.js";
import { type AcceptedValues, confirmStored, UnconfirmedWriteError } from "./confirm.js";
import { type EndpointRegistry, SEND_RECORD_MAX_AGE_MS } from "./endpoints.js";
import { DeliveryLedger, type LedgerNote, type Written } from "./ledger.js";
import { type ContainerValues, EventMapper, type MappedBatch } from "./mapping.js";
import { heldPrefix } from "./reconcile.js";
import { MAPPING_OPTION, parseRouteMapping, type RouteMapping } from "./route-mapping.js";
import { BodyLimits, sendTracked } from "./send.js";
import type { EndpointStats } from "./stats.js";
import type { DefinitionState } from "./store.js";

/** Batching and mapping of one route; defaults from config, overridden by the route's options. */
export interface PipelineSettings {
  /** Flush when this many events are buffered. */
  maxBatchEvents: number;
  /** Flush when the buffered bus messages reach this many bytes. */
  maxBatchBytes: number;
  /**
   * The longest a buffered event waits for its batch to go. A route with no send in flight sends at once; while one is
   * in flight it gathers until that send returns (or the batch is full), so batches grow with the load by themselves
   * and latency at low rates is one round trip. lingerMs only caps that wait (a slow endpoint); 0 sends every message
   * on its own.
   */
  lingerMs: number;
  /** `auto`: PI on OMF 1.2 → update (replace at the same timestamp), else create (SDS replaces on create). */
  dataAction: "auto" | "create" | "update";
  /** Integer point format: int64 (default) or int32. */
  intFormat: "int64" | "int32";
  /**
   * Batches sent at once. Values are indexed by timestamp, so batches may land in any order; more than one hides
   * the endpoint's round trip while the next batch fills.
   */
  maxInflightBatches: number;
  /**
   * The longest an endpoint's Retry-After holds the route back (1 s to MAX_RETRY_AFTER_MS, the default): an operator
   * may prefer to poll a throttling endpoint sooner than the 5 minutes every client is already cut to.
   */
  maxRetryAfterMs?: number;
  /**
   * How long a Data Hub 202 may take to show its values on the read path before the message is retried (and, after
   * MAX_UNCONFIRMED_DELIVERIES deliveries, dead-lettered). Default DEFAULT_CONFIRM_TIMEOUT_MS.
   */
  confirmTimeoutMs?: number;
  /** The route's own OMF types and containers (option `omfMapping`, route-mapping.ts) instead of the generated ones. */
  mapping?: RouteMapping;
  /** Why `omfMapping` is unusable: the route's events are held (never written with the generated types instead). */
  mappingProblem?: string;
}

/**
 * Reads route.options (`maxBatchEvents`, `maxBatchBytes`, `lingerMs`, `maxInflightBatches`, `maxRetryAfterMs`,
 * `dataAction`, `intFormat`); bad values are reported, defaults kept.
 */
export function pipelineSettings(
  options: Record<string, string>,
  defaults: PipelineSettings,
): { settings: PipelineSettings; problems: string[] } {
  const settings = { ...defaults };
  const problems: string[] = [];
  const int = (
    key: "maxBatchEvents" | "maxBatchBytes" | "lingerMs" | "maxInflightBatches" | "maxRetryAfterMs" | "confirmTimeoutMs",
    min: number,
    max: number,
  ) => {
    const raw = options[key];
    if (raw === undefined) return;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) problems.push(`options.${key}: must be an integer between ${min} and ${max}`);
    else settings[key] = n;
  };
  int("maxBatchEvents", 1, 100_000);
  int("maxBatchBytes", 1024, 64 * 1024 * 1024);
  int("lingerMs", 0, 60_000);
  int("maxInflightBatches", 1, 32);
  int("maxRetryAfterMs", 1000, MAX_RETRY_AFTER_MS);
  int("confirmTimeoutMs", 0, 60_000);
  const action = options["dataAction"];
  if (action !== undefined) {
    if (action === "auto" || action === "create" || action === "update") settings.dataAction = action;
    else problems.push("options.dataAction: must be auto, create or update");
  }
  const intFormat = options["intFormat"];
  if (intFormat !== undefined) {
    if (intFormat === "int64" || intFormat === "int32") settings.intFormat = intFormat;
    else problems.push("options.intFormat: must be int64 or int32");
  }
  const mapping = options[MAPPING_OPTION];
  if (mapping !== undefined) {
    const parsed = parseRouteMapping(mapping);
    if (parsed.mapping) settings.mapping = parsed.mapping;
    else {
      settings.mappingProblem = parsed.problems.slice(0, 10).join("; ");
      problems.push(...parsed.problems);
    }
  }
  return { settings, problems };
}

export interface PipelineDeps {
  bus: Bus;
  registry: EndpointRegistry;
  state: DefinitionState;
  stats: EndpointStats;
  logger: Logger;
  ackWaitMs: number;
  /** The longest one flush may run before it is aborted (OMF_FLUSH_MAX_MS; default DEFAULT_FLUSH_MAX_MS). */
  flushMaxMs?: number;
  /** Redelivery backoff for transient failures (default: the bus's REDELIVERY_BACKOFF). */
  backoff?: BackoffPolicy;
  /** Body limits learnt from 413s, per endpoint (default: one for the process, shared by every route). */
  limits?: BodyLimits;
}

/** Body limits learnt from 413s when the deps bring none: one per process, so every route to an endpoint gains. */
const processLimits = new BodyLimits();
/** How long a Data Hub 202's values may take to become readable, by default. */
export const DEFAULT_CONFIRM_TIMEOUT_MS = 5000;
/** Deliveries of a message whose Data Hub write is never confirmed before it is dead-lettered. */
export const MAX_UNCONFIRMED_DELIVERIES = 5;
/** The longest one flush may run when the deps say nothing (the service passes OMF_FLUSH_MAX_MS). */
export const DEFAULT_FLUSH_MAX_MS = 600_000;
/** How long a stop lets the sends in progress finish before aborting them. */
export const STOP_GRACE_MS = 5000;
/** At most one "send failed" line per route this often (the others are counted in the next one). */
export const FAILURE_LOG_MS = 10_000;

export interface RouteCounters {
  /** Events of distinct bus messages (first deliveries). */
  received: number;
  /** Events of messages delivered again (after a nak, a failed ack, a stop or a crash): not counted in received. */
  redelivered: number;
  /** Values of redelivered messages the ledger showed written already, so not sent again. */
  alreadyWritten: number;
  /** Of those, values found at the endpoint's read path (a send that died before recording what it wrote). */
  foundAtEndpoint: number;
  /** Events with at least one point, written to the endpoint. */
  delivered: number;
  /** Events without a point (nothing to write), acked with their message. */
  skipped: number;
  failed: number;
  /** Batches flushed, and the events in them (batch sizes, for status and the benchmark). */
  flushes: number;
  flushedEvents: number;
  maxFlushEvents: number;
  lastError: string;
  lastErrorTime: Date | undefined;
}

/** Thrown when a send cannot start: no such endpoint, credentials unreadable, endpoint URL wrong. Retried. */
class EndpointUnavailableError extends RetryableError {}

/** A flush that ran past its bound (OMF_FLUSH_MAX_MS): aborted, its messages retried after the backoff. */
export class FlushOverrunError extends RetryableError {}

/** What the container quota held back from one message: the refused containers and their events. */
interface OverQuota {
  containers: string[];
  events: number;
}

/**
 * One route to one OMF endpoint: a durable consumer `omf-<route id>` on the route's source filter, batches of
 * deliveries flushed when the route is idle (no send in flight), or by count, bytes or linger time, types and containers ensured once, data sent under the
 * endpoint's body limit (413 → split), acks only after a 2xx. Transient failures nak (Retry-After wins over the
 * backoff) and never dead-letter; a 4xx retrying cannot fix dead-letters the message with the OMF error body.
 */
export class RoutePipeline {
  readonly counters: RouteCounters = {
    received: 0,
    redelivered: 0,
    alreadyWritten: 0,
    foundAtEndpoint: 0,
    delivered: 0,
    skipped: 0,
    failed: 0,
    flushes: 0,
    flushedEvents: 0,
    maxFlushEvents: 0,
    lastError: "",
    lastErrorTime: undefined,
  };
  /** Events held in memory for the batch being built or sent. */
  buffered = 0;
  readonly consumer: DurableConsumer;
  readonly settings: PipelineSettings;
  /** While the route drains: the last stream sequence it still delivers (what was on the bus at its delete). */
  readonly drainThrough: number | undefined;
  /** Ends pulling from the bus. */
  private readonly ac = new AbortController();
  /** Aborts the sends in progress: after STOP_GRACE_MS of a stop, or at once when the stop asks. */
  private readonly sends = new AbortController();
  private done: Promise<void> | undefined;
  private readonly log: Logger;
  private mapper: EventMapper | undefined;
  private mapperVersion = "";
  /** When the container quota was last logged (at most once a minute per route). */
  private quotaLoggedAt = 0;
  /** Errors whose cut Retry-After was logged: one line per endpoint answer, not per message it failed. */
  private readonly clampLogged = new WeakSet<object>();
  private readonly ledger: DeliveryLedger;
  /** The ledger's prune in progress (at most one). */
  private pruning: Promise<void> | undefined;
  /** Stream sequences of the deliveries this pipeline holds (buffered or being sent). */
  private readonly holding = new Set<number>();
  private failureLoggedAt = 0;
  private failureLogsSuppressed = 0;

  constructor(
    readonly route: Route,
    settings: PipelineSettings,
    private readonly deps: PipelineDeps,
  ) {
    this.settings = settings;
    this.log = deps.logger.child({ route: route.id, endpoint: this.endpointId });
    this.drainThrough = drainThroughOf(route);
    this.ledger = new DeliveryLedger(deps.bus, route.id);
    this.consumer = routeConsumer(deps.bus, route, Platform.OMF, {
      logger: deps.logger,
      ackWaitMs: deps.ackWaitMs,
      // A batch must fit in what may be unacknowledged at once.
      maxAckPending: Math.max(1024, settings.maxBatchEvents * (settings.maxInflightBatches + 1)),
      pullBatch: Math.min(512, Math.max(16, settings.maxBatchEvents)),
      backoff: deps.backoff,
    });
  }

  get endpointId(): string {
    return this.route.sink?.target ?? "";
  }

  start(): void {
    this.done ??= this.run().catch((err) => this.log.error({ err }, "pipeline stopped on an unexpected error"));
  }

  /**
   * Stops pulling and hands unsent deliveries back to the bus at once. Sends in progress get up to `graceMs`
   * (STOP_GRACE_MS) to finish, so what the endpoint accepts is recorded in the ledger and acked rather than written
   * and left for a redelivery to sort out; then they are aborted.
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.ac.abort(new Error("pipeline stopping"));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([this.done, grace]);
    clearTimeout(timer);
    this.sends.abort(new Error("pipeline stopping"));
    await this.done;
  }

  private async run(): Promise<void> {
    const signal = this.ac.signal;
    // Records left by earlier runs or other replicas: read once, so the ack floor can prune them.
    void this.ledger.open().catch((err) => this.log.debug({ err: (err as Error).message }, "delivery ledger not read"));
    const it = this.consumer.deliveries(signal)[Symbol.asyncIterator]();
    try {
      await runBatches({
        items: it,
        settings: this.settings,
        signal,
        admit: (d) => {
          if (this.drainThrough !== undefined && d.streamSequence > this.drainThrough) {
            // Published after the route was deleted: not its backlog. Acked unsent, so the drain can end.
            d.ack();
            return undefined;
          }
          const n = d.batch.events.length;
          if (d.deliveryCount > 1) this.counters.redelivered += n;
          else this.counters.received += n;
          // Delivered again while this instance still holds it (the ack deadline passed during a long send): the
          // delivery in hand settles it, and sending this one beside it could write its values twice.
          if (this.holding.has(d.streamSequence)) return undefined;
          this.holding.add(d.streamSequence);
          this.buffered += n;
          return { events: n, bytes: d.sizeBytes };
        },
        send: (batch, answered) =>
          this.flush(batch, this.sends.signal, answered).catch((err) => this.log.error({ err }, "flush failed unexpectedly")),
        release: async (unsent, pending) => {
          // Unsent deliveries go back now, so another instance takes them without waiting for the ack deadline.
          for (const d of unsent) d.retry(0);
          this.holding.clear();
          this.buffered = 0;
          if (pending) {
            const r = await pending.catch(() => undefined);
            if (r && !r.done) r.value.retry(0);
          }
        },
      });
    } finally {
      await it.return?.(undefined);
    }
  }

  private mapperFor(client: OmfClient): EventMapper {
    const key = `${client.kind}/${client.config.omfVersion}/${this.settings.intFormat}`;
    if (!this.mapper || this.mapperVersion !== key) {
      this.mapper = new EventMapper({
        omfVersion: client.config.omfVersion,
        intFormat: this.settings.intFormat,
        mapping: this.settings.mapping,
        mappingProblem: this.settings.mappingProblem,
        // ADH and EDS ignore static types and data: a mapping's static entries are not written (nor counted) there.
        staticData: client.kind === "pi",
      });
      this.mapperVersion = key;
    }
    return this.mapper;
  }

  private dataAction(client: OmfClient): OmfAction {
    if (this.settings.dataAction !== "auto") return this.settings.dataAction;
    return client.kind === "pi" && client.config.omfVersion === "1.2" ? "update" : "create";
  }

  /** `answered`: called once the endpoint has answered; the route's next batch may go while this one records and acks. */
  private async flush(batch: Delivery[], signal: AbortSignal, answered: () => void = () => {}): Promise<void> {
    if (batch.length === 0) return;
    const size = batch.reduce((n, d) => n + d.batch.events.length, 0);
    this.counters.flushes++;
    this.counters.flushedEvents += size;
    this.counters.maxFlushEvents = Math.max(this.counters.maxFlushEvents, size);
    const failures = new FailureTally();
    // Keep the ack deadline away while types, containers and data are sent.
    const heartbeat = setInterval(
      () => {
        for (const d of batch) d.working();
      },
      Math.max(500, Math.floor(this.deps.ackWaitMs / 3)),
    );
    // `signal` ends every flush at a stop (their messages go back at once); `overrun` ends this one when it outlives its
    // bound (its messages are retried after the backoff). The heartbeat stops with it: a step that ignores the abort
    // would otherwise hold the messages from redelivery for ever, and silently.
    const overrun = new AbortController();
    const stopping = () => overrun.abort(signal.reason);
    if (signal.aborted) stopping();
    else signal.addEventListener("abort", stopping, { once: true });
    const flushSignal = overrun.signal;
    let stage = "endpoint record";
    const flushMaxMs = this.deps.flushMaxMs ?? DEFAULT_FLUSH_MAX_MS;
    const bound = setTimeout(() => {
      clearInterval(heartbeat);
      this.log.error(
        { stage, flushMaxMs, messages: batch.length, events: size, firstSequence: batch[0]!.streamSequence },
        "flush overran its bound; aborted, its messages will be retried",
      );
      overrun.abort(
        new FlushOverrunError(
          `send to OMF endpoint "${this.endpointId}" still running after ${flushMaxMs} ms (at ${stage}); aborted, retried later`,
        ),
      );
    }, flushMaxMs);
    // What a step failed with: the overrun when that is what stopped it (retryable, whatever the abort looked like).
    const failure = (err: unknown) => (flushSignal.aborted && !signal.aborted ? flushSignal.reason : err);
    try {
      let client: OmfClient | undefined;
      try {
        client = await this.deps.registry.client(this.endpointId, SEND_RECORD_MAX_AGE_MS);
        if (!client) throw new EndpointUnavailableError(`OMF endpoint "${this.endpointId}" does not exist (yet)`);
      } catch (err) {
        for (const d of batch) await this.settleFailure(d, failure(err), signal, failures);
        return;
      }
      const mapper = this.mapperFor(client);
      const mapped: Outgoing[] = [];
      for (const d of batch) {
        try {
          mapped.push({ d, ...mapper.mapBatch(d.batch), done: new Map(), wroteBefore: false });
        } catch (err) {
          await this.settleFailure(d, err, signal, failures);
        }
      }
      if (mapped.length === 0) return;
      try {
        stage = "read-back of earlier writes";
        await this.skipWritten(client, mapped, flushSignal);
        stage = "container quota";
        await this.holdOverQuota(client, mapped);
      } catch (err) {
        for (const m of mapped) await this.settleFailure(m.d, failure(err), signal, failures);
        return;
      }
      const open = mapped.filter((m) => !complete(m));
      let note: LedgerNote | undefined;
      try {
        stage = "delivery ledger note";
        note = await this.ledger.intend(open.map((m) => m.d.streamSequence));
      } catch (err) {
        // Not sent without the note: after a crash its redelivery could not know to read back what was written.
        // (Seen during a leader election of the state bucket's stream; the messages come back after the backoff.)
        const cause = failure(new Error(`delivery ledger unavailable, the send is not started: ${(err as Error).message}`));
        for (const m of mapped) {
          if (complete(m)) continue;
          await this.settleFailure(m.d, cause, signal, failures);
        }
        await this.record(mapped);
        for (const m of mapped) if (complete(m)) await this.succeeded(m);
        return;
      }
      let error: unknown;
      try {
        stage = "send";
        await this.deliverAll(client, open, flushSignal);
      } catch (err) {
        error = failure(err);
      }
      if (error !== undefined && !flushSignal.aborted && isPermanent(error) && open.filter((m) => !complete(m)).length > 1) {
        // Find the message(s) the endpoint cannot take; the others go through (what was written is not sent again).
        stage = "delivery ledger record";
        await this.record(mapped, note);
        stage = "send, one message at a time";
        for (const m of open) {
          if (complete(m)) continue;
          try {
            await this.deliverAll(client, [m], flushSignal);
          } catch (e) {
            m.error = failure(e);
          }
        }
      } else if (error !== undefined) for (const m of open) if (!complete(m)) m.error = error;
      answered();
      stage = "delivery ledger record";
      await this.record(mapped, note);
      stage = "acks";
      for (const m of mapped) {
        // No await for a plain ack: the acks of the batch then leave in one write to the bus, not one each.
        if (complete(m)) {
          if (m.overQuota) await this.succeeded(m);
          else void this.succeeded(m);
        } else await this.settleFailure(m.d, m.error ?? error, signal, failures);
      }
    } finally {
      clearInterval(heartbeat);
      clearTimeout(bound);
      signal.removeEventListener("abort", stopping);
      for (const d of batch) this.holding.delete(d.streamSequence);
      this.buffered = Math.max(0, this.buffered - size);
      this.logFailures(failures);
    }
  }

  /**
   * Messages delivered again (by this or another replica: it may have written them, then stopped before the ack) are
   * looked up in the delivery ledger: what the endpoint accepted before is taken out, so it is not written twice. A
   * message whose send began and never recorded its end (its instance died meanwhile) is checked against the
   * endpoint's read path for the rest (reconcile.ts).
   */
  private async skipWritten(client: OmfClient, mapped: Outgoing[], signal: AbortSignal): Promise<void> {
    const again = mapped.filter((m) => m.d.deliveryCount > 1);
    const prior = again.length === 0 ? undefined : await this.ledger.lookup(again.map((m) => m.d.streamSequence));
    for (const m of mapped) {
      // A first delivery is looked up only in what this instance knows (no bucket read on the hot path): after a
      // failover of the consumer's leader, what this instance wrote and acked may come again as a first delivery.
      const entry = m.d.deliveryCount > 1 ? prior?.get(m.d.streamSequence) : this.ledger.known(m.d.streamSequence);
      if (entry === undefined) continue;
      const w = entry.written;
      for (const [key, g] of m.groups) {
        const n = w === undefined ? 0 : w === "all" ? g.values.length : Math.min(g.values.length, w[key] ?? 0);
        if (n === 0) continue;
        m.wroteBefore = true;
        m.done.set(key, n);
        this.counters.alreadyWritten += n;
      }
      if (!entry.sending || complete(m)) continue;
      for (const [key, rest] of remaining(m)) {
        const held = await heldPrefix(client, rest, rest.values, signal);
        if (held === 0) continue;
        m.wroteBefore = true;
        m.done.set(key, (m.done.get(key) ?? 0) + held);
        this.counters.alreadyWritten += held;
        this.counters.foundAtEndpoint += held;
      }
    }
  }

  /** Writes what the endpoint accepted of these messages to the ledger (before any of them is acked). */
  private async record(mapped: Outgoing[], note?: LedgerNote): Promise<void> {
    const written = new Map<number, Written>();
    for (const m of mapped) {
      if (m.done.size === 0 || (m.recorded !== undefined && sameCounts(m.recorded, m.done))) continue;
      written.set(m.d.streamSequence, complete(m) ? "all" : Object.fromEntries(m.done));
      m.recorded = new Map(m.done);
    }
    try {
      await this.ledger.record(written, note);
    } catch (err) {
      // The endpoint has the values: acking stays right; only a crash before the ack could now repeat them.
      this.log.warn({ err: (err as Error).message, messages: written.size }, "delivery ledger not written");
    }
    // In the background, one at a time: a prune waits for the consumer's info and purges many keys, and a send
    // waiting for it would hold the route's next batch up to lingerMs.
    if (!this.pruning) {
      this.pruning = this.ledger
        .prune(() => this.ackFloor())
        .catch((err) => this.log.debug({ err: (err as Error).message }, "delivery ledger not pruned"))
        .finally(() => {
          this.pruning = undefined;
        });
    }
  }

  private async ackFloor(): Promise<number | undefined> {
    const info = await consumerInfo(this.deps.bus, routeConsumerName(this.route.id, Platform.OMF));
    return info?.ack_floor.stream_seq;
  }

  /**
   * Takes the groups of containers the quota refuses (OMF_MAX_CONTAINERS_PER_ENDPOINT) out of each mapped message,
   * so only containers the endpoint has, or may still get, are sent; the message remembers what was held back.
   */
  private async holdOverQuota(client: OmfClient, mapped: Array<{ overQuota?: OverQuota } & MappedBatch>): Promise<void> {
    const ids = mapped.flatMap((m) => [...m.groups.values()].flatMap((g) => (g.container ? [g.container.id] : [])));
    const refused = await this.deps.state.admit(this.endpointId, client, ids);
    if (refused.size === 0) return;
    for (const m of mapped) {
      for (const [key, g] of m.groups) {
        if (!g.container || !refused.has(g.container.id)) continue;
        m.overQuota ??= { containers: [], events: 0 };
        m.overQuota.containers.push(g.container.id);
        m.overQuota.events += g.values.length;
        m.groups.delete(key);
      }
    }
    if (Date.now() - this.quotaLoggedAt > 60_000) {
      this.quotaLoggedAt = Date.now();
      this.log.warn(
        { maxContainers: this.deps.state.maxContainers, refusedContainers: [...refused].slice(0, 10), refused: refused.size },
        "OMF container quota reached: events for new containers are dead-lettered",
      );
    }
  }

  /**
   * After the endpoint took the message's events: ack, or, when the quota held some back, dead-letter the message
   * with the reason (its other events were delivered and recorded; they are not written again).
   */
  private async succeeded(m: Outgoing): Promise<void> {
    const { d, skipped, overQuota } = m;
    const refused = overQuota?.events ?? 0;
    const n = d.batch.events.length - skipped - refused;
    if (overQuota) {
      const reason =
        `OMF container quota: endpoint "${this.endpointId}" holds OMF_MAX_CONTAINERS_PER_ENDPOINT=${this.deps.state.maxContainers} ` +
        `containers; ${overQuota.containers.length} new container(s) refused`;
      this.counters.failed += refused;
      this.counters.lastError = reason;
      this.counters.lastErrorTime = new Date();
      this.deps.stats.failure(this.endpointId, reason, { events: refused });
      this.deps.stats.quotaRefused(this.endpointId, refused);
      await d.deadLetter(reason, JSON.stringify({ refusedContainers: overQuota.containers.slice(0, 20), refusedEvents: refused }));
    } else d.ack();
    // A message the ledger shows fully written before was counted when that happened (or by the replica that did).
    if (m.wroteBefore && m.sentNow !== true) return;
    this.counters.delivered += n;
    this.counters.skipped += skipped;
    this.deps.stats.success(this.endpointId, { events: n });
  }

  private async settleFailure(d: Delivery, err: unknown, signal: AbortSignal, tally: FailureTally): Promise<void> {
    const n = d.batch.events.length;
    const message = (err as Error)?.message ?? String(err);
    this.counters.lastError = message;
    this.counters.lastErrorTime = new Date();
    if (signal.aborted) {
      d.retry(0);
      return;
    }
    // A write Data Hub accepted and never stored, again and again: dead-lettered with the reason, not retried forever.
    const unconfirmedTooOften = err instanceof UnconfirmedWriteError && d.deliveryCount >= MAX_UNCONFIRMED_DELIVERIES;
    if (isPermanent(err) || unconfirmedTooOften) {
      this.counters.failed += n;
      this.deps.stats.failure(this.endpointId, message, { events: n });
      tally.add(message, n, "dead-lettered");
      const detail =
        err instanceof UnconfirmedWriteError
          ? JSON.stringify({ operationIds: err.operationIds, deliveries: d.deliveryCount })
          : errorBody(err);
      await d.deadLetter(message, detail);
      return;
    }
    this.deps.stats.failure(this.endpointId, message);
    const hint = retryHintOf(err, this.settings.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS);
    if (hint?.clamped && typeof err === "object" && err !== null && !this.clampLogged.has(err)) {
      this.clampLogged.add(err);
      this.log.warn(
        { err: message, retryAfterRequestedMs: hint.requestedMs, retryAfterMs: hint.ms },
        "endpoint's Retry-After is longer than the cap; retrying after the cap",
      );
    }
    tally.add(message, n, "retried", hint?.ms, d.deliveryCount);
    d.retry(hint?.ms);
  }

  /**
   * One line per failed batch (messages, events, what happened to them, the first errors), at most one every
   * FAILURE_LOG_MS per route; the lines left out meanwhile are counted in the next one (`suppressedBatches`).
   */
  private logFailures(tally: FailureTally): void {
    if (tally.messages === 0) return;
    const now = Date.now();
    if (now - this.failureLoggedAt < FAILURE_LOG_MS) {
      this.failureLogsSuppressed++;
      return;
    }
    this.failureLoggedAt = now;
    const suppressedBatches = this.failureLogsSuppressed;
    this.failureLogsSuppressed = 0;
    this.log.warn(
      {
        messages: tally.messages,
        events: tally.events,
        retried: tally.retried,
        deadLettered: tally.deadLettered,
        retryAfterMs: tally.retryAfterMs,
        maxDeliveries: tally.maxDeliveries,
        errors: [...tally.errors].slice(0, 3),
        ...(suppressedBatches > 0 ? { suppressedBatches } : {}),
      },
      tally.deadLettered > 0 ? "send failed; messages dead-lettered or retried" : "send failed; will retry",
    );
  }

  /**
   * Sends the not yet written values of these messages as one data message (definitions first) and notes, per
   * message and container, how many of its values the endpoint accepted: requests go in order and stop at the first
   * failure, so that is a prefix of each message's values, the same one the ledger records. When the endpoint lost a
   * type or container ("container not defined", 404), they are sent again and the rest of the data once more.
   */
  private async deliverAll(client: OmfClient, messages: Outgoing[], signal: AbortSignal): Promise<void> {
    const attempt = async () => {
      const rest = messages.filter((m) => !complete(m));
      if (rest.length === 0) return;
      for (const m of rest) m.sentNow = true;
      const groups = merge(rest.map((m) => remaining(m)));
      const accepted = await this.deliver(client, groups, signal);
      attribute(rest, accepted);
    };
    try {
      await attempt();
    } catch (err) {
      if (err instanceof AcceptedBeforeError) {
        attribute(
          messages.filter((m) => !complete(m)),
          err.accepted,
        );
        if (!(err.cause instanceof OmfNotFoundError)) throw err.cause;
        this.log.info({ err: err.cause.message }, "endpoint lost definitions; sending types and containers again");
        await this.deps.state.forget(this.endpointId, client, [...err.typeIds], [...err.containerIds]);
        try {
          await attempt();
        } catch (e) {
          if (!(e instanceof AcceptedBeforeError)) throw e;
          attribute(
            messages.filter((m) => !complete(m)),
            e.accepted,
          );
          throw e.cause;
        }
        return;
      }
      throw err;
    }
  }

  /**
   * Ensures definitions, sends the data (batched to what the endpoint takes, 413s learnt) and confirms what Data
   * Hub's 202 did not. Resolves with the values accepted per group key; on failure, rejects with AcceptedBeforeError
   * carrying what was accepted before it.
   */
  private async deliver(client: OmfClient, groups: Map<string, ContainerValues>, signal: AbortSignal): Promise<Map<string, number>> {
    const accepted = new Map<string, number>();
    if (groups.size === 0) return accepted;
    const types = new Map<string, OmfType>();
    const containers: OmfContainer[] = [];
    const items = [];
    const keyOf = new Map<string, string>();
    for (const [key, g] of groups) {
      types.set(g.mapping.typeId, g.mapping.type);
      if (!g.container) {
        // Static instances of a route mapping's static type (PI makes AF elements of them; SDS ignores them).
        items.push({ typeid: g.mapping.typeId, values: g.values });
        keyOf.set(`t\u0000${g.mapping.typeId}`, key);
        continue;
      }
      containers.push(g.container);
      items.push({ containerid: g.container.id, values: g.values });
      keyOf.set(`c\u0000${g.container.id}`, key);
    }
    const fail = (err: unknown) =>
      new AcceptedBeforeError(
        err,
        accepted,
        types.keys(),
        containers.map((c) => c.id),
      );
    try {
      await this.ensure(client, [...types.values()], containers, signal);
    } catch (err) {
      throw fail(err);
    }
    // An SDS receiver's 202 (Data Hub, EDS) only queues the values: they count once read back (confirm.ts).
    const confirm = client.kind !== "pi";
    const unconfirmed = new Map<string, number>();
    const toConfirm: AcceptedValues[] = [];
    const message = dataMessage(items, this.dataAction(client));
    try {
      await sendTracked(client, this.endpointId, this.deps.limits ?? processLimits, message, {
        signal,
        onAccepted: (request, result) => {
          for (const item of request.body as ReadonlyArray<{ containerid?: string; typeid?: string; values?: readonly unknown[] }>) {
            const key = keyOf.get(item.containerid !== undefined ? `c\u0000${item.containerid}` : `t\u0000${item.typeid}`);
            if (key === undefined) continue;
            const n = item.values?.length ?? 0;
            const g = groups.get(key)!;
            if (confirm && result.status === 202 && g.container) {
              unconfirmed.set(key, (unconfirmed.get(key) ?? 0) + n);
              toConfirm.push({
                containerId: g.container.id,
                indexes: (item.values ?? []).map((v) => String((v as Record<string, unknown>)[g.mapping.indexName])),
                operationId: result.operationId,
              });
            } else accepted.set(key, (accepted.get(key) ?? 0) + n);
          }
        },
        onLearnt: (bytes, refusedBytes) =>
          this.log.warn(
            { refusedBytes, maxBodyBytes: bytes },
            "endpoint answered 413 (payload too large); batching to the smaller size from now on",
          ),
      });
      if (toConfirm.length > 0) {
        await confirmStored(client, mergeAccepted(toConfirm), this.settings.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS, signal);
        for (const [key, n] of unconfirmed) accepted.set(key, (accepted.get(key) ?? 0) + n);
      }
    } catch (err) {
      throw fail(err);
    }
    return accepted;
  }

  private async ensure(client: OmfClient, types: OmfType[], containers: OmfContainer[], signal: AbortSignal): Promise<void> {
    try {
      await this.deps.state.ensure(this.endpointId, client, types, containers, signal);
    } catch (err) {
      // A type message refers to nothing: a 404 for it means the OMF URL itself is wrong (configuration, not data).
      if (err instanceof OmfNotFoundError && !/container/i.test(err.message))
        throw new EndpointUnavailableError(`OMF endpoint "${this.endpointId}": ${err.message}`, undefined, { cause: err });
      throw err;
    }
  }

  async pending(): Promise<number> {
    try {
      const p = await this.consumer.pending();
      return p.pending + p.ackPending;
    } catch {
      return 0;
    }
  }
}

function merge(list: Array<Map<string, ContainerValues>>): Map<string, ContainerValues> {
  const out = new Map<string, ContainerValues>();
  for (const groups of list) {
    for (const [id, g] of groups) {
      const have = out.get(id);
      if (have) have.values.push(...g.values);
      else out.set(id, { ...g, values: [...g.values] });
    }
  }
  return out;
}

/** One bus message on its way: its mapped groups, and per group key how many of its values the endpoint has. */
interface Outgoing extends MappedBatch {
  d: Delivery;
  overQuota?: OverQuota;
  /** Values accepted per group key (from the ledger when delivered again, then this flush); a prefix of the group's. */
  done: Map<string, number>;
  /** The ledger showed (some of) it written by an earlier delivery. */
  wroteBefore: boolean;
  /** Some of it was sent in this flush. */
  sentNow?: boolean;
  /** What the ledger holds for it from this flush. */
  recorded?: Map<string, number>;
  error?: unknown;
}

/** Every value of every group the message still has (the quota may have held some back) is at the endpoint. */
function complete(m: Outgoing): boolean {
  for (const [key, g] of m.groups) if ((m.done.get(key) ?? 0) < g.values.length) return false;
  return true;
}

/** The groups of a message without what the endpoint has. */
function remaining(m: Outgoing): Map<string, ContainerValues> {
  const out = new Map<string, ContainerValues>();
  for (const [key, g] of m.groups) {
    const done = m.done.get(key) ?? 0;
    if (done < g.values.length) out.set(key, { ...g, values: g.values.slice(done) });
  }
  return out;
}

/** Spreads values accepted per group key over the messages they were merged from, in the same order. */
function attribute(messages: Outgoing[], accepted: ReadonlyMap<string, number>): void {
  for (const [key, count] of accepted) {
    let left = count;
    for (const m of messages) {
      if (left <= 0) break;
      const g = m.groups.get(key);
      if (!g) continue;
      const done = m.done.get(key) ?? 0;
      const take = Math.min(left, g.values.length - done);
      if (take <= 0) continue;
      m.done.set(key, done + take);
      left -= take;
    }
  }
}

function sameCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function mergeAccepted(list: AcceptedValues[]): AcceptedValues[] {
  const out = new Map<string, AcceptedValues>();
  for (const a of list) {
    const have = out.get(a.containerId);
    if (!have) out.set(a.containerId, { ...a, indexes: [...a.indexes] });
    else {
      have.indexes.push(...a.indexes);
      if (have.operationId === undefined) have.operationId = a.operationId;
    }
  }
  return [...out.values()];
}

/** A send failed after the endpoint accepted part of it: what it accepted, and what was being sent. */
class AcceptedBeforeError extends Error {
  readonly typeIds: string[];
  constructor(
    override readonly cause: unknown,
    readonly accepted: ReadonlyMap<string, number>,
    typeIds: Iterable<string>,
    readonly containerIds: string[],
  ) {
    super((cause as Error)?.message ?? String(cause));
    this.name = "AcceptedBeforeError";
    this.typeIds = [...typeIds];
  }
}

/** The failures of one flush, for its one log line. */
class FailureTally {
  messages = 0;
  events = 0;
  retried = 0;
  deadLettered = 0;
  retryAfterMs: number | undefined;
  maxDeliveries = 0;
  readonly errors = new Set<string>();

  add(error: string, events: number, outcome: "retried" | "dead-lettered", retryAfterMs?: number, deliveries = 0): void {
    this.messages++;
    this.events += events;
    if (outcome === "retried") this.retried++;
    else this.deadLettered++;
    if (retryAfterMs !== undefined) this.retryAfterMs = Math.max(this.retryAfterMs ?? 0, retryAfterMs);
    this.maxDeliveries = Math.max(this.maxDeliveries, deliveries);
    if (this.errors.size < 3) this.errors.add(error.slice(0, 300));
  }
}

/** A 4xx that the same request will always get: dead-letter. Everything else (5xx, 429, auth, TLS, config) waits. */
export function isPermanent(err: unknown): boolean {
  return err instanceof OmfBadRequestError || err instanceof OmfConflictError || err instanceof OmfPayloadTooLargeError;
}

/** The OMF error body for a dead letter: the endpoint's status and messages. */
function errorBody(err: unknown): string | undefined {
  const e = err as { status?: number; result?: { messages?: unknown[] }; problems?: readonly string[] };
  if (e.result) return JSON.stringify({ status: e.status, messages: e.result.messages });
  if (e.problems) return JSON.stringify({ problems: e.problems });
  return undefined;
}

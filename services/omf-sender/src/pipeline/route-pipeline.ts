import type { Bus, Delivery, DurableConsumer } from "@meridian/bus";
import { drainThroughOf, routeConsumer } from "@meridian/bus";
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
import type { EndpointRegistry } from "./endpoints.js";
import { type ContainerValues, EventMapper, type MappedBatch } from "./mapping.js";
import { MAPPING_OPTION, parseRouteMapping, type RouteMapping } from "./route-mapping.js";
import type { EndpointStats } from "./stats.js";
import type { DefinitionState } from "./store.js";

/** Batching and mapping of one route; defaults from config, overridden by the route's options. */
export interface PipelineSettings {
  /** Flush when this many events are buffered. */
  maxBatchEvents: number;
  /** Flush when the buffered bus messages reach this many bytes. */
  maxBatchBytes: number;
  /** Flush this long after the first buffered event at the latest. */
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
    key: "maxBatchEvents" | "maxBatchBytes" | "lingerMs" | "maxInflightBatches" | "maxRetryAfterMs",
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
  /** Redelivery backoff for transient failures (default: the bus's REDELIVERY_BACKOFF). */
  backoff?: BackoffPolicy;
}

export interface RouteCounters {
  received: number;
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

const LINGER = Symbol("linger");

/** What the container quota held back from one message: the refused containers and their events. */
interface OverQuota {
  containers: string[];
  events: number;
}

/**
 * One route to one OMF endpoint: a durable consumer `omf-<route id>` on the route's source filter, batches of
 * deliveries flushed by count, bytes or linger time, types and containers ensured once, data sent under the
 * endpoint's body limit (413 → split), acks only after a 2xx. Transient failures nak (Retry-After wins over the
 * backoff) and never dead-letter; a 4xx retrying cannot fix dead-letters the message with the OMF error body.
 */
export class RoutePipeline {
  readonly counters: RouteCounters = {
    received: 0,
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
  private readonly ac = new AbortController();
  private done: Promise<void> | undefined;
  private readonly log: Logger;
  private mapper: EventMapper | undefined;
  private mapperVersion = "";
  /** When the container quota was last logged (at most once a minute per route). */
  private quotaLoggedAt = 0;
  /** Errors whose cut Retry-After was logged: one line per endpoint answer, not per message it failed. */
  private readonly clampLogged = new WeakSet<object>();

  constructor(
    readonly route: Route,
    settings: PipelineSettings,
    private readonly deps: PipelineDeps,
  ) {
    this.settings = settings;
    this.log = deps.logger.child({ route: route.id, endpoint: this.endpointId });
    this.drainThrough = drainThroughOf(route);
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

  /** Stops pulling, aborts a send in progress and hands unsent deliveries back to the bus at once. */
  async stop(): Promise<void> {
    this.ac.abort(new Error("pipeline stopping"));
    await this.done;
  }

  private async run(): Promise<void> {
    const signal = this.ac.signal;
    const it = this.consumer.deliveries(signal)[Symbol.asyncIterator]();
    let next: Promise<IteratorResult<Delivery>> | undefined;
    let batch: Delivery[] = [];
    let events = 0;
    let bytes = 0;
    let firstAt = 0;
    const inflight = new Set<Promise<void>>();
    const flush = async () => {
      const b = batch;
      batch = [];
      events = 0;
      bytes = 0;
      const p = this.flush(b, signal).catch((err) => this.log.error({ err }, "flush failed unexpectedly"));
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      while (inflight.size >= this.settings.maxInflightBatches) await Promise.race(inflight);
    };
    try {
      while (!signal.aborted) {
        next ??= it.next();
        let r: IteratorResult<Delivery> | typeof LINGER;
        if (batch.length === 0) r = await next;
        else {
          const wait = firstAt + this.settings.lingerMs - Date.now();
          if (wait <= 0) r = LINGER;
          else {
            let timer: NodeJS.Timeout | undefined;
            r = await Promise.race([next, new Promise<typeof LINGER>((res) => (timer = setTimeout(() => res(LINGER), wait)))]);
            clearTimeout(timer);
          }
        }
        if (r === LINGER) {
          await flush();
          continue;
        }
        next = undefined;
        if (r.done) break;
        const d = r.value;
        if (this.drainThrough !== undefined && d.streamSequence > this.drainThrough) {
          // Published after the route was deleted: not its backlog. Acked unsent, so the drain can end.
          d.ack();
          continue;
        }
        const n = d.batch.events.length;
        this.counters.received += n;
        if (batch.length === 0) firstAt = Date.now();
        batch.push(d);
        events += n;
        this.buffered += n;
        bytes += d.sizeBytes;
        if (events >= this.settings.maxBatchEvents || bytes >= this.settings.maxBatchBytes) await flush();
      }
    } finally {
      await Promise.all(inflight);
      // Unsent deliveries go back now, so another instance takes them without waiting for the ack deadline.
      for (const d of batch) d.retry(0);
      this.buffered = 0;
      if (next) {
        const r = await next.catch(() => undefined);
        if (r && !r.done) r.value.retry(0);
      }
      await it.return?.(undefined);
    }
  }

  private mapperFor(client: OmfClient): EventMapper {
    const key = `${client.config.omfVersion}/${this.settings.intFormat}`;
    if (!this.mapper || this.mapperVersion !== key) {
      this.mapper = new EventMapper({
        omfVersion: client.config.omfVersion,
        intFormat: this.settings.intFormat,
        mapping: this.settings.mapping,
        mappingProblem: this.settings.mappingProblem,
      });
      this.mapperVersion = key;
    }
    return this.mapper;
  }

  private dataAction(client: OmfClient): OmfAction {
    if (this.settings.dataAction !== "auto") return this.settings.dataAction;
    return client.kind === "pi" && client.config.omfVersion === "1.2" ? "update" : "create";
  }

  private async flush(batch: Delivery[], signal: AbortSignal): Promise<void> {
    if (batch.length === 0) return;
    const size = batch.reduce((n, d) => n + d.batch.events.length, 0);
    this.counters.flushes++;
    this.counters.flushedEvents += size;
    this.counters.maxFlushEvents = Math.max(this.counters.maxFlushEvents, size);
    // Keep the ack deadline away while types, containers and data are sent.
    const heartbeat = setInterval(
      () => {
        for (const d of batch) d.working();
      },
      Math.max(500, Math.floor(this.deps.ackWaitMs / 3)),
    );
    try {
      let client: OmfClient | undefined;
      try {
        client = await this.deps.registry.client(this.endpointId);
        if (!client) throw new EndpointUnavailableError(`OMF endpoint "${this.endpointId}" does not exist (yet)`);
      } catch (err) {
        for (const d of batch) await this.settleFailure(d, err, signal);
        return;
      }
      const mapper = this.mapperFor(client);
      const mapped: Array<{ d: Delivery; overQuota?: OverQuota } & MappedBatch> = [];
      for (const d of batch) {
        try {
          mapped.push({ d, ...mapper.mapBatch(d.batch) });
        } catch (err) {
          await this.settleFailure(d, err, signal);
        }
      }
      if (mapped.length === 0) return;
      try {
        await this.holdOverQuota(client, mapped);
      } catch (err) {
        for (const m of mapped) await this.settleFailure(m.d, err, signal);
        return;
      }
      try {
        await this.deliver(client, merge(mapped.map((m) => m.groups)), signal);
        for (const m of mapped) await this.succeeded(m.d, m.skipped, m.overQuota);
      } catch (err) {
        if (signal.aborted) {
          for (const m of mapped) m.d.retry(0);
          return;
        }
        if (isPermanent(err) && mapped.length > 1) {
          // Find the message(s) the endpoint cannot take; the others go through (re-sent values overwrite).
          for (const m of mapped) {
            try {
              await this.deliver(client, m.groups, signal);
              await this.succeeded(m.d, m.skipped, m.overQuota);
            } catch (e) {
              await this.settleFailure(m.d, e, signal);
            }
          }
        } else for (const m of mapped) await this.settleFailure(m.d, err, signal);
      }
    } finally {
      clearInterval(heartbeat);
      this.buffered = Math.max(0, this.buffered - size);
    }
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
   * with the reason (its other events were delivered; sending the letter again overwrites them, never duplicates).
   */
  private async succeeded(d: Delivery, skipped: number, overQuota?: OverQuota): Promise<void> {
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
    this.counters.delivered += n;
    this.counters.skipped += skipped;
    this.deps.stats.success(this.endpointId, { events: n });
  }

  private async settleFailure(d: Delivery, err: unknown, signal: AbortSignal): Promise<void> {
    const n = d.batch.events.length;
    const message = (err as Error)?.message ?? String(err);
    this.counters.lastError = message;
    this.counters.lastErrorTime = new Date();
    if (signal.aborted) {
      d.retry(0);
      return;
    }
    if (isPermanent(err)) {
      this.counters.failed += n;
      this.deps.stats.failure(this.endpointId, message, { events: n });
      await d.deadLetter(message, errorBody(err));
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
    this.log.warn({ err: message, seq: d.streamSequence, deliveries: d.deliveryCount, retryAfterMs: hint?.ms }, "send failed; will retry");
    d.retry(hint?.ms);
  }

  /**
   * Ensures definitions, sends the data. When the endpoint lost a type or container ("container not defined",
   * 404), they are sent again and the data once more.
   */
  private async deliver(client: OmfClient, groups: Map<string, ContainerValues>, signal: AbortSignal): Promise<void> {
    if (groups.size === 0) return;
    const types = new Map<string, OmfType>();
    const containers: OmfContainer[] = [];
    const items = [];
    for (const g of groups.values()) {
      types.set(g.mapping.typeId, g.mapping.type);
      if (!g.container) {
        // Static instances of a route mapping's static type (PI makes AF elements of them; SDS ignores them).
        items.push({ typeid: g.mapping.typeId, values: g.values });
        continue;
      }
      containers.push(g.container);
      items.push({ containerid: g.container.id, values: g.values });
    }
    const message = dataMessage(items, this.dataAction(client));
    const attempt = async () => {
      await this.ensure(client, [...types.values()], containers, signal);
      await client.sendBatched(message, { signal });
    };
    try {
      await attempt();
    } catch (err) {
      if (!(err instanceof OmfNotFoundError)) throw err;
      this.log.info({ err: err.message }, "endpoint lost definitions; sending types and containers again");
      await this.deps.state.forget(
        this.endpointId,
        client,
        [...types.keys()],
        containers.map((c) => c.id),
      );
      await attempt();
    }
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

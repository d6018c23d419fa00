import {
  type Bus,
  countFailure,
  type Delivery,
  type DurableConsumer,
  drainThroughOf,
  eventsByDevice,
  PermanentError,
  platformToken,
  type RouteSinkCounters,
  RouteSinks,
  routeConsumer,
} from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type Source } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, isRetryable, RetryableError } from "@meridian/retry";
import type { Logger } from "pino";
import { OciError } from "../platform/errors.js";
import type { DeviceCredentials, DeviceEndpointClient } from "../platform/types.js";
import type { OciDomains } from "./domains.js";
import { toDevicePayload } from "./mapping.js";
import type { StoredTwin, TwinStore } from "./store.js";

/** How long a message waits when the route cannot be used as it is (a bad option, no default IoT domain). */
const MISCONFIGURED_RETRY_MS = 30_000;
/** The route options this sink reads; any other is refused (in the route's status), so a typo is not silently ignored. */
export const ROUTE_OPTIONS = new Set(["twin", "endpoint"]);
export const DEFAULT_TWIN_TEMPLATE = "{device}";
export const DEFAULT_ENDPOINT = "iot/v1/telemetry";
const MAX_TEMPLATE_LENGTH = 256;
const PLACEHOLDERS = new Set(["platform", "connection", "device"]);
const TWIN_KEY = /^[a-z0-9-]{1,63}$/;
/** A device endpoint path as devices post to it: no leading slash, no query. */
const ENDPOINT = /^[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*$/;
/** How long a twin read from KV is used: a changed secret or a deleted twin is seen within this. */
const TWIN_CACHE_MS = 5_000;
const MAX_TWINS_CACHED = 10_000;
/** Deliveries whose accepted posts are remembered, so a redelivery to this instance posts only the rest. */
const MAX_PARTIAL_REMEMBERED = 10_000;

export interface RouteSinkDeps {
  bus: Bus;
  store: Pick<TwinStore, "get" | "deviceCredentials">;
  domains: Pick<OciDomains, "resolve" | "device">;
  logger: Logger;
  /** OCI_SINK_ACK_WAIT_MS. */
  ackWaitMs: number;
  /** OCI_SINK_MAX_IN_FLIGHT: bus messages worked on, and posts to OCI, at once per route. */
  maxInFlight: number;
  backoff?: BackoffPolicy | undefined;
}

/** The problem with a twin template, or undefined: only {platform} {connection} {device}. */
export function templateProblem(template: string): string | undefined {
  if (template.length > MAX_TEMPLATE_LENGTH) return `longer than ${MAX_TEMPLATE_LENGTH} characters`;
  const names = [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1] ?? "");
  const unknown = names.find((n) => !PLACEHOLDERS.has(n));
  if (unknown !== undefined) return `unknown placeholder {${unknown}}: use {platform}, {connection} and {device}`;
  return undefined;
}

/** The route's options problem, or undefined when they can be used. */
export function routeOptionsProblem(options: Record<string, string>): string | undefined {
  for (const name of Object.keys(options))
    if (!ROUTE_OPTIONS.has(name)) return `unknown option ${name} (routes into OCI read twin and endpoint)`;
  const t = options["twin"];
  if (t) {
    const p = templateProblem(t);
    if (p) return `twin: ${p}`;
  }
  const e = options["endpoint"];
  if (e && (e.length > 256 || !ENDPOINT.test(e)))
    return `endpoint: "${e.slice(0, 80)}" is not a device endpoint path (e.g. iot/v1/telemetry: segments of [A-Za-z0-9._~-], no leading /)`;
  return undefined;
}

/** The twin key a source device goes to: the template's placeholders replaced. */
export function twinKeyFor(template: string, source: Pick<Source, "platform" | "connection" | "device">): string {
  return template.replace(/\{(platform|connection|device)\}/g, (_, name: string) =>
    name === "platform" ? platformToken(source.platform) : name === "connection" ? source.connection : source.device,
  );
}

/** At most `n` at once. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * One route into OCI twins (sink platform OCI_IOT, target = IoT domain or "default"): its durable consumer → each bus
 * message (one source device's events) → the twin its `twin` template names → one post per event to the domain's
 * device host, as the twin's device (Basic external key : device secret), on the route's `endpoint`. The message is
 * acknowledged once every post got a 2xx. OCI throttling or down → redelivered with backoff (Retry-After followed):
 * the data waits on the bus and catches up. A twin Meridian does not know, one without a device secret, in another
 * domain, or a post OCI refuses for good (4xx) → dead-lettered with the reason naming the twin.
 */
export class OciRouteSink {
  readonly counters: RouteSinkCounters = { received: 0, delivered: 0, skipped: 0, failed: 0 };
  readonly consumer: DurableConsumer;
  readonly drainThrough: number | undefined;
  private readonly ac = new AbortController();
  private running: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly optionsProblem: string | undefined;
  private readonly template: string;
  private readonly endpoint: string;
  private readonly posts: Limiter;
  private readonly twins = new Map<string, { twin: StoredTwin | undefined; at: number }>();
  /**
   * The opened device secret of each twin record the cache above holds: opening it (AES-GCM) for every message cost a
   * sink about 7% of its CPU (bench:oci). It goes with the record, so a changed secret is seen as soon as the twin is.
   */
  private readonly credentials = new WeakMap<StoredTwin, DeviceCredentials | undefined>();
  /** Events of a message OCI already accepted, by stream sequence, while the message waits for a redelivery. */
  private readonly accepted = new Map<number, Set<number>>();

  constructor(
    readonly route: Route,
    private readonly deps: RouteSinkDeps,
  ) {
    this.log = deps.logger.child({ route: route.id });
    this.drainThrough = drainThroughOf(route);
    this.optionsProblem = routeOptionsProblem(route.options);
    this.template = route.options["twin"] || DEFAULT_TWIN_TEMPLATE;
    this.endpoint = route.options["endpoint"] || DEFAULT_ENDPOINT;
    this.posts = new Limiter(deps.maxInFlight);
    this.consumer = routeConsumer(deps.bus, route, Platform.OCI_IOT, {
      logger: deps.logger,
      ackWaitMs: deps.ackWaitMs,
      maxAckPending: Math.max(1000, deps.maxInFlight * 4),
      backoff: deps.backoff,
    });
  }

  /** The route's target as written: an IoT domain OCID or "default". */
  get target(): string {
    return this.route.sink?.target ?? "";
  }

  /**
   * Acks batched: made one by one as OCI's answers arrive, each would start a bus write. (In bench:oci the client's
   * writes cost about the same per event either way, ~75 µs: most of them are not the acks' own; see the package README.)
   */
  start(): void {
    this.running ??= this.consumer
      .runParallel((d) => this.settled(d), this.ac.signal, { maxInFlight: this.deps.maxInFlight, batchAcks: true })
      .catch((err) => {
        if (!this.ac.signal.aborted) this.log.error({ err }, "route sink stopped");
      });
  }

  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await this.running;
  }

  /** deliver(), forgetting what OCI accepted of a message once the message is acknowledged or dead-lettered. */
  private async settled(d: Delivery): Promise<void> {
    try {
      await this.deliver(d);
      this.accepted.delete(d.streamSequence);
    } catch (err) {
      if (err instanceof PermanentError) this.accepted.delete(d.streamSequence);
      throw err;
    }
  }

  private async twin(key: string): Promise<StoredTwin | undefined> {
    const now = Date.now();
    const hit = this.twins.get(key);
    if (hit && now - hit.at < TWIN_CACHE_MS) return hit.twin;
    const twin = await this.deps.store.get(key);
    if (this.twins.size >= MAX_TWINS_CACHED) this.twins.clear();
    this.twins.set(key, { twin, at: now });
    return twin;
  }

  /** The twin a source device's events go to, and the device secret to post them with; PermanentError when there is none. */
  private async twinOf(source: Source, domainId: string): Promise<{ key: string; credentials: DeviceCredentials }> {
    const key = twinKeyFor(this.template, source);
    const from = `${platformToken(source.platform)}/${source.connection}/${source.device}`;
    if (!TWIN_KEY.test(key))
      throw new PermanentError(
        `twin "${key.slice(0, 100)}" (template "${this.template}" for ${from}) is not a twin key ([a-z0-9-], at most 63)`,
      );
    const twin = await this.twin(key);
    if (!twin) throw new PermanentError(`twin ${key} (template "${this.template}" for ${from}) is not a twin of oci-twin-manager`);
    if (twin.iotDomainId !== domainId)
      throw new PermanentError(`twin ${key} is in IoT domain ${twin.iotDomainId}, not in the route's ${domainId}`);
    let credentials: DeviceCredentials | undefined;
    try {
      if (this.credentials.has(twin)) credentials = this.credentials.get(twin);
      else {
        credentials = this.deps.store.deviceCredentials(twin);
        this.credentials.set(twin, credentials);
      }
    } catch (err) {
      throw new PermanentError(`twin ${key}: ${(err as Error).message}`);
    }
    if (!credentials) throw new PermanentError(`twin ${key} has no device secret to post as its device (SetTwinDeviceSecret)`);
    return { key, credentials };
  }

  async deliver(d: Delivery): Promise<void> {
    // Published after the route was deleted: not its backlog. Acknowledged unsent, so the drain can end.
    if (this.drainThrough !== undefined && d.streamSequence > this.drainThrough) return;
    const devices = eventsByDevice(d.batch.events);
    if (devices.length === 0) return;
    try {
      if (this.optionsProblem) throw new RetryableError(`route ${this.route.id}: ${this.optionsProblem}`, MISCONFIGURED_RETRY_MS);
      let domainId: string;
      try {
        domainId = this.deps.domains.resolve(this.target, "route.sink.target");
      } catch (err) {
        // Kept on the bus until the setting or the route is fixed.
        throw new RetryableError(`route ${this.route.id}: ${(err as Error).message}`, MISCONFIGURED_RETRY_MS, { cause: err });
      }
      // A message holds one connection's events of one device or several: each device's go to its own twin, all
      // of them checked before any is posted.
      const targets: Array<{ key: string; credentials: DeviceCredentials; indices: number[] }> = [];
      for (const group of devices) targets.push({ ...(await this.twinOf(group.source, domainId)), indices: group.indices });
      let device: DeviceEndpointClient;
      try {
        device = await this.deps.domains.device(domainId);
      } catch (err) {
        // The domain cannot be read (unknown OCID, a refused signature): the route's or the settings' to fix, not the data's.
        if (err instanceof OciError && !isRetryable(err))
          throw new RetryableError(`route ${this.route.id}: IoT domain ${domainId}: ${err.message}`, MISCONFIGURED_RETRY_MS, {
            cause: err,
          });
        throw err;
      }
      await this.postAll(d, targets, device);
    } catch (err) {
      countFailure(this.counters, err);
      throw err;
    }
  }

  /** One post per event, at most maxInFlight at once across the route; every post settles before the message does. */
  private async postAll(
    d: Delivery,
    targets: Array<{ key: string; credentials: DeviceCredentials; indices: number[] }>,
    device: DeviceEndpointClient,
  ): Promise<void> {
    const done = this.accepted.get(d.streamSequence) ?? new Set<number>();
    let skipped = 0;
    const sends: Promise<void>[] = [];
    const twinOfSend: string[] = [];
    for (const { key, credentials, indices } of targets) {
      for (const i of indices) {
        if (done.has(i)) continue;
        const { payload, points } = toDevicePayload(d.batch.events[i]!);
        // Nothing a twin could take (no point with a JSON value): acknowledged without a post.
        if (points === 0) {
          skipped++;
          continue;
        }
        twinOfSend.push(key);
        sends.push(
          this.posts
            .run(() => device.post(credentials, this.endpoint, payload, this.ac.signal))
            .then(() => {
              done.add(i);
            }),
        );
      }
    }
    const results = await Promise.allSettled(sends);
    const failed = results.flatMap((r, n) => (r.status === "rejected" ? [{ reason: r.reason as unknown, key: twinOfSend[n]! }] : []));
    if (failed.length > 0) {
      // What OCI took is not posted again by this instance; a refusal for good decides over a transient failure.
      if (done.size > 0) {
        if (this.accepted.size >= MAX_PARTIAL_REMEMBERED) this.accepted.clear();
        this.accepted.set(d.streamSequence, done);
      }
      const refused = failed.find((f) => f.reason instanceof OciError && !isRetryable(f.reason));
      if (refused) {
        const err = refused.reason as OciError;
        throw new PermanentError(`OCI refused the data of twin ${refused.key} on ${this.endpoint}: ${err.message}`, err.code);
      }
      throw failed[0]!.reason;
    }
    // Counted once OCI has all of it: a redelivered message is not received twice.
    this.counters.received += d.batch.events.length;
    this.counters.delivered += d.batch.events.length - skipped;
    this.counters.skipped += skipped;
  }
}

/**
 * One OciRouteSink per enabled route whose sink is OCI IoT (target = IoT domain), run by the bus's RouteSinks:
 * restarted when the route's source, target or options change. A drained route's sink stays listed until the gateway
 * removes the route.
 */
export class OciRouteSinks extends RouteSinks<OciRouteSink> {
  constructor(deps: RouteSinkDeps) {
    super({
      bus: deps.bus,
      platform: Platform.OCI_IOT,
      logger: deps.logger,
      create: (route) => new OciRouteSink(route, deps),
      // Sorted: the same options in another order are the same route.
      fingerprint: (route) => JSON.stringify(Object.entries(route.options).sort()),
      describe: (sink) => ({ iotDomain: sink.target }),
      listDrained: true,
    });
  }
}

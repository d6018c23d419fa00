import {
  type Bus,
  countFailure,
  type Delivery,
  type DurableConsumer,
  drainThroughOf,
  eventsByDevice,
  PermanentError,
  type RouteSinkCounters,
  routeConsumer,
} from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, RetryableError } from "@meridian/retry";
import type { Logger } from "pino";
import type { Applications } from "./applications.js";
import { DEFAULT_DEVICE_ID_TEMPLATE, deviceIdFor, sourceName, templateProblem } from "./device-ids.js";
import { type DeviceManager, isRefusal } from "./devices.js";
import { ApplicationNotFoundError, DeviceIdCollisionError, RouteOptionError } from "./errors.js";
import { toTelemetryMessage } from "./mapping.js";
import type { ApplicationRecord } from "./store.js";

/** How long a message waits when the route cannot be used as it is (its application missing, a bad option). */
const MISCONFIGURED_RETRY_MS = 30_000;
/** The route options this sink reads; any other is refused (in the route's status), so a typo is not silently ignored. */
export const ROUTE_OPTIONS = new Set(["device_id_template", "component"]);
const COMPONENT = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** Bounds the sink's cache of device ids by source; past it the cache starts over. */
const MAX_DEVICE_IDS_CACHED = 10_000;

export interface RouteSinkDeps {
  bus: Bus;
  devices: DeviceManager;
  applications: Applications;
  logger: Logger;
  ackWaitMs: number;
  /** Bus messages worked on at once (each is one source device's batch). */
  maxParallel: number;
  backoff?: BackoffPolicy;
}

/** The route's options as the sink uses them, or the problem with them. */
export function routeOptionsProblem(options: Record<string, string>): string | undefined {
  for (const name of Object.keys(options))
    if (!ROUTE_OPTIONS.has(name)) return `unknown option ${name} (iotc-bridge reads device_id_template and component)`;
  const t = options["device_id_template"];
  if (t !== undefined && t !== "") {
    const p = templateProblem(t);
    if (p) return `device_id_template: ${p}`;
  }
  const c = options["component"];
  if (c !== undefined && c !== "" && !COMPONENT.test(c))
    return `component: "${c}" is not a DTDL component name ([A-Za-z][A-Za-z0-9_]*, at most 64)`;
  return undefined;
}

/**
 * One route into IoT Central (sink platform IOT_CENTRAL, target = application id): its durable consumer → each bus
 * message (one connection's events, of one source device or several) → for each source device, the IoT Central device
 * the route's template names → one telemetry message per event. The bus message is acknowledged only once IoT Hub
 * acknowledged (PUBACK) every message made from it. Throttled, not connected, timed out → redelivered (after the
 * platform's retry-after when it gave one); the device disabled, its credential or registration refused, a message too
 * large, a device id taken by another source → dead-lettered with the reason, while the route's other devices go on.
 */
export class RouteSink {
  readonly counters: RouteSinkCounters = { received: 0, delivered: 0, skipped: 0, failed: 0 };
  readonly consumer: DurableConsumer;
  private readonly ac = new AbortController();
  private running: Promise<void> | undefined;
  readonly drainThrough: number | undefined;
  private readonly log: Logger;
  /** The route's options are fixed for the sink's life (a changed route gets a new sink): checked once. */
  private readonly optionsProblem: string | undefined;
  /** Device id by template and source name: the same few sources send every message. */
  private readonly deviceIds = new Map<string, string>();

  constructor(
    readonly route: Route,
    private readonly deps: RouteSinkDeps,
  ) {
    this.log = deps.logger.child({ route: route.id });
    this.drainThrough = drainThroughOf(route);
    this.optionsProblem = routeOptionsProblem(route.options);
    this.consumer = routeConsumer(deps.bus, route, Platform.IOT_CENTRAL, {
      logger: deps.logger,
      ackWaitMs: deps.ackWaitMs,
      maxAckPending: Math.max(1000, deps.maxParallel * 4),
      backoff: deps.backoff,
    });
  }

  get applicationId(): string {
    return this.route.sink?.target ?? "";
  }

  /**
   * Up to maxParallel deliveries at once: a device that waits (connecting, throttled) does not hold the others. Acks
   * batched: made one by one as PUBACKs arrive, each would start a bus write.
   */
  start(): void {
    this.running ??= this.consumer
      .runParallel((d) => this.deliver(d), this.ac.signal, { maxInFlight: this.deps.maxParallel, batchAcks: true })
      .catch((err) => {
        if (!this.ac.signal.aborted) this.log.error({ err }, "route sink stopped");
      });
  }

  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await this.running;
  }

  private deviceIdOf(template: string, source: Parameters<typeof deviceIdFor>[1]): string {
    // Each part with its length: no two different sources (or templates) share a key, whatever characters they hold.
    const { platform, connection, device } = source;
    const key = `${template.length}:${template}${platform}:${connection.length}:${connection}${device}`;
    let id = this.deviceIds.get(key);
    if (id === undefined) {
      id = deviceIdFor(template, source);
      if (this.deviceIds.size >= MAX_DEVICE_IDS_CACHED) this.deviceIds.clear();
      this.deviceIds.set(key, id);
    }
    return id;
  }

  async deliver(d: Delivery): Promise<void> {
    // Published after the route was deleted: not its backlog. Acknowledged unsent, so the drain can end.
    if (this.drainThrough !== undefined && d.streamSequence > this.drainThrough) return;
    const devices = eventsByDevice(d.batch.events);
    if (devices.length === 0) return;
    try {
      const problem = this.optionsProblem;
      if (problem) throw new RetryableError(`route ${this.route.id}: ${problem}`, MISCONFIGURED_RETRY_MS);
      let app: ApplicationRecord;
      try {
        app = this.deps.applications.cached(this.applicationId) ?? (await this.deps.applications.get(this.applicationId));
      } catch (err) {
        // Kept on the bus until the application is created (declared later, or a route made first).
        if (err instanceof ApplicationNotFoundError)
          throw new RetryableError(`route ${this.route.id}: ${err.message}`, MISCONFIGURED_RETRY_MS);
        throw err;
      }
      const template = this.route.options["device_id_template"] || app.deviceIdTemplate || DEFAULT_DEVICE_ID_TEMPLATE;
      const component = this.route.options["component"] || undefined;
      const store = this.deps.applications.store;
      let skipped = 0;
      const sends: Promise<void>[] = [];
      // A message holds one connection's events of one device or several: each device's go to its own IoT Central device.
      for (const group of devices) {
        const source = sourceName(group.source);
        const deviceId = this.deviceIdOf(template, group.source);
        if (!store.holds(app.id, deviceId, source)) await store.claim(app.id, deviceId, source);
        for (const event of group.events) {
          const m = toTelemetryMessage(event, component);
          if (!m) {
            skipped += event.points.length;
            continue;
          }
          skipped += m.skipped;
          sends.push(this.deps.devices.sendTelemetry(app.id, deviceId, m.payload, m.options));
        }
      }
      if (sends.length === 1) await sends[0];
      else {
        // Every send settles before the message does: a refusal of one must not leave the others unawaited.
        const results = await Promise.allSettled(sends);
        const refused = results.find((r) => r.status === "rejected" && isRefusal(r.reason));
        const failed = refused ?? results.find((r) => r.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }
      this.counters.received += d.batch.events.length;
      this.counters.delivered += sends.length;
      this.counters.skipped += skipped;
    } catch (err) {
      countFailure(this.counters, err);
      if (err instanceof DeviceIdCollisionError) throw new PermanentError(err.message);
      // The template checked out, so this source's own name leaves no IoT Central id: no retry can change that.
      if (err instanceof RouteOptionError) throw new PermanentError(err.message);
      if (isRefusal(err)) throw new PermanentError(`IoT Central refused the device's telemetry: ${(err as Error).message}`);
      throw err;
    }
  }
}

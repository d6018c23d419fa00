/** The mesh's shared KV buckets (routes, service status), written and read by every service, and the status reporter. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { type Route, RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { type ServiceStatus, ServiceStatusSchema, StatusWarningSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { Bus } from "./bus.js";
import { KvBucket, protoCodec } from "./kv.js";

/** KV bucket names: the shared state of the mesh. */
export const BUCKETS = {
  routes: "routes",
  serviceStatus: "service_status",
} as const;

/** How often services report, and after how long without a report an instance is gone. */
export const STATUS_REPORT_INTERVAL_MS = 5_000;
export const STATUS_TTL_MS = 60_000;

/** Routes, keyed by route id. Written by the gateway, watched by sink services. */
export function routeBucket(bus: Bus): KvBucket<Route> {
  return new KvBucket(bus, BUCKETS.routes, protoCodec(RouteSchema), { history: 5 });
}

/** Each service instance's latest status, keyed `<service>.<instance>`; entries expire. */
export function serviceStatusBucket(bus: Bus): KvBucket<ServiceStatus> {
  return new KvBucket(bus, BUCKETS.serviceStatus, protoCodec(ServiceStatusSchema), { ttlMs: STATUS_TTL_MS });
}

export interface StatusReporterOptions {
  service: string;
  instance: string;
  version: string;
  /** Current health and pipeline counters, asked for at every report; the bus adds its own warnings. */
  collect: () => Promise<Partial<Omit<ServiceStatus, "$typeName" | "service" | "instance" | "version" | "reportTime">>>;
  signal: AbortSignal;
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Writes this instance's status to the service_status bucket every interval until the signal
 * aborts, so the gateway can show every service without calling each one.
 */
export function startStatusReporter(bus: Bus, options: StatusReporterOptions): void {
  const bucket = serviceStatusBucket(bus);
  const key = `${options.service}.${options.instance}`;
  const report = async () => {
    if (!bus.connected) return;
    try {
      const collected = await options.collect();
      // The bus's own warnings (old backlogs, discarded messages) join whatever the service reports.
      const warnings = bus
        .warnings()
        .map((w) =>
          create(StatusWarningSchema, { kind: w.kind, subject: w.subject, message: w.message, since: timestampFromDate(w.since) }),
        );
      await bucket.put(
        key,
        create(ServiceStatusSchema, {
          ...collected,
          warnings: [...(collected.warnings ?? []), ...warnings],
          service: options.service,
          instance: options.instance,
          version: options.version,
          reportTime: timestampNow(),
        }),
      );
    } catch (err) {
      options.onError?.(err);
    }
  };
  const timer = setInterval(report, options.intervalMs ?? STATUS_REPORT_INTERVAL_MS);
  timer.unref();
  void report();
  bus.onStatus((connected) => {
    if (connected) void report();
  });
  options.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

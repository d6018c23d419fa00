import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
} from "@meridian/contracts/grpc/health/v1/health_pb";

export type ServingStatus = "SERVING" | "NOT_SERVING";

/** The overall status of the process is kept under this key, as gRPC health checking defines. */
export const OVERALL = "";

/**
 * The serving status of the process ("" key) and of each service it offers.
 *
 * A service that was registered (by name) but never `set` mirrors the overall status, so a service
 * only needs `set` when it has a health of its own (say, its platform connection is down).
 * After `shutdown()` every key is NOT_SERVING and further `set` calls are ignored.
 */
export interface HealthRegistry {
  set(service: string, status: ServingStatus): void;
  /** The effective status, or undefined when the service is not known. */
  get(service: string): ServingStatus | undefined;
  /** Every known key with its effective status, "" included. */
  list(): Record<string, ServingStatus>;
  /** Calls the listener whenever an effective status may have changed. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
  /** Makes a name known; it mirrors the overall status until set. */
  register(service: string): void;
  /** Everything NOT_SERVING, for good: the first step of a graceful shutdown. */
  shutdown(): void;
  readonly isShutdown: boolean;
}

export function createHealthRegistry(initial: ServingStatus = "SERVING"): HealthRegistry {
  const explicit = new Map<string, ServingStatus>([[OVERALL, initial]]);
  const mirrored = new Set<string>();
  const listeners = new Set<() => void>();
  let down = false;
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  const get = (service: string): ServingStatus | undefined => {
    if (down) return explicit.has(service) || mirrored.has(service) ? "NOT_SERVING" : undefined;
    const own = explicit.get(service);
    if (own !== undefined) return own;
    return mirrored.has(service) ? explicit.get(OVERALL) : undefined;
  };
  return {
    set(service, status) {
      if (down) return;
      if (status !== "SERVING" && status !== "NOT_SERVING") throw new TypeError(`invalid serving status ${String(status)}`);
      explicit.set(service, status);
      notify();
    },
    get,
    list() {
      const out: Record<string, ServingStatus> = {};
      for (const key of new Set([...explicit.keys(), ...mirrored])) out[key] = get(key)!;
      return out;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    register(service) {
      if (mirrored.has(service)) return;
      mirrored.add(service);
      notify();
    },
    shutdown() {
      if (down) return;
      down = true;
      notify();
    },
    get isShutdown() {
      return down;
    },
  };
}

const toProto = (s: ServingStatus | undefined): HealthCheckResponse_ServingStatus =>
  s === undefined
    ? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN
    : s === "SERVING"
      ? HealthCheckResponse_ServingStatus.SERVING
      : HealthCheckResponse_ServingStatus.NOT_SERVING;

/** Registers grpc.health.v1.Health (Check, Watch, List) backed by the registry. */
export function registerHealthService(router: ConnectRouter, health: HealthRegistry): void {
  router.service(Health, {
    check(req: HealthCheckRequest): HealthCheckResponse {
      const status = health.get(req.service);
      if (status === undefined) throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      return create(HealthCheckResponseSchema, { status: toProto(status) });
    },
    list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const [key, status] of Object.entries(health.list())) {
        statuses[key] = create(HealthCheckResponseSchema, { status: toProto(status) });
      }
      return create(HealthListResponseSchema, { statuses });
    },
    async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
      // Sends the current status, then every change, until the client goes away or the server shuts
      // down (ctx.signal is linked to the server's shutdownSignal).
      let wake: (() => void) | undefined;
      const poke = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const unsubscribe = health.subscribe(poke);
      ctx.signal.addEventListener("abort", poke);
      try {
        let last: HealthCheckResponse_ServingStatus | undefined;
        while (!ctx.signal.aborted) {
          const now = toProto(health.get(req.service));
          if (now !== last) {
            last = now;
            yield create(HealthCheckResponseSchema, { status: now });
            continue; // re-check: a change may have come while the message was being written
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        unsubscribe();
        ctx.signal.removeEventListener("abort", poke);
      }
    },
  });
}

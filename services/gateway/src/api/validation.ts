import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { SubscribeRequest } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type FieldViolation, invalidArgument, requireFields } from "@meridian/service-kit";

/** Upper bound of one Publish: one request must fit comfortably in one bus round. */
export const MAX_EVENTS_PER_PUBLISH = 10_000;
const MAX_ID_LENGTH = 256;
/** Route ids become consumer names and KV keys: keep them to what both accept. */
export const ROUTE_ID = /^[a-z][a-z0-9-]{0,62}$/;
/** Platforms a route can deliver to (a service exists that writes there). */
export const SINK_PLATFORMS = new Set([Platform.OMF, Platform.IOT_CENTRAL, Platform.OCI_IOT]);

export function eventViolations(e: TelemetryEvent, path: string): FieldViolation[] {
  const out = requireFields(TelemetryEventSchema, e, path);
  if (e.id.length > MAX_ID_LENGTH) out.push({ path: `${path}.id`, reason: `longer than ${MAX_ID_LENGTH} characters` });
  const seen = new Set<string>();
  e.points.forEach((p, j) => {
    const at = `${path}.points[${j}]`;
    if (p.value.case === undefined)
      out.push({ path: `${at}.value`, reason: "required: one of double_value, int_value, bool_value, string_value" });
    if (p.value.case === "doubleValue" && !Number.isFinite(p.value.value))
      out.push({ path: `${at}.double_value`, reason: "must be finite (send quality BAD for a missing value)" });
    if (p.name && seen.has(p.name)) out.push({ path: `${at}.name`, reason: `duplicate point name "${p.name}" in one event` });
    seen.add(p.name);
  });
  const t = e.observedTime;
  if (t && (t.nanos < 0 || t.nanos > 999_999_999)) out.push({ path: `${path}.observed_time.nanos`, reason: "out of range" });
  return out;
}

/** Every event is checked before any is published: a bad request writes nothing. */
export function validatePublish(events: TelemetryEvent[]): void {
  const violations: FieldViolation[] = [];
  if (events.length === 0) violations.push({ path: "events", reason: "required: at least one event" });
  if (events.length > MAX_EVENTS_PER_PUBLISH)
    violations.push({ path: "events", reason: `at most ${MAX_EVENTS_PER_PUBLISH} events per call` });
  const ids = new Set<string>();
  events.forEach((e, i) => {
    violations.push(...eventViolations(e, `events[${i}]`));
    // The API speaks for API publishers only: events of a platform come from that platform's service (and the
    // gateway's NATS user may publish telemetry.v1.api.> only, so this is also what the bus would refuse).
    if (e.source?.platform && e.source.platform !== Platform.API) {
      violations.push({
        path: `events[${i}].source.platform`,
        reason: `must be PLATFORM_API: ${Platform[e.source.platform]} events come from that platform's own service`,
      });
    }
    if (e.id && ids.has(e.id)) violations.push({ path: `events[${i}].id`, reason: `duplicate event id "${e.id}" in one request` });
    ids.add(e.id);
  });
  if (violations.length > 0) invalidArgument(violations.slice(0, 20));
}

export function validateSubscribe(req: SubscribeRequest): void {
  const t = req.startTime;
  if (t && (t.nanos < 0 || t.nanos > 999_999_999)) invalidArgument([{ path: "start_time.nanos", reason: "out of range" }]);
}

export function validateRoute(route: Route | undefined): asserts route is Route {
  if (!route) return invalidArgument([{ path: "route", reason: "required" }]);
  const violations = requireFields(RouteSchema, route, "route");
  if (!ROUTE_ID.test(route.id))
    violations.push({ path: "route.id", reason: "must be 1-63 lower-case letters, digits or '-', starting with a letter" });
  if (route.sink?.platform && !SINK_PLATFORMS.has(route.sink.platform))
    violations.push({ path: "route.sink.platform", reason: `${Platform[route.sink.platform]} has no sink service` });
  if (violations.length > 0) invalidArgument(violations);
}

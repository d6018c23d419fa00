import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  type DeadLetterFilter,
  type GetDeadLetterRequest,
  type ListDeadLettersRequest,
  type PurgeDeadLettersRequest,
  type ReplayDeadLettersRequest,
  ReplayState,
} from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type Point, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { SubscribeRequest } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type FieldViolation, invalidArgument, RequestViolations, requireFields } from "@meridian/service-kit";

/** Upper bound of one Publish: one request must fit comfortably in one bus round. */
export const MAX_EVENTS_PER_PUBLISH = 10_000;
const MAX_ID_LENGTH = 256;
/** Route ids become consumer names and KV keys: keep them to what both accept. */
export const ROUTE_ID = /^[a-z][a-z0-9-]{0,62}$/;
/** Platforms a route can deliver to (a service exists that writes there). */
export const SINK_PLATFORMS = new Set([Platform.OMF, Platform.IOT_CENTRAL, Platform.OCI_IOT]);

/**
 * The REQUIRED fields of TelemetryEvent (what requireFields would find, in its order: declaration order, then each
 * point's name), then the event's own rules. Checked field by field, not by the reflective walk: this runs for every
 * published event. validation.test.ts holds it to requireFields on random events, and fails when telemetry.proto marks
 * a field REQUIRED that this does not check. Paths are built only for a violation.
 */
function addEventViolations(out: FieldViolation[], e: TelemetryEvent, i: number): void {
  if (e.id === "") out.push({ path: `events[${i}].id`, reason: "required" });
  const s = e.source;
  if (s === undefined) out.push({ path: `events[${i}].source`, reason: "required" });
  else {
    if (s.platform === 0) out.push({ path: `events[${i}].source.platform`, reason: "required" });
    if (s.connection === "") out.push({ path: `events[${i}].source.connection`, reason: "required" });
    if (s.device === "") out.push({ path: `events[${i}].source.device`, reason: "required" });
  }
  const t = e.observedTime;
  if (t === undefined) out.push({ path: `events[${i}].observed_time`, reason: "required" });
  const points = e.points;
  for (let j = 0; j < points.length; j++)
    if (points[j]!.name === "") out.push({ path: `events[${i}].points[${j}].name`, reason: "required" });
  if (e.id.length > MAX_ID_LENGTH) out.push({ path: `events[${i}].id`, reason: `longer than ${MAX_ID_LENGTH} characters` });
  // A few points are compared pairwise: a Set per event would cost more than it saves.
  const seen = points.length > 8 ? new Set<string>() : undefined;
  for (let j = 0; j < points.length; j++) {
    const p = points[j]!;
    const v = p.value;
    if (v.case === undefined)
      out.push({ path: `events[${i}].points[${j}].value`, reason: "required: one of double_value, int_value, bool_value, string_value" });
    else if (v.case === "doubleValue" && !Number.isFinite(v.value))
      out.push({ path: `events[${i}].points[${j}].double_value`, reason: "must be finite (send quality BAD for a missing value)" });
    const name = p.name;
    if (name !== "" && (seen ? seen.has(name) : nameBefore(points, j, name)))
      out.push({ path: `events[${i}].points[${j}].name`, reason: `duplicate point name "${name}" in one event` });
    seen?.add(name);
  }
  if (t !== undefined && (t.nanos < 0 || t.nanos > 999_999_999))
    out.push({ path: `events[${i}].observed_time.nanos`, reason: "out of range" });
}

function nameBefore(points: readonly Point[], end: number, name: string): boolean {
  for (let k = 0; k < end; k++) if (points[k]!.name === name) return true;
  return false;
}

/** Every event is checked before any is published: a bad request writes nothing. */
export function validatePublish(events: TelemetryEvent[]): void {
  const violations: FieldViolation[] = [];
  if (events.length === 0) violations.push({ path: "events", reason: "required: at least one event" });
  if (events.length > MAX_EVENTS_PER_PUBLISH)
    violations.push({ path: "events", reason: `at most ${MAX_EVENTS_PER_PUBLISH} events per call` });
  const ids = new Set<string>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    addEventViolations(violations, e, i);
    // The API speaks for API publishers only: events of a platform come from that platform's service (and the
    // gateway's NATS user may publish telemetry.v1.api.> only, so this is also what the bus would refuse).
    const platform = e.source?.platform;
    if (platform && platform !== Platform.API) {
      violations.push({
        path: `events[${i}].source.platform`,
        reason: `must be PLATFORM_API: ${Platform[platform]} events come from that platform's own service`,
      });
    }
    if (e.id && ids.has(e.id)) violations.push({ path: `events[${i}].id`, reason: `duplicate event id "${e.id}" in one request` });
    ids.add(e.id);
  }
  if (violations.length > 0) invalidArgument(violations.slice(0, 20));
}

export function validateSubscribe(req: SubscribeRequest): void {
  const t = req.startTime;
  if (t && (t.nanos < 0 || t.nanos > 999_999_999)) invalidArgument([{ path: "start_time.nanos", reason: "out of range" }]);
}

/** A route's display_name, source fields and sink target: names, not documents. */
export const MAX_ROUTE_NAME_CHARS = 256;
/** Sink options a route holds at most; each key a name, each value up to a mapping document (omf-sender's omfMapping). */
export const MAX_ROUTE_OPTIONS = 32;
export const ROUTE_OPTION_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
export const MAX_ROUTE_OPTION_VALUE_BYTES = 64 * 1024;

/** CreateRoute's and UpdateRoute's checks of the route they are given, field paths as in the proto. */
export function validateRoute(route: Route | undefined): asserts route is Route {
  if (!route) return invalidArgument([{ path: "route", reason: "required" }]);
  const violations = requireFields(RouteSchema, route, "route");
  if (!ROUTE_ID.test(route.id))
    violations.push({ path: "route.id", reason: "must be 1-63 lower-case letters, digits or '-', starting with a letter" });
  if (route.sink?.platform && !SINK_PLATFORMS.has(route.sink.platform))
    violations.push({ path: "route.sink.platform", reason: `${Platform[route.sink.platform]} has no sink service` });
  const name = (path: string, value: string | undefined) => {
    if (value && value.length > MAX_ROUTE_NAME_CHARS) violations.push({ path, reason: `longer than ${MAX_ROUTE_NAME_CHARS} characters` });
  };
  name("route.display_name", route.displayName);
  name("route.source.connection", route.source?.connection);
  name("route.source.device", route.source?.device);
  name("route.sink.target", route.sink?.target);
  const platform = route.source?.platform;
  if (platform !== undefined && !(platform in Platform))
    violations.push({ path: "route.source.platform", reason: `unknown platform ${platform}` });
  const options = Object.entries(route.options);
  if (options.length > MAX_ROUTE_OPTIONS)
    violations.push({ path: "route.options", reason: `${options.length} options; at most ${MAX_ROUTE_OPTIONS}` });
  else
    for (const [key, value] of options) {
      // The path stays route.options (a key may hold any character); the reason names the key.
      if (!ROUTE_OPTION_KEY.test(key))
        violations.push({
          path: "route.options",
          reason: `key ${JSON.stringify(key.slice(0, 80))}: a key is 1-64 letters, digits, '_', '.' or '-', starting with a letter`,
        });
      else if (Buffer.byteLength(value) > MAX_ROUTE_OPTION_VALUE_BYTES)
        violations.push({ path: "route.options", reason: `"${key}": longer than ${MAX_ROUTE_OPTION_VALUE_BYTES} bytes` });
    }
  if (violations.length > 0) invalidArgument(violations.slice(0, 20));
}

/** Dead letters one Replay or Purge call names at most. */
export const MAX_DEAD_LETTER_SEQUENCES = 500;
/** Dead letters one ListDeadLetters page holds at most, and when page_size is unset. */
export const MAX_DEAD_LETTER_PAGE = 500;
export const DEFAULT_DEAD_LETTER_PAGE = 100;
/** filter.consumer and filter.reason_contains. */
export const MAX_DEAD_LETTER_FILTER_CHARS = 256;

/** The dead-letter requests' checks; field paths as in the proto. */
export class DeadLetterViolations extends RequestViolations {
  /** 1 to 500 distinct sequences (or none, when `required` is false), each one a sequence the stream can hold. */
  sequences(path: string, sequences: readonly bigint[], required: boolean): number[] {
    if (sequences.length === 0) {
      if (required) this.add(path, `required: 1 to ${MAX_DEAD_LETTER_SEQUENCES} dead-letter sequences`);
      return [];
    }
    if (sequences.length > MAX_DEAD_LETTER_SEQUENCES) {
      this.add(path, `${sequences.length} sequences; at most ${MAX_DEAD_LETTER_SEQUENCES} per call`);
      return [];
    }
    const seen = new Map<bigint, number>();
    sequences.forEach((s, i) => {
      if (s < 1n || s > BigInt(Number.MAX_SAFE_INTEGER)) this.add(`${path}[${i}]`, "must be a dead letter's sequence (1 or more)");
      const first = seen.get(s);
      if (first !== undefined) this.add(`${path}[${i}]`, `duplicate of ${path}[${first}]`);
      else seen.set(s, i);
    });
    return sequences.map(Number);
  }
  routeId(path: string, id: string): void {
    if (id !== "" && !ROUTE_ID.test(id)) this.add(path, "must be 1-63 lower-case letters, digits or '-', starting with a letter");
  }
  filter(path: string, f: DeadLetterFilter | undefined): void {
    if (!f) return;
    if (f.consumer.length > MAX_DEAD_LETTER_FILTER_CHARS)
      this.add(`${path}.consumer`, `longer than ${MAX_DEAD_LETTER_FILTER_CHARS} characters`);
    if (f.reasonContains.length > MAX_DEAD_LETTER_FILTER_CHARS)
      this.add(`${path}.reason_contains`, `longer than ${MAX_DEAD_LETTER_FILTER_CHARS} characters`);
    this.routeId(`${path}.route_id`, f.routeId);
    this.time(`${path}.since`, f.since);
    this.time(`${path}.until`, f.until);
    if (f.since && f.until && timestampDate(f.until) <= timestampDate(f.since)) this.add(`${path}.until`, "must be after since");
    if (!(f.state in ReplayState)) this.add(`${path}.state`, `unknown replay state ${f.state}`);
  }
}

/** The checked request; `from` is the page token's sequence. */
export function validateListDeadLetters(req: ListDeadLettersRequest): { pageSize: number; from: number | undefined } {
  const v = new DeadLetterViolations();
  v.filter("filter", req.filter);
  if (req.pageSize > MAX_DEAD_LETTER_PAGE) v.add("page_size", `at most ${MAX_DEAD_LETTER_PAGE}`);
  let from: number | undefined;
  if (req.pageToken !== "") {
    from = /^[1-9][0-9]{0,15}$/.test(req.pageToken) ? Number(req.pageToken) : undefined;
    if (from === undefined || !Number.isSafeInteger(from)) v.add("page_token", "not a token a previous page gave (next_page_token)");
  }
  v.throwIfAny();
  return { pageSize: req.pageSize || DEFAULT_DEAD_LETTER_PAGE, from };
}

export function validateGetDeadLetter(req: GetDeadLetterRequest): number {
  const v = new DeadLetterViolations();
  if (req.sequence === 0n) v.add("sequence", "required");
  else if (req.sequence > BigInt(Number.MAX_SAFE_INTEGER)) v.add("sequence", "beyond any sequence the stream can hold");
  v.throwIfAny();
  return Number(req.sequence);
}

export function validateReplayDeadLetters(req: ReplayDeadLettersRequest): number[] {
  const v = new DeadLetterViolations();
  const sequences = v.sequences("sequences", req.sequences, true);
  v.routeId("route_id", req.routeId);
  v.throwIfAny();
  return sequences;
}

/** An empty filter (nothing set) matches every dead letter. */
export function isEmptyDeadLetterFilter(f: DeadLetterFilter | undefined): boolean {
  return !f || (!f.consumer && !f.routeId && !f.reasonContains && !f.since && !f.until && f.state === ReplayState.UNSPECIFIED);
}

export function validatePurgeDeadLetters(req: PurgeDeadLettersRequest): number[] {
  const v = new DeadLetterViolations();
  const sequences = v.sequences("sequences", req.sequences, false);
  v.filter("filter", req.filter);
  const byFilter = !isEmptyDeadLetterFilter(req.filter) || req.all;
  if (sequences.length > 0 && byFilter) v.add("sequences", "either sequences or a filter (or all), not both");
  else if (req.sequences.length === 0 && !byFilter)
    v.add("filter", "required: sequences, a filter with at least one field set, or all: true to purge every dead letter");
  else if (req.all && !isEmptyDeadLetterFilter(req.filter))
    v.add("all", "all purges every dead letter: leave the filter empty, or unset all to purge what the filter matches");
  v.throwIfAny();
  return sequences;
}

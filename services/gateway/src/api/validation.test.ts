import { create, type DescMessage, getOption } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldBehavior, field_behavior } from "@meridian/contracts/google/api/field_behavior_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type FieldViolation, invalidArgument, requireFields } from "@meridian/service-kit";
import { type SeededRandom, seededRandom } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { MAX_EVENTS_PER_PUBLISH, validatePublish } from "./validation.js";

/**
 * What validatePublish checked before it checked field by field: the reflective walk of the REQUIRED annotations, then
 * the event's own rules. The field-by-field checks must say exactly this, message for message.
 */
function reflectiveValidatePublish(events: TelemetryEvent[]): void {
  const violations: FieldViolation[] = [];
  if (events.length === 0) violations.push({ path: "events", reason: "required: at least one event" });
  if (events.length > MAX_EVENTS_PER_PUBLISH)
    violations.push({ path: "events", reason: `at most ${MAX_EVENTS_PER_PUBLISH} events per call` });
  const ids = new Set<string>();
  events.forEach((e, i) => {
    const path = `events[${i}]`;
    violations.push(...requireFields(TelemetryEventSchema, e, path));
    if (e.id.length > 256) violations.push({ path: `${path}.id`, reason: "longer than 256 characters" });
    const seen = new Set<string>();
    e.points.forEach((p, j) => {
      const at = `${path}.points[${j}]`;
      if (p.value.case === undefined)
        violations.push({ path: `${at}.value`, reason: "required: one of double_value, int_value, bool_value, string_value" });
      if (p.value.case === "doubleValue" && !Number.isFinite(p.value.value))
        violations.push({ path: `${at}.double_value`, reason: "must be finite (send quality BAD for a missing value)" });
      if (p.name && seen.has(p.name)) violations.push({ path: `${at}.name`, reason: `duplicate point name "${p.name}" in one event` });
      seen.add(p.name);
    });
    const t = e.observedTime;
    if (t && (t.nanos < 0 || t.nanos > 999_999_999)) violations.push({ path: `${path}.observed_time.nanos`, reason: "out of range" });
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

/** The error a validation throws, or "ok". */
function outcome(validate: (events: TelemetryEvent[]) => void, events: TelemetryEvent[]): string {
  try {
    validate(events);
    return "ok";
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    return `${Code[err.code]}: ${err.message}`;
  }
}

/** An event that is mostly fine, with each part now and then missing or wrong. */
function randomEvent(r: SeededRandom, ids: string[]): TelemetryEvent {
  const rarely = () => r.int(12) === 0;
  const name = () => (rarely() ? "" : r.pick(["a", "b", "c", "temp", "é", "x.y"]));
  const points = Array.from({ length: r.pick([0, 1, 2, 4, 8, 9, 12]) }, () => ({
    name: name(),
    value: rarely()
      ? { case: undefined }
      : r.pick([
          { case: "doubleValue" as const, value: r.pick([1.5, 0, -2, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) },
          { case: "intValue" as const, value: 7n },
          { case: "boolValue" as const, value: r.bool() },
          { case: "stringValue" as const, value: "" },
        ]),
  }));
  const id = rarely() ? "" : rarely() ? "i".repeat(r.pick([256, 257])) : r.pick(ids);
  return create(TelemetryEventSchema, {
    id,
    ...(rarely()
      ? {}
      : {
          source: {
            platform: rarely() ? r.pick([Platform.UNSPECIFIED, Platform.IDIGI, Platform.OMF, 99 as Platform]) : Platform.API,
            connection: rarely() ? "" : "conn",
            device: rarely() ? "" : r.pick(["d1", "d2"]),
          },
        }),
    ...(rarely() ? {} : { observedTime: { seconds: 1_700_000_000n, nanos: rarely() ? r.pick([-1, 1_000_000_000]) : r.int(1e9) } }),
    ...(r.bool() ? { receivedTime: { seconds: 1n, nanos: -5 } } : {}),
    points,
    ...(r.bool() ? { attributes: { site: "" } } : {}),
    ...(rarely() ? { raw: {} } : {}),
  });
}

describe("validatePublish", () => {
  it("says what the reflective REQUIRED walk and the event rules said, for random requests", () => {
    const seed = Date.now();
    const r = seededRandom(seed);
    let bad = 0;
    for (let n = 0; n < 3000; n++) {
      const ids = Array.from({ length: 1 + r.int(40) }, (_, i) => `ev-${i}`);
      const events = Array.from({ length: r.pick([0, 1, 2, 5, 30]) }, () => randomEvent(r, ids));
      const want = outcome(reflectiveValidatePublish, events);
      expect(outcome(validatePublish, events), `seed ${seed}, request ${n}`).toBe(want);
      if (want !== "ok") bad++;
    }
    // Both kinds were exercised. About 96 % of these requests are bad (one wrong part in any of up to 30 events makes
    // a request bad): 110–130 of 3,000 are fine, with a spread of about 10 between seeds, so 25 is far outside it.
    expect(bad).toBeGreaterThan(300);
    expect(3000 - bad).toBeGreaterThan(25);
  });

  it("checks every field telemetry.proto marks REQUIRED in an event (a new one must be added to the checks)", () => {
    const required: string[] = [];
    const walk = (desc: DescMessage, prefix: string) => {
      for (const f of desc.fields) {
        const path = prefix + f.name;
        if (getOption(f, field_behavior).includes(FieldBehavior.REQUIRED)) required.push(path);
        const sub = f.fieldKind === "message" ? f.message : f.fieldKind === "list" && f.listKind === "message" ? f.message : undefined;
        if (sub && !sub.typeName.startsWith("google.protobuf.")) walk(sub, `${path}.`);
        if (f.fieldKind === "map" && f.mapKind === "message") walk(f.message, `${path}.`);
      }
    };
    walk(TelemetryEventSchema, "");
    expect(required).toEqual(["id", "source", "source.platform", "source.connection", "source.device", "observed_time", "points.name"]);
  });

  it("names each missing field of an empty event, and a point without a name", () => {
    const e = create(TelemetryEventSchema, { points: [{ value: { case: "boolValue", value: true } }] });
    expect(outcome(validatePublish, [e])).toBe(
      "InvalidArgument: [invalid_argument] invalid request: events[0].id: required; events[0].source: required; " +
        "events[0].observed_time: required; events[0].points[0].name: required",
    );
  });

  it("finds a duplicate point name among many points, once for each repeat", () => {
    const e = create(TelemetryEventSchema, {
      id: "e",
      source: { platform: Platform.API, connection: "c", device: "d" },
      observedTime: { seconds: 1n },
      points: Array.from({ length: 20 }, (_, j) => ({
        name: j % 10 === 3 ? "dup" : `p${j}`,
        value: { case: "intValue" as const, value: 1n },
      })),
    });
    expect(outcome(validatePublish, [e])).toBe(
      'InvalidArgument: [invalid_argument] invalid request: events[0].points[13].name: duplicate point name "dup" in one event',
    );
  });
});

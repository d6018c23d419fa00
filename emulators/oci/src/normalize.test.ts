// biome-ignore-all lint/suspicious/noTemplateCurlyInString: jq expressions are written ${ ... } in plain strings
import { describe, expect, it } from "vitest";
import { defaultAdapter, validateDtdl } from "./dtdl.js";
import { normalize } from "./normalize.js";
import { parseIsoMicros } from "./ords-filter.js";
import { m5CustomModel, m5DefaultModel, m5Envelope, m5Payload, m5Routes } from "./testdata/m5.js";

const received = parseIsoMicros("2025-09-18T18:32:28.847244Z");
const custom = validateDtdl(m5CustomModel).contents;
const dflt = validateDtdl(m5DefaultModel).contents;
const m5 = (payload: unknown, endpoint = "iot/v1/telemetry") =>
  normalize({ payload, endpoint, timeReceivedMicros: received, inboundEnvelope: m5Envelope, inboundRoutes: m5Routes, contents: custom });
const EMPTY = { ok: false, reasonCode: 500, reasonMessage: "Normalization output is empty" };

describe("normalize with the M5 custom adapter", () => {
  it("maps the five fields of a payload on iot/v1/telemetry (route 1), time observed = time received without $.time", () => {
    expect(m5(m5Payload)).toEqual({ ok: true, timeObservedMicros: received, values: m5Payload });
  });

  it("sends a payload on iot/pvhd to route 2, the whole payload into system", () => {
    const payload = { uptime: 12, heap: 40_000 };
    expect(m5(payload, "iot/pvhd")).toEqual({ ok: true, timeObservedMicros: received, values: { system: payload } });
  });

  it("reads timeObserved as epoch microseconds or as an ISO time with an offset", () => {
    expect(m5({ ...m5Payload, time: 1758220348847244 })).toMatchObject({ ok: true, timeObservedMicros: 1758220348847244n });
    expect(m5({ ...m5Payload, time: "2025-09-18T20:32:28.847244+02:00" })).toMatchObject({
      ok: true,
      timeObservedMicros: 1758220348847244n,
    });
  });

  it("rejects a timeObserved that is neither, with reason 400 (our choice: the notes mark reasons other than 500 unverified)", () => {
    expect(m5({ ...m5Payload, time: "yesterday" })).toEqual({
      ok: false,
      reasonCode: 400,
      reasonMessage: 'timeObserved: expected epoch microseconds or an ISO-8601 time, got "yesterday"',
    });
  });

  it("rejects a string for a double with reason 400 (our choice: the notes mark reasons other than 500 unverified)", () => {
    expect(m5({ ...m5Payload, humidity: "56.1" })).toEqual({
      ok: false,
      reasonCode: 400,
      reasonMessage: "humidity: expected double, got string",
    });
    expect(m5({ ...m5Payload, count: 1.5 })).toEqual({ ok: false, reasonCode: 400, reasonMessage: "count: expected integer, got number" });
    expect(m5([1, 2], "iot/pvhd")).toEqual({ ok: false, reasonCode: 400, reasonMessage: "system: expected Object, got array" });
  });

  it("leaves out fields the payload lacks", () => {
    expect(m5({ humidity: 50 })).toMatchObject({ ok: true, values: { humidity: 50 } });
  });

  it("rejects with 500 'Normalization output is empty' when route 1 maps nothing", () => {
    expect(m5({ unrelated: 1 })).toEqual(EMPTY);
  });
});

describe("normalize, routes and mappings", () => {
  const run = (inboundRoutes: unknown[], payload: unknown, inboundEnvelope: unknown = { referenceEndpoint: "/" }) =>
    normalize({ payload, endpoint: "a/b", timeReceivedMicros: 7n, inboundEnvelope, inboundRoutes, contents: custom });

  it("takes the first route whose condition holds, not a later one", () => {
    const routes = [
      { condition: '${.kind == "sys"}', payloadMapping: { "$.system": "$.body" } },
      { condition: "*", payloadMapping: { "$.count": "$.n" } },
      { condition: "*", payloadMapping: { "$.humidity": "$.n" } },
    ];
    expect(run(routes, { kind: "sys", body: { a: 1 }, n: 3 })).toMatchObject({ values: { system: { a: 1 } } });
    expect(run(routes, { kind: "env", n: 3 })).toMatchObject({ values: { count: 3 } });
  });

  it("rejects with 500 when no route matches", () => {
    expect(run([{ condition: "${false}", payloadMapping: { "$.count": "$.n" } }], { n: 1 })).toEqual(EMPTY);
    expect(run([], { n: 1 })).toEqual(EMPTY);
  });

  it("sets nested target paths under the content, and leaves out jq nulls", () => {
    const routes = [
      { condition: "*", payloadMapping: { "$.system.cpu": "$.c", "$.system.mem.free": "${.m}", "$.system.gone": "${.none}" } },
    ];
    expect(run(routes, { c: 0.5, m: 10 })).toMatchObject({ values: { system: { cpu: 0.5, mem: { free: 10 } } } });
  });

  it("lets contentRoot replace the payload the routes see, while timeObserved reads the whole message", () => {
    const envelope = { referenceEndpoint: "/", envelopeMapping: { timeObserved: "$.ts", contentRoot: "$.data" } };
    const routes = [{ condition: "${.count > 1}", payloadMapping: { "$.count": "$.count" } }];
    expect(run(routes, { ts: 99, data: { count: 2 } }, envelope)).toEqual({ ok: true, timeObservedMicros: 99n, values: { count: 2 } });
  });

  it("converts with jq in a mapping: fromdateformat into an integer content", () => {
    const routes = [{ condition: "*", payloadMapping: { "$.count": '${.t | fromdateformat("yyyy/MM/dd HH:mm:ss.SSSSSS")}' } }];
    expect(run(routes, { t: "2025/09/18 18:32:28.847244" })).toMatchObject({ values: { count: 1758220348847244 } });
  });

  it("rejects with 400 naming the expression when a mapping fails at run time", () => {
    const r = run([{ condition: "*", payloadMapping: { "$.count": "${.a.b}" } }], { a: 5 });
    expect(r).toMatchObject({ ok: false, reasonCode: 400 });
    expect(r.ok === false && r.reasonMessage).toContain('"${.a.b}": cannot index number');
  });
});

describe("normalize with the default adapter", () => {
  it("uses the generated envelope and routes when the adapter has none: $.time as time observed, identity mapping", () => {
    const r = normalize({ payload: { ...m5Payload, time: 5 }, endpoint: "anything", timeReceivedMicros: received, contents: dflt });
    expect(r).toEqual({ ok: true, timeObservedMicros: 5n, values: m5Payload });
  });

  it("gives the same result for the stored default adapter", () => {
    const a = defaultAdapter(dflt);
    const r = normalize({
      payload: m5Payload,
      endpoint: "x",
      timeReceivedMicros: received,
      inboundEnvelope: a.inboundEnvelope,
      inboundRoutes: a.inboundRoutes,
      contents: dflt,
    });
    expect(r).toEqual({ ok: true, timeObservedMicros: received, values: m5Payload });
  });

  it("rejects with 500 a payload that has none of the contents", () => {
    expect(normalize({ payload: { other: 1 }, endpoint: "x", timeReceivedMicros: received, contents: dflt })).toEqual(EMPTY);
    expect(normalize({ payload: "text", endpoint: "x", timeReceivedMicros: received, contents: dflt })).toEqual(EMPTY);
  });
});

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { Bus } from "@meridian/bus";
import { OmniaReaderService, ReaderSpecSchema } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { Platform, Quality } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import {
  expectCode,
  expectExactlyOnce,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  TEST_KEYS,
  testLogger,
  testTransport,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { omniaReaderConfig } from "../src/config.js";
import { nsFromDate } from "../src/pipeline/mapping.js";
import { type OmniaReader, startOmniaReader } from "../src/service.js";
import { collect, FakeOmnia } from "./harness.js";

const FAST = { initialMs: 10, maxMs: 50, multiplier: 2, jitter: 0 };
let nats: NatsServerHandle;
let reader: Bus;
const logger = testLogger();

beforeAll(async () => {
  nats = await startNatsServer();
  reader = Bus.connect({ servers: nats.url, name: "test-reader", logger });
  await reader.ready;
});

afterAll(async () => {
  await reader?.close();
  await nats?.stop();
});

function start(omnia: FakeOmnia): Promise<OmniaReader> {
  return startForTest(
    startOmniaReader,
    omniaReaderConfig,
    { NATS_URL: nats.url, INSTANCE_ID: "test" },
    {
      api: omnia.api,
      readBackoff: FAST,
      readAttempts: 20,
    },
  );
}

function client(svc: OmniaReader, credential?: string) {
  return createClient(OmniaReaderService, testTransport(svc.service.url, credential ? { credential } : {}));
}

describe("readers", () => {
  it("every datapoint of the window reaches the bus exactly once across a restart mid-poll, a 429 storm, a 503 outage and a late point", async () => {
    const omnia = new FakeOmnia();
    const a = omnia.addSeries({ name: "JSV.TI-101", facility: "JSV", unit: "degC" });
    const b = omnia.addSeries({ name: "JSV.PT-202", facility: "JSV", unit: "bar" });
    const other = omnia.addSeries({ name: "SNA.TI-101", facility: "SNA", unit: "degC" });
    const since = new Date();
    const base = (nsFromDate(since) / 1_000_000_000n - 3600n) * 1_000_000_000n;
    const series = (i: number) => ({
      timeNs: base + BigInt(i) * 1_000_000_000n + 1234500n,
      value: i + 0.5,
      status: i % 10 === 0 ? 0 : 192,
    });
    omnia.write(
      a.id,
      Array.from({ length: 1200 }, (_, i) => series(i)),
    );
    omnia.write(
      b.id,
      Array.from({ length: 1200 }, (_, i) => series(i)),
    );
    omnia.write(
      other.id,
      Array.from({ length: 10 }, (_, i) => series(i)),
    );
    const seen = collect(reader, "line-a", since);

    // The first instance stops in the middle of its first poll (on the third page it reads).
    let first: OmniaReader | undefined = await start(omnia);
    let stopping: Promise<void> | undefined;
    omnia.onRead = (call) => {
      if (call === 3 && first) {
        stopping = first.stop();
        first = undefined;
      }
    };
    await client(first!).createReader({
      reader: create(ReaderSpecSchema, {
        id: "line-a",
        series: [{ selector: { case: "query", value: { name: "JSV.*", facility: "JSV" } } }],
        pageSize: 500,
        intervalSeconds: 1,
        lagSeconds: 2,
        startTime: timestampFromDate(new Date(Number(base / 1_000_000n) - 1000)),
      }),
    });
    await until(() => stopping !== undefined, { timeoutMs: 10_000, what: "the reader stopped mid-poll" });
    await stopping;
    omnia.onRead = undefined;
    const before = seen.items.length;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(2400);

    // The second instance resumes from the cursors through throttling and an outage.
    omnia.faults = ["429", "429", "429", "429", "503", "503", "503", "429", "503"];
    const second = await start(omnia);
    try {
      await until(() => seen.items.length >= 2400, { timeoutMs: 20_000, what: "2400 events" });
      // A point stored late, stamped inside the lag window: read once the window passes it.
      const lateNs = nsFromDate(new Date()) - 1_000_000_000n;
      omnia.write(a.id, [{ timeNs: lateNs, value: 42, status: 64 }]);
      const events = await seen.exactly(2401);
      expectExactlyOnce(events, 2401);
      expect(omnia.faults).toHaveLength(0);
      expect(events.every((e) => e.source?.platform === Platform.OMNIA && e.source.connection === "line-a")).toBe(true);
      expect(new Set(events.map((e) => e.source?.device))).toEqual(new Set([a.id, b.id]));
      const late = events.find((e) => e.id === `omnia:${a.id}:${lateNs}`);
      expect(late?.points[0]).toMatchObject({
        name: "JSV.TI-101",
        unit: "degC",
        quality: Quality.UNCERTAIN,
        value: { case: "doubleValue", value: 42 },
      });
      const bad = events.find((e) => e.id === `omnia:${b.id}:${series(10).timeNs}`);
      expect(bad?.points[0]).toMatchObject({ name: "JSV.PT-202", unit: "bar", quality: Quality.BAD });
      expect(bad?.attributes["omnia.status"]).toBe("0");
      expect(bad?.observedTime?.nanos).toBe(1234500);

      const got = (await client(second).getReader({ id: "line-a" })).reader;
      expect(got?.cursors.map((c) => c.name).sort()).toEqual(["JSV.PT-202", "JSV.TI-101"]);
      expect(got?.spec?.lagSeconds).toBe(2);
      expect(got?.state).not.toBe("not_running");

      const paused = (await client(second).pauseReader({ id: "line-a", paused: true })).reader;
      expect(paused?.state).toBe("paused");
      await client(second).deleteReader({ id: "line-a" });
      await expectCode(client(second).getReader({ id: "line-a" }), Code.NotFound);
    } finally {
      await second.stop();
    }
  });

  it("a series Omnia does not know does not hold back the others; the reader says what failed", async () => {
    const omnia = new FakeOmnia();
    const sna = omnia.addSeries({ name: "SNA.13FT0101.PV", facility: "SNA", unit: "m3/h" });
    const since = new Date();
    const base = (nsFromDate(since) / 1_000_000_000n - 600n) * 1_000_000_000n;
    omnia.write(
      sna.id,
      Array.from({ length: 30 }, (_, i) => ({ timeNs: base + BigInt(i) * 1_000_000_000n, value: i })),
    );
    const seen = collect(reader, "mixed", since);
    const svc = await start(omnia);
    try {
      await client(svc).createReader({
        reader: create(ReaderSpecSchema, {
          id: "mixed",
          series: [{ selector: { case: "id", value: "no-such-series" } }, { selector: { case: "query", value: { name: "SNA.*" } } }],
          intervalSeconds: 1,
          lagSeconds: 1,
          startTime: timestampFromDate(new Date(Number(base / 1_000_000n))),
        }),
      });
      expectExactlyOnce(await seen.exactly(30), 30);
      const got = (await client(svc).getReader({ id: "mixed" })).reader;
      expect(got?.state).toBe("failing");
      expect(got?.lastError).toMatch(/no-such-series not found/);
      expect(got?.cursors.map((c) => c.seriesId)).toEqual([sna.id]);
    } finally {
      await svc.stop();
    }
  });

  it("bad input is invalid_argument naming the field, or Omnia's own refusal", async () => {
    const omnia = new FakeOmnia();
    const svc = await start(omnia);
    try {
      const c = client(svc);
      const spec = create(ReaderSpecSchema, { id: "x", series: [], pageSize: 0 });
      expect(await expectCode(c.createReader({ reader: spec }), Code.InvalidArgument)).toMatch(
        /reader\.series.*reader\.page_size: must be 1 to 100000/,
      );
      expect(await expectCode(c.getData({ id: "abc", limit: 200_000 }), Code.InvalidArgument)).toMatch(/limit: must be 1 to 100000/);
      const many = Array.from({ length: 101 }, () => ({ id: "abc" }));
      expect(await expectCode(c.getMultiData({ items: many }), Code.InvalidArgument)).toMatch(/items: at most 100 series/);
      const unknownFacility = c.createTimeseries({ timeseries: { name: "X", facility: "NOPE" } });
      expect(await expectCode(unknownFacility, Code.InvalidArgument)).toMatch(/Facility not found\./);
      await expectCode(c.getTimeseries({ id: "missing" }), Code.NotFound);
      // A malformed time never reaches a handler: the JSON codec refuses it.
      const res = await fetch(`${svc.service.url}/meridian.omnia.v1.OmniaReaderService/GetData`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS.admin}` },
        body: JSON.stringify({ id: "abc", startTime: "yesterday" }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
      // Reading readers needs platform:read; changing them platform:admin.
      await expectCode(
        client(svc, TEST_KEYS["platform:read"]).createReader({ reader: create(ReaderSpecSchema, { id: "y" }) }),
        Code.PermissionDenied,
      );
      const listed = (await client(svc, TEST_KEYS["platform:read"]).listReaders({})).readers;
      expect(listed.map((r) => r.spec?.id)).not.toContain("y");
    } finally {
      await svc.stop();
    }
  });
});

import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Bus, consumerBacklog, DEAD_LETTER_HEADERS, deadLetterSubject, routeBucket, STREAMS } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { CreateMode, RequestLogEntry, RunningOmfEmulator } from "@meridian/emulator-omf";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DeliveryLedger } from "../src/pipeline/ledger.js";
import type { OmfSender } from "../src/service.js";
import { logger, type NatsServerHandle, startEmulator, startNatsServer, startSender, until } from "./harness.js";

/**
 * Delivery correctness through a real nats-server and the OMF emulator: exactly N values whatever PI's
 * OmfCreateMode across a crash between the write and the ack, half-accepted split batches, 413s learnt, and Data
 * Hub's 202 that is not a write.
 *
 * "Between the write and the ack" is made exact with NATS permissions: the first omf-sender runs as a user that may
 * not publish acknowledgements ($JS.ACK.>), so everything it writes stays unacknowledged and comes back, to it and
 * then to a second omf-sender (a user that may), just as after a kill -9 right after the endpoint's answer.
 */
const BACKOFF = { initialMs: 200, maxMs: 1_000, multiplier: 2, jitter: 0.2 };
const ENV = { OMF_ACK_WAIT_MS: "2000", OMF_LINGER_MS: "50", OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" };
const NATS_CONFIG = `
authorization {
  users: [
    { user: full, password: full }
    { user: noack, password: noack, permissions: { publish: { allow: [">"], deny: ["$JS.ACK.>"] }, subscribe: { allow: [">"] } } }
    { user: noledger, password: noledger, permissions: { publish: { allow: [">"], deny: ["$KV.omf_state._delivered.>"] }, subscribe: { allow: [">"] } } }
  ]
}
`;

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
/** A PI Web API whose MaxRequestContentLength is small (2000 bytes): batches of 40 values are refused with 413. */
let small: RunningOmfEmulator;
let bus: Bus;
let endpointsFile: string;
const senders: OmfSender[] = [];
const smallLog: RequestLogEntry[] = [];
/** Called for each request the small emulator answered (after its answer, before the client's next request). */
let onSmallRequest: ((e: RequestLogEntry) => void) | undefined;

function event(connection: string, device: string, i: number, base: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:${i}`,
    source: { platform: Platform.API, connection, device },
    observedTime: timestampFromDate(new Date(base + i * 1000)),
    points: [
      { name: "temperature", value: { case: "doubleValue", value: 20 + i / 4 } },
      { name: "count", value: { case: "intValue", value: BigInt(i) } },
    ],
  });
}

async function sender(user: "full" | "noack" | "noledger", env: Record<string, string> = {}, log = logger): Promise<OmfSender> {
  const s = await startSender(
    nats,
    { ...ENV, OMF_ENDPOINTS_FILE: endpointsFile, NATS_USER: user, NATS_PASSWORD: user, ...env },
    { redeliveryBackoff: BACKOFF },
    log,
  );
  senders.push(s);
  return s;
}

async function stop(s: OmfSender): Promise<void> {
  await s.stop();
  senders.splice(senders.indexOf(s), 1);
}

async function putRoute(id: string, connection: string, target: string, options: Record<string, string> = {}) {
  await routeBucket(bus).put(
    id,
    create(RouteSchema, { id, source: { connection }, sink: { platform: Platform.OMF, target }, options: { lingerMs: "50", ...options } }),
  );
  await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 10_000, what: `consumer of route ${id}` });
}

async function publish(events: TelemetryEvent[], per: number) {
  for (let i = 0; i < events.length; i += per) await bus.publishEvents(events.slice(i, i + per));
}

type Container = { id: string; valueCount: number; values: Array<Record<string, unknown>> };
function containers(e: RunningOmfEmulator, scope: string, connection: string): Container[] {
  const s = e.state({ scope }) as unknown as { scopes: Record<string, { containers: Record<string, Container> }> };
  return Object.values(s.scopes[scope]?.containers ?? {}).filter((c) => c.id.startsWith(`api.${connection}.`));
}
function valueCount(e: RunningOmfEmulator, scope: string, connection: string): number {
  return containers(e, scope, connection).reduce((n, c) => n + c.valueCount, 0);
}

async function settled(route: string) {
  await until(
    async () => {
      const b = await consumerBacklog(bus, `omf-${route}`);
      return b !== undefined && b.pending === 0 && b.ackPending === 0;
    },
    { timeoutMs: 30_000, what: `route ${route} acknowledged everything` },
  );
}

const countersOf = async (s: OmfSender, route: string) => (await s.pipelines.counters()).find((p) => p.name === route);
const pipelineOf = (s: OmfSender, route: string) => s.pipelines.list().find((p) => p.route.id === route)!;

beforeAll(async () => {
  nats = await startNatsServer({ config: NATS_CONFIG });
  emu = await startEmulator();
  small = await startEmulator({
    maxBodyBytes: { pi: 2000 },
    onRequest: (e) => {
      smallLog.push(e);
      onSmallRequest?.(e);
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "omf-delivery-"));
  endpointsFile = join(dir, "endpoints.json");
  // Uncompressed, so the body the emulator measures is the one omf-sender batches.
  const pi = (id: string, url: string, compression = true) => ({
    id,
    compression,
    kind: "pi",
    url: `${url}/piwebapi`,
    allowHttp: true,
    username: "meridian",
    password: { env: "OMF_SECRET_TEST_PI_PASSWORD" },
  });
  writeFileSync(
    endpointsFile,
    JSON.stringify([
      pi("pi", emu.url),
      pi("pi-split", small.url, false),
      pi("pi-learn", small.url, false),
      {
        id: "adh",
        kind: "adh",
        url: emu.url,
        allowHttp: true,
        tenantId: "t1",
        namespaceId: "n1",
        clientId: "meridian-client",
        clientSecret: { env: "OMF_SECRET_TEST_ADH_SECRET" },
      },
    ]),
  );
  process.env.OMF_SECRET_TEST_PI_PASSWORD = "meridian";
  process.env.OMF_SECRET_TEST_ADH_SECRET = "meridian-secret";
  bus = Bus.connect({ servers: nats.url, name: "test", logger, user: "full", pass: "full" });
  await bus.ready;
});
afterEach(async () => {
  onSmallRequest = undefined;
  emu.clearFaults();
  small.clearFaults();
  for (const s of [...senders]) await stop(s);
});
afterAll(async () => {
  await bus?.close();
  await emu?.stop();
  await small?.stop();
  await nats?.stop();
});

describe("exactly N values at PI under every OmfCreateMode, across a crash between the write and the ack", () => {
  const cases: Array<{ mode: CreateMode; dataAction: "auto" | "create" }> = [
    { mode: "insert", dataAction: "auto" },
    { mode: "insertnocompression", dataAction: "auto" },
    { mode: "replace", dataAction: "auto" },
    { mode: "noreplace", dataAction: "auto" },
    { mode: "insert", dataAction: "create" },
  ];
  it.each(cases)(
    "OmfCreateMode $mode, data action $dataAction (auto is update on PI 1.2, read as following OmfCreateMode)",
    async ({ mode, dataAction }) => {
      emu.setSettings({ createMode: { pi: mode }, piUpdate: "createmode" });
      const route = `x-${mode}-${dataAction}`;
      const line = `line-${route}`;
      const n = 200;
      // The first instance writes everything and can acknowledge nothing.
      const first = await sender("noack");
      await putRoute(route, line, "pi", { maxBatchEvents: "60", maxInflightBatches: "2", dataAction });
      const base = Date.UTC(2026, 8, 1);
      await publish(
        ["a", "b"].flatMap((d) => Array.from({ length: n / 2 }, (_, i) => event(line, d, i, base))),
        20,
      );
      await until(() => valueCount(emu, "pi", line) === n, { timeoutMs: 20_000, what: `${n} values written` });
      // Past the ack wait the first instance gets its own messages again: the ledger says they are written.
      await until(async () => ((await countersOf(first, route))?.redelivered ?? 0n) >= BigInt(n), {
        timeoutMs: 20_000,
        what: "redeliveries to the first instance",
      });
      await until(() => pipelineOf(first, route).counters.alreadyWritten >= n, { timeoutMs: 10_000, what: "skipped as written" });
      const c1 = await countersOf(first, route);
      expect(c1?.received).toBe(BigInt(n));
      expect(c1?.delivered).toBe(BigInt(n));
      await stop(first);
      // The second instance takes them over and acknowledges them, writing nothing.
      const second = await sender("full");
      await settled(route);
      const cs = containers(emu, "pi", line);
      expect(cs.map((c) => c.valueCount).sort()).toEqual([n / 2, n / 2]);
      for (const c of cs) expect(new Set(c.values.map((v) => v.Timestamp)).size).toBe(n / 2);
      const c2 = await countersOf(second, route);
      expect(c2?.received).toBe(0n);
      expect(c2?.delivered).toBe(0n);
      expect(pipelineOf(second, route).counters.redelivered).toBeGreaterThanOrEqual(n);
      expect(pipelineOf(second, route).counters.alreadyWritten).toBe(n);
    },
    60_000,
  );
});

describe("the delivery ledger is the condition of a send", () => {
  // During a leader election of the state bucket's stream (a cluster losing a node) the ledger cannot be written. A
  // send started without its note could, after a crash, be repeated blind: so no send starts, and nothing is lost.
  it("no send starts while the ledger cannot note it; the messages wait and are delivered once when it can", async () => {
    emu.setSettings({ createMode: { pi: "insert" }, piUpdate: "createmode" });
    const route = "ledger-down";
    const line = `line-${route}`;
    const n = 40;
    const first = await sender("noledger");
    await putRoute(route, line, "pi");
    const base = Date.UTC(2026, 9, 1);
    await publish(
      Array.from({ length: n }, (_, i) => event(line, "a", i, base)),
      10,
    );
    await until(async () => ((await countersOf(first, route))?.lastError ?? "").includes("delivery ledger unavailable"), {
      timeoutMs: 20_000,
      what: "the send refused for want of the ledger",
    });
    expect(valueCount(emu, "pi", line)).toBe(0);
    expect((await countersOf(first, route))?.delivered).toBe(0n);
    await stop(first);
    await sender("full");
    await settled(route);
    const [c] = containers(emu, "pi", line);
    expect(c?.valueCount).toBe(n);
    expect(new Set(c?.values.map((v) => v.Timestamp)).size).toBe(n);
  }, 60_000);

  // nats-server before its clustered de-dupe fix (2025) can store one publish twice across a stream leader election
  // despite its Nats-Msg-Id. Here the stream's duplicate window is shortened so a single node stores the same
  // publish twice, as such a cluster would.
  it("one publish stored twice in the stream (same Nats-Msg-Id, two sequences) is written to PI once", async () => {
    emu.setSettings({ createMode: { pi: "insert" }, piUpdate: "createmode" });
    const route = "twin";
    const line = `line-${route}`;
    const n = 30;
    const s = await sender("full");
    await putRoute(route, line, "pi");
    const events = Array.from({ length: n }, (_, i) => event(line, "a", i, Date.UTC(2026, 10, 1)));
    const jsm = bus.jsm();
    const before = (await jsm.streams.info(STREAMS.telemetry)).config;
    await jsm.streams.update(STREAMS.telemetry, { ...before, duplicate_window: 200_000_000 });
    try {
      expect(await bus.publishEvents(events, "twin-publish")).toEqual({ stored: 1, duplicates: 0 });
      await until(() => valueCount(emu, "pi", line) === n, { timeoutMs: 10_000, what: "the first copy written" });
      await new Promise((r) => setTimeout(r, 400));
      expect(await bus.publishEvents(events, "twin-publish")).toEqual({ stored: 1, duplicates: 0 });
    } finally {
      await jsm.streams.update(STREAMS.telemetry, { ...before });
    }
    // The route's consumer acknowledged the copy without handing it to the pipeline (libs/bus DurableConsumer).
    await settled(route);
    const [c] = containers(emu, "pi", line);
    expect(c?.valueCount).toBe(n);
    expect((await countersOf(s, route))?.received).toBe(BigInt(n));
  }, 30_000);

  it("a record the bucket refused is still known to the instance that wrote it (a delivery of it again is skipped)", async () => {
    const noledger = Bus.connect({ servers: nats.url, name: "test-noledger", logger, user: "noledger", pass: "noledger" });
    await noledger.ready;
    try {
      const ledger = new DeliveryLedger(noledger, "refused-record");
      await expect(ledger.record(new Map([[7, "all"]]))).rejects.toThrow();
      expect(ledger.known(7)).toEqual({ written: "all", sending: true });
      expect(ledger.known(8)).toBeUndefined();
    } finally {
      await noledger.close();
    }
  });

  // A consumer's leader may report acks its followers have not stored: records are dropped against the floor seen a
  // check earlier, not the newest, so a redelivery by the next leader still finds them.
  it("records are pruned against the ack floor seen at the previous check, not the current one", async () => {
    const ledger = new DeliveryLedger(bus, "prune-lag", 0);
    await ledger.record(new Map([[3, "all"]]));
    await ledger.intend([4]);
    let floor = 10;
    await ledger.prune(async () => floor);
    expect(ledger.size).toBe(2);
    expect(ledger.known(3)?.written).toBe("all");
    floor = 3;
    await ledger.prune(async () => floor);
    // Pruned against 10 (seen before): both go, and nothing of them stays in the bucket's stream (no delete marker).
    expect(ledger.size).toBe(0);
    const prefix = `$KV.omf_state._delivered.${createHash("sha256").update("prune-lag").digest("hex").slice(0, 16)}.`;
    const left = await bus.jsm().streams.info("KV_omf_state", { subjects_filter: `${prefix}>` });
    expect(Object.keys(left.state.subjects ?? {})).toEqual([]);
    await ledger.record(new Map([[12, "all"]]));
    await ledger.prune(async () => 20);
    // Pruned against 3 (seen before): kept.
    expect(ledger.known(12)?.written).toBe("all");
  });
});

describe("split batches and 413", () => {
  it("a batch split by a 413 whose first half was accepted and second half got a 503 writes the second half only (PI Insert)", async () => {
    small.setSettings({ createMode: { pi: "insert" }, piUpdate: "createmode" });
    const s = await sender("full");
    await putRoute("split", "line-split", "pi-split", { maxBatchEvents: "40" });
    const base = Date.UTC(2026, 9, 1);
    await bus.publishEvents([event("line-split", "d", 1000, base)]); // types and container made first
    await until(() => valueCount(small, "pi", "line-split") === 1, { timeoutMs: 10_000, what: "first value" });
    // The next 2xx (the first half) arms a 503 for the request after it (the second half).
    let accepted = 0;
    onSmallRequest = (e) => {
      if (e.method === "POST" && e.status < 300 && accepted++ === 0)
        small.setFault({ status: 503, count: 1, retryAfterSeconds: 1, profile: "pi" });
    };
    const before413 = smallLog.filter((e) => e.status === 413).length;
    await bus.publishEvents(Array.from({ length: 40 }, (_, i) => event("line-split", "d", i, base))); // one message
    await until(async () => ((await countersOf(s, "split"))?.delivered ?? 0n) === 41n, { timeoutMs: 20_000, what: "all delivered" });
    await settled("split");
    expect(smallLog.filter((e) => e.status === 413).length).toBeGreaterThan(before413);
    expect(smallLog.some((e) => e.status === 503)).toBe(true);
    const [c] = containers(small, "pi", "line-split");
    expect(c?.valueCount).toBe(41);
    expect(new Set(c?.values.map((v) => v.Timestamp)).size).toBe(41);
    expect(pipelineOf(s, "split").counters.alreadyWritten).toBe(20);
  }, 40_000);

  it("a 413 is learnt per endpoint: later batches go out at the size it took, not split again", async () => {
    const s = await sender("full");
    await putRoute("learn", "line-learn", "pi-learn", { maxBatchEvents: "40" });
    const base = Date.UTC(2026, 10, 1);
    const from = smallLog.length;
    for (let b = 0; b < 4; b++) {
      await bus.publishEvents(Array.from({ length: 40 }, (_, i) => event("line-learn", "d", b * 40 + i, base)));
      await until(async () => ((await countersOf(s, "learn"))?.delivered ?? 0n) === BigInt((b + 1) * 40), {
        timeoutMs: 10_000,
        what: `batch ${b}`,
      });
    }
    const log = smallLog.slice(from).filter((e) => e.method === "POST");
    expect(log.filter((e) => e.status === 413)).toHaveLength(1);
    expect(valueCount(small, "pi", "line-learn")).toBe(160);
  }, 40_000);
});

describe("Data Hub's 202 is not a write", () => {
  it("a 202 whose values never become readable is not counted delivered: retried, then stored once", async () => {
    const s = await sender("full");
    await putRoute("async", "line-async", "adh", { confirmTimeoutMs: "500" });
    const base = Date.UTC(2026, 11, 1);
    await bus.publishEvents([event("line-async", "d", 0, base)]);
    await until(() => valueCount(emu, "adh/t1/n1", "line-async") === 1, { timeoutMs: 10_000, what: "first value" });
    await until(async () => (await countersOf(s, "async"))?.delivered === 1n, { timeoutMs: 10_000, what: "first delivered" });
    emu.setFault({ asyncFailures: 1, profile: "adh" });
    await bus.publishEvents(Array.from({ length: 5 }, (_, i) => event("line-async", "d", i + 1, base)));
    // The 202 came, the values did not: the message is retried with the reason, not counted.
    await until(
      async () =>
        /Data Hub accepted the data \(202, Operation-Id [^)]+\) but 5 value/.test((await countersOf(s, "async"))?.lastError ?? ""),
      {
        timeoutMs: 10_000,
        what: "the unconfirmed write reported",
      },
    );
    expect((await countersOf(s, "async"))?.delivered).toBe(1n);
    expect(emu.operations().some((o) => o.status === "Failed")).toBe(true);
    await settled("async");
    expect(valueCount(emu, "adh/t1/n1", "line-async")).toBe(6);
    const c = await countersOf(s, "async");
    expect(c?.delivered).toBe(6n);
    expect(c?.failed).toBe(0n);
  }, 30_000);

  it("a 202 whose values are lost on every delivery is dead-lettered with the reason and the Operation-Ids", async () => {
    const s = await sender("full");
    await putRoute("lost", "line-lost", "adh", { confirmTimeoutMs: "200" });
    const base = Date.UTC(2026, 11, 2);
    await bus.publishEvents([event("line-lost", "d", 0, base)]);
    await until(async () => (await countersOf(s, "lost"))?.delivered === 1n, { timeoutMs: 10_000, what: "first delivered" });
    emu.setFault({ asyncFailures: 100, profile: "adh" });
    await bus.publishEvents([event("line-lost", "d", 1, base), event("line-lost", "d", 2, base)]);
    await until(async () => (await countersOf(s, "lost"))?.failed === 2n, { timeoutMs: 30_000, what: "dead-lettered" });
    const letter = await bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: deadLetterSubject("omf-lost") });
    expect(letter.header.get(DEAD_LETTER_HEADERS.reason)).toMatch(/^Data Hub accepted the data \(202, Operation-Id .+\) but 2 value/);
    expect(JSON.parse(letter.header.get(DEAD_LETTER_HEADERS.detail)).operationIds.length).toBeGreaterThan(0);
    expect((await countersOf(s, "lost"))?.delivered).toBe(1n);
    expect(valueCount(emu, "adh/t1/n1", "line-lost")).toBe(1);
  }, 40_000);
});

describe("failed sends in the log", () => {
  it("one line per failed batch with its counts, at most one per 10 s per route, not one per bus message", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l));
        cb();
      },
    });
    const s = await sender("full", {}, pino({ level: "warn" }, sink));
    await putRoute("noisy", "line-noisy", "pi", { maxBatchEvents: "100" });
    emu.setFault({ status: 503, count: 20, profile: "pi" });
    const base = Date.UTC(2027, 0, 1);
    await publish(
      Array.from({ length: 40 }, (_, i) => event("line-noisy", "d", i, base)),
      1,
    );
    await until(async () => (await countersOf(s, "noisy"))?.delivered === 40n, { timeoutMs: 30_000, what: "delivered after the 503s" });
    const failed = lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("send failed"));
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(3);
    expect(failed[0]).toMatchObject({
      route: "noisy",
      messages: expect.any(Number),
      events: expect.any(Number),
      retried: expect.any(Number),
    });
    expect(failed[0]!.events).toBe(failed[0]!.messages); // one event per message here
  }, 40_000);
});

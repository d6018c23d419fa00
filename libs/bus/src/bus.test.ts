import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { isRetryable } from "@meridian/retry";
import { freePort, type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { DiscardPolicy } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Bus, chunkEvents, STREAMS } from "./bus.js";
import { decodeBatch, encodeBatch, MAX_EVENTS_PER_MESSAGE, MAX_MESSAGE_BYTES, makeBatch } from "./codec.js";
import { busFromConfig, natsSettings } from "./config.js";
import { DurableConsumer } from "./consumer.js";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";
import { BusUnavailableError, KeyChangedError, KeyExistsError, MessageTooLargeError, PermanentError } from "./errors.js";
import { jsonCodec, KvBucket } from "./kv.js";
import { deadLetterSubject, telemetryFilterSubject } from "./subjects.js";

const logger = testLogger();

function event(id: string, device: string, value: number, connection = "test"): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id,
    source: { platform: Platform.API, connection, device },
    observedTime: timestampNow(),
    points: [{ name: "temperature", value: { case: "doubleValue", value } }],
  });
}

describe("Bus against a real nats-server", () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "bus-test", logger });
    await bus.ready;
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  it("publishes one message per connection and recognises a repeated publish as duplicate", async () => {
    const events = [event("e1", "a", 1), event("e2", "b", 2), event("e3", "a", 3), event("e4", "a", 4, "other")];
    expect(await bus.publishEvents(events)).toEqual({ stored: 2, duplicates: 0 });
    expect(await bus.publishEvents(events)).toEqual({ stored: 0, duplicates: 2 });
    expect(await bus.publishEvents(events.slice(0, 1), "batch-1")).toEqual({ stored: 1, duplicates: 0 });
    expect(await bus.publishEvents(events.slice(0, 1), "batch-1")).toEqual({ stored: 0, duplicates: 1 });
    // A batch id over two connections: one message each, both recognised again.
    expect(await bus.publishEvents(events, "batch-2")).toEqual({ stored: 2, duplicates: 0 });
    expect(await bus.publishEvents(events, "batch-2")).toEqual({ stored: 0, duplicates: 2 });
  });

  it("puts a 10-device publish in one message on the connection's several-devices subject, in order", async () => {
    const events = Array.from({ length: 100 }, (_, i) => event(`ten-${i}`, `dev-${i % 10}`, i, "ten"));
    const before = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;
    expect(await bus.publishEvents(events)).toEqual({ stored: 1, duplicates: 0 });
    const m = await bus.jsm().streams.getMessage(STREAMS.telemetry, { seq: before + 1 });
    expect(m.subject).toBe("telemetry.v1.api.ten.~");
    expect(decodeBatch(m.data).events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    // One device's events keep the device's own subject.
    expect(await bus.publishEvents([event("one-1", "solo", 1, "ten"), event("one-2", "solo", 2, "ten")])).toEqual({
      stored: 1,
      duplicates: 0,
    });
    expect((await bus.jsm().streams.getMessage(STREAMS.telemetry, { seq: before + 2 })).subject).toBe("telemetry.v1.api.ten.solo");
  });

  it("splits a publish at the message limits, and a repeat of it is a duplicate chunk by chunk", async () => {
    const many = Array.from({ length: MAX_EVENTS_PER_MESSAGE * 2 + 1 }, (_, i) => event(`many-${i}`, `d${i % 3}`, i, "chunks"));
    expect(chunkEvents(many).map((c) => c.length)).toEqual([MAX_EVENTS_PER_MESSAGE, MAX_EVENTS_PER_MESSAGE, 1]);
    expect(await bus.publishEvents(many, "chunked")).toEqual({ stored: 3, duplicates: 0 });
    expect(await bus.publishEvents(many, "chunked")).toEqual({ stored: 0, duplicates: 3 });
    expect(await bus.publishEvents(many)).toEqual({ stored: 3, duplicates: 0 });
    expect(await bus.publishEvents(many)).toEqual({ stored: 0, duplicates: 3 });
    // By bytes: events of ~100 KiB each, five to a chunk at most.
    const big = Array.from({ length: 12 }, (_, i) => {
      const e = event(`big-${i}`, "d", i, "chunks");
      e.attributes["blob"] = "x".repeat(100 * 1024);
      return e;
    });
    const chunks = chunkEvents(big);
    expect(chunks.map((c) => c.length)).toEqual([5, 5, 2]);
    for (const c of chunks) expect(encodeBatch(makeBatch("chunked:1", c)).length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES + 64);
    expect(chunks.flat()).toEqual(big);
    expect(await bus.publishEvents(big)).toEqual({ stored: 3, duplicates: 0 });
  });

  it("streams matching events in order from a start time", async () => {
    const start = new Date();
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of bus.subscribe({ device: "ordered" }, { startTime: start, signal: ac.signal })) {
        seen.push(e.id);
        if (seen.length === 20) ac.abort();
      }
    })();
    for (let i = 0; i < 20; i++) {
      await bus.publishEvents([event(`o${i}`, "ordered", i), event(`x${i}`, "other", i)]);
    }
    await reading;
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `o${i}`));
  });

  it("acks, retries and dead-letters with the reason", async () => {
    const consumer = new DurableConsumer(bus, {
      durable: "test-sink",
      filterSubject: telemetryFilterSubject({ connection: "dlq" }),
      logger,
      backoff: { initialMs: 10, maxMs: 20, multiplier: 2, jitter: 0 },
    });
    // A new consumer starts at the next message: it must exist before the test publishes.
    await consumer.declare();
    const ac = new AbortController();
    const attempts = new Map<string, number>();
    const delivered: string[] = [];
    const running = consumer.run(async (d) => {
      const id = d.batch.events[0]!.id;
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      if (id === "flaky" && n < 3) throw new Error("platform down");
      if (id === "poison") throw new PermanentError("schema rejected", "OMF says: bad type");
      delivered.push(id);
    }, ac.signal);

    const ev = (id: string) => event(id, id, 1, "dlq");
    await bus.publishEvents([ev("good")]);
    await bus.publishEvents([ev("flaky")]);
    await bus.publishEvents([ev("poison")]);

    await until(() => delivered.includes("good") && delivered.includes("flaky") && attempts.get("poison") === 1, {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect(attempts.get("flaky")).toBe(3);
    expect(delivered).not.toContain("poison");

    const dlq = await bus.js().consumers.get("DEADLETTER", { filterSubjects: deadLetterSubject("test-sink") });
    const m = await dlq.next({ expires: 5000 });
    expect(m?.headers?.get(DEAD_LETTER_HEADERS.reason)).toBe("schema rejected");
    expect(m?.headers?.get(DEAD_LETTER_HEADERS.detail)).toBe("OMF says: bad type");
    await until(async () => (await consumer.pending()).ackPending === 0, { timeoutMs: 10_000, intervalMs: 50 });
    ac.abort();
    await running;
  });

  it("stores a source's dead letter with the reason, its own headers and the payload unchanged", async () => {
    const data = new TextEncoder().encode("<Msg>not telemetry</Msg>");
    const stored = await bus.publishDeadLetter({
      consumer: "test-source",
      data,
      reason: "unparseable block",
      detail: "line 1\nline 2",
      headers: { "Meridian-Test-Monitor": "42", [DEAD_LETTER_HEADERS.reason]: "a caller cannot replace the reason" },
    });
    expect(stored.duplicate).toBe(false);
    const m = await bus.jsm().streams.getMessage("DEADLETTER", { seq: stored.seq });
    expect(m.subject).toBe(deadLetterSubject("test-source"));
    expect(m.data).toEqual(data);
    expect(m.header.get(DEAD_LETTER_HEADERS.reason)).toBe("unparseable block");
    expect(m.header.get(DEAD_LETTER_HEADERS.detail)).toBe("line 1 line 2");
    expect(m.header.get(DEAD_LETTER_HEADERS.consumer)).toBe("test-source");
    expect(m.header.get("Meridian-Test-Monitor")).toBe("42");
    // Not from the telemetry stream: no original position is claimed.
    expect(m.header.get(DEAD_LETTER_HEADERS.sequence)).toBe("");
  });

  it("a dead letter over max_payload is MessageTooLargeError, not unavailable, and not worth retrying", async () => {
    const data = new Uint8Array(bus.connection().info!.max_payload + 1);
    const err = await bus.publishDeadLetter({ consumer: "test-source", data, reason: "too big" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect(isRetryable(err)).toBe(false);
  });

  it("KV create refuses an existing key; delete reports absence", async () => {
    const kv = new KvBucket<{ n: number }>(bus, "test_bucket", jsonCodec());
    await kv.create("k1", { n: 1 });
    await expect(kv.create("k1", { n: 2 })).rejects.toBeInstanceOf(KeyExistsError);
    expect(await kv.get("k1")).toEqual({ n: 1 });
    expect(await kv.keys()).toEqual(["k1"]);
    expect(await kv.delete("k1")).toBe(true);
    expect(await kv.delete("k1")).toBe(false);
    expect(await kv.get("k1")).toBeUndefined();
    await kv.create("k1", { n: 3 });
    expect(await kv.get("k1")).toEqual({ n: 3 });
  });

  it("KV delete at a revision deletes only the value read at it; a stale or absent one is KeyChangedError", async () => {
    const kv = new KvBucket<{ n: number }>(bus, "test_cas_bucket", jsonCodec());
    const first = await kv.create("k", { n: 1 });
    await kv.put("k", { n: 2 });
    const now = (await kv.entry("k"))!.revision;
    expect(now).toBeGreaterThan(first);
    await expect(kv.delete("k", first)).rejects.toBeInstanceOf(KeyChangedError);
    expect(await kv.get("k")).toEqual({ n: 2 });
    expect(await kv.delete("k", now)).toBe(true);
    expect(await kv.get("k")).toBeUndefined();
    await expect(kv.delete("k", now)).rejects.toBeInstanceOf(KeyChangedError);
  });

  it("KV keys: a listing during which keys are purged ends (with the keys, or unavailable to try again), never hangs", async () => {
    // nats.js's kv.keys() waited for ever here in about one round in five (the delivery ledger purges while it lists).
    const idleMs = 500;
    const kv = new KvBucket<{ n: number }>(bus, "test_purged_bucket", jsonCodec(), { listIdleMs: idleMs });
    const outcomes: string[] = [];
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 3000 }, (_, i) => kv.put(`r${round}.k${i}`, { n: i })));
      const listing = kv.keys();
      // Purged while the listing is under way.
      setImmediate(() => void bus.jsm().streams.purge("KV_test_purged_bucket", { filter: `$KV.test_purged_bucket.r${round}.>` }));
      const outcome = await Promise.race([
        listing.then(
          (keys) => `listed ${keys.length}`,
          (err: unknown) => (err instanceof BusUnavailableError ? "unavailable" : `failed: ${String(err)}`),
        ),
        new Promise<string>((resolve) => setTimeout(resolve, idleMs + 4000, "hung")),
      ]);
      outcomes.push(outcome);
    }
    expect(
      outcomes.filter((o) => o === "hung" || o.startsWith("failed")),
      outcomes.join("; "),
    ).toEqual([]);
    // Once nothing is purged any more, the bucket lists in full.
    await kv.put("after", { n: 1 });
    expect(await kv.keys()).toEqual(["after"]);
  }, 60_000);

  it("KV keys and entries list each key once while the keys are being written (status reports every few seconds)", async () => {
    const kv = new KvBucket<{ n: number }>(bus, "test_busy_bucket", jsonCodec());
    const names = Array.from({ length: 8 }, (_, i) => `svc.i${i}`);
    for (const k of names) await kv.put(k, { n: 0 });
    let writing = true;
    const writer = (async () => {
      for (let n = 1; writing; n++) await Promise.all(names.map((k) => kv.put(k, { n })));
    })();
    try {
      for (let i = 0; i < 40; i++) {
        expect(await kv.keys()).toEqual(names);
        expect((await kv.entries()).map(([k]) => k)).toEqual(names);
      }
    } finally {
      writing = false;
      await writer;
    }
  });

  it("a consumer stopped while it is still being set up ends instead of waiting forever for a message", async () => {
    // A route enabled and deleted at once stops its pipeline while consume() is still being set up; an abort that
    // fired before the listener was added must still end the deliveries.
    for (const delayMs of [0, 1, 5, 20]) {
      const connection = `early-stop-${delayMs}`;
      const consumer = new DurableConsumer(bus, { durable: connection, filterSubject: telemetryFilterSubject({ connection }), logger });
      const ac = new AbortController();
      const first = consumer.deliveries(ac.signal)[Symbol.asyncIterator]().next();
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      ac.abort();
      const ended = await Promise.race([first.then((r) => r.done), new Promise((r) => setTimeout(() => r("hung"), 5_000))]);
      expect(ended, `aborted after ${delayMs} ms`).toBe(true);
    }
  });

  for (const [signal, exactlyOnce] of [
    ["SIGTERM", true],
    ["SIGKILL", false],
  ] as const) {
    it(`a durable consumer resumes after a ${signal} server restart without loss${exactlyOnce ? " or duplicates" : " (at-least-once: acks in flight at a crash may be redelivered)"}`, async () => {
      const connection = `restart-${signal}`;
      const consumer = new DurableConsumer(bus, { durable: connection, filterSubject: telemetryFilterSubject({ connection }), logger });
      await consumer.declare();
      const ac = new AbortController();
      const got: string[] = [];
      const running = consumer.run(async (d) => {
        for (const e of d.batch.events) got.push(e.id);
      }, ac.signal);
      const ev = (i: number) => event(`r${i}`, "r", i, connection);
      for (let i = 0; i < 10; i++) await bus.publishEvents([ev(i)]);
      await until(() => got.length === 10, { timeoutMs: 10_000, intervalMs: 50 });
      if (exactlyOnce) await until(async () => (await consumer.pending()).ackPending === 0, { timeoutMs: 10_000, intervalMs: 50 });
      await nats.restart(signal);
      await until(() => bus.connected, { timeoutMs: 20_000, intervalMs: 50 });
      for (let i = 10; i < 20; i++) await bus.publishEvents([ev(i)]);
      const all = Array.from({ length: 20 }, (_, i) => `r${i}`);
      await until(() => all.every((id) => got.includes(id)), { timeoutMs: 20_000, intervalMs: 50 }).catch((e) => {
        throw new Error(`${e.message}; got ${got.join(",")}`);
      });
      ac.abort();
      await running;
      if (exactlyOnce) expect(got).toEqual(all);
      else expect(new Set(got)).toEqual(new Set(all));
    }, 60_000);
  }
});

describe("Bus when NATS is unreachable", () => {
  it("starts disconnected, refuses to publish, and connects once the server appears", async () => {
    const port = await freePort();
    const bus = Bus.connect({ servers: `nats://127.0.0.1:${port}`, name: "late", logger });
    try {
      expect(bus.connected).toBe(false);
      const down = await bus.publishEvents([event("z", "z", 1)]).catch((e: unknown) => e);
      expect(down).toBeInstanceOf(BusUnavailableError);
      // A source retries it with the one retry policy (and keeps its data meanwhile).
      expect(isRetryable(down)).toBe(true);
      // A server on exactly that port: start one and point the bus's retries at it.
      const { spawn } = await import("node:child_process");
      const { mkdtempSync } = await import("node:fs");
      const { tmpdir } = await import("node:os");
      const dir = mkdtempSync(`${tmpdir()}/late-nats-`);
      const proc = spawn("nats-server", ["-js", "-sd", dir, "-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      try {
        await until(() => bus.connected, { timeoutMs: 20_000, intervalMs: 50 });
        expect(await bus.publishEvents([event("z", "z", 1)])).toEqual({ stored: 1, duplicates: 0 });
      } finally {
        proc.kill("SIGKILL");
      }
    } finally {
      await bus.close();
    }
  }, 30_000);
});

describe("KV bucket while JetStream does not answer", () => {
  // The connection stays up but nothing answers in time, as while a cluster elects a stream leader or a server is too
  // busy: here the server process is paused (SIGSTOP) and resumed (SIGCONT).
  let nats: NatsServerHandle;
  let bus: Bus;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "paused", logger, publishTimeoutMs: 500 });
    await bus.ready;
  });
  afterAll(async () => {
    const pid = nats?.pid();
    if (pid) process.kill(pid, "SIGCONT");
    await bus?.close();
    await nats?.stop();
  });

  it("throws BusUnavailableError (retryable, naming the bucket) from reads, listings and writes, and works again after", async () => {
    const kv = new KvBucket<{ n: number }>(bus, "paused_bucket", jsonCodec());
    await kv.put("a", { n: 1 });
    const pid = nats.pid()!;
    process.kill(pid, "SIGSTOP");
    let failures: unknown[];
    try {
      // Stopped ("T" in /proc/<pid>/stat) before the first call, not merely signalled.
      await until(() => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("T") === true, {
        timeoutMs: 5000,
        intervalMs: 5,
      });
      expect(bus.connected).toBe(true);
      failures = [];
      const ops = [() => kv.get("a"), () => kv.keys(), () => kv.create("b", { n: 2 }), () => kv.put("a", { n: 3 }), () => kv.delete("a")];
      for (const op of ops) failures.push(await op().catch((e: unknown) => e));
    } finally {
      process.kill(pid, "SIGCONT");
    }
    for (const err of failures) {
      expect(err).toBeInstanceOf(BusUnavailableError);
      expect(isRetryable(err)).toBe(true);
      expect((err as Error).message).toContain("$KV.paused_bucket.");
    }
    await until(async () => (await kv.get("a").catch(() => undefined)) !== undefined, { timeoutMs: 10_000, intervalMs: 100 });
    expect(await kv.keys()).toContain("a");
  }, 60_000);
});

describe("DEADLETTER size limit", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  async function deadLetterConfig(bus: Bus) {
    await bus.ready;
    return (await bus.jsm().streams.info(STREAMS.deadLetter)).config;
  }

  it("is declared with max_bytes (1 GiB by default) and drops the oldest letters when full", async () => {
    const bus = Bus.connect({ servers: nats.url, name: "dl-default", logger });
    try {
      const config = await deadLetterConfig(bus);
      expect(config.max_bytes).toBe(1024 ** 3);
      expect(config.discard).toBe(DiscardPolicy.Old);
    } finally {
      await bus.close();
    }
  });

  it("takes DEADLETTER_MAX_BYTES from the settings, also on a stream declared before without it", async () => {
    const config = z.object(natsSettings).parse({ NATS_URL: nats.url, DEADLETTER_MAX_BYTES: String(3 * 1024 ** 2) });
    const bus = busFromConfig(config, "dl-setting", logger);
    try {
      expect((await deadLetterConfig(bus)).max_bytes).toBe(3 * 1024 ** 2);
    } finally {
      await bus.close();
    }
  });

  it("DEADLETTER_MAX_BYTES is an integer between 1 MiB and 1 TiB", () => {
    const schema = z.object(natsSettings);
    expect(schema.parse({}).DEADLETTER_MAX_BYTES).toBe(1024 ** 3);
    for (const bad of ["1048575", String(1024 ** 4 + 1), "1048576.5", "lots"]) {
      expect(schema.safeParse({ DEADLETTER_MAX_BYTES: bad }).success, bad).toBe(false);
    }
    expect(schema.parse({ DEADLETTER_MAX_BYTES: String(1024 ** 2) }).DEADLETTER_MAX_BYTES).toBe(1024 ** 2);
  });
});

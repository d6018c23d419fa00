import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bus, STREAMS } from "./bus.js";
import { BusUnavailableError } from "./errors.js";
import { OrderedConsumer, parseAckSubject } from "./ordered.js";

const logger = testLogger();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function event(connection: string, i: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}-${i}`,
    source: { platform: Platform.API, connection, device: `d${i % 3}` },
    observedTime: timestampNow(),
    points: [{ name: "n", value: { case: "doubleValue", value: i } }],
  });
}

/**
 * A live view read in the background, and the longest time it kept the caller waiting while an event it should see
 * was stored: from the later of the previous event's arrival and this event's publish, to this event's arrival.
 */
class LiveView {
  readonly ids: string[] = [];
  longestWaitMs = 0;
  private lastAt = Date.now();
  private readonly publishedAt = new Map<string, number>();
  private readonly ac = new AbortController();
  private readonly done: Promise<void>;

  constructor(bus: Bus, connection: string) {
    this.done = (async () => {
      for await (const e of bus.subscribe({ connection }, { signal: this.ac.signal })) {
        const now = Date.now();
        const since = Math.max(this.lastAt, this.publishedAt.get(e.id) ?? now);
        this.longestWaitMs = Math.max(this.longestWaitMs, now - since);
        this.lastAt = now;
        this.ids.push(e.id);
      }
    })();
    this.done.catch(() => {});
  }

  /** Call right before publishing: the wait for it starts here. */
  published(id: string): void {
    this.publishedAt.set(id, Date.now());
  }

  /** Waits until `n` events arrived (or `timeoutMs` passed), then a little longer so a duplicate would show. */
  async stop(n: number, timeoutMs: number): Promise<string[]> {
    const end = Date.now() + timeoutMs;
    while (this.ids.length < n && Date.now() < end) await sleep(50);
    await sleep(500);
    this.ac.abort();
    await this.done.catch(() => {});
    return this.ids;
  }
}

/** Publishes event i of `connection` until it is stored (a restarting server refuses for a while). */
async function publishStored(bus: Bus, view: LiveView, connection: string, i: number): Promise<void> {
  const e = event(connection, i);
  view.published(e.id);
  for (;;) {
    try {
      await bus.publishEvents([e]);
      return;
    } catch (err) {
      if (!(err instanceof BusUnavailableError)) throw err;
      await sleep(100);
    }
  }
}

const expected = (connection: string, n: number) => Array.from({ length: n }, (_, i) => `${connection}-${i}`);

/** The names of the telemetry stream's consumers. */
async function consumersOf(bus: Bus): Promise<string[]> {
  const names: string[] = [];
  for await (const ci of await bus.jsm().consumers.list(STREAMS.telemetry)) names.push(ci.name);
  return names;
}

describe("live views (ordered consumer) against a real nats-server", () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "ordered-test", logger });
    await bus.ready;
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  it("parses both forms of a JetStream reply subject", () => {
    expect(parseAckSubject("$JS.ACK.TELEMETRY.c1.1.42.7.1700000000000000000.3")).toEqual({ consumer: "c1", streamSeq: 42, deliverySeq: 7 });
    expect(parseAckSubject("$JS.ACK.dom.hash.TELEMETRY.c1.1.42.7.1700000000000000000.3.r")).toEqual({
      consumer: "c1",
      streamSeq: 42,
      deliverySeq: 7,
    });
    expect(parseAckSubject("telemetry.v1.api.c.d")).toBeUndefined();
    expect(parseAckSubject(undefined)).toBeUndefined();
  });

  it("refuses pull settings out of bounds, naming them", () => {
    const make = (o: object) =>
      new OrderedConsumer(bus.connection(), bus.jsm(), undefined, { stream: "S", filterSubject: "x", ...o }, logger);
    expect(() => make({ expiresMs: 500 })).toThrow(/expiresMs must be an integer from 1000 to 60000, got 500/);
    expect(() => make({ maxMessages: 1 })).toThrow(/maxMessages must be an integer from 2 to 10000/);
    expect(() => make({ expiresMs: 5000, maxMessages: 512 })).not.toThrow();
  });

  it("holds a subscriber through several pull expiries under bursts and quiet periods: every event once, in order, never kept waiting a second", async () => {
    const view = new LiveView(bus, "expiries");
    await sleep(300);
    // Quiet periods longer than a pull's life (5 s) let pulls expire idle; bursts started right after a quiet period
    // meet pulls expiring while the server delivers. A pull that ends unannounced would keep the view waiting
    // until it is noticed: 1.5 s here (missed heartbeats), 30–45 s with the nats client's ordered consumer.
    const quiet = [200, 5600, 50, 3000, 5200, 700, 6100, 100];
    let i = 0;
    for (const pause of quiet) {
      const burst = Array.from({ length: 400 }, () => i++);
      for (let k = 0; k < burst.length; k += 40) {
        await Promise.all(burst.slice(k, k + 40).map((j) => publishStored(bus, view, "expiries", j)));
      }
      await sleep(pause);
    }
    const ids = await view.stop(i, 20_000);
    expect(ids).toEqual(expected("expiries", i));
    expect(view.longestWaitMs).toBeLessThan(1000);
  }, 90_000);

  it("delivers a burst that reaches a pull right at its expiry at once (nats-server 2.9 may end such a pull without a word)", async () => {
    // Every pull request the live views send, seen as the server gets it: when it was sent and how long it lives.
    const firstPull = new Map<string, { at: number; expiresMs: number }>();
    const spy = bus.connection().subscribe(`$JS.API.CONSUMER.MSG.NEXT.${STREAMS.telemetry}.*`, {
      callback: (_err, m) => {
        const consumer = m.subject.split(".").at(-1) as string;
        if (!firstPull.has(consumer)) firstPull.set(consumer, { at: performance.now(), expiresMs: JSON.parse(m.string()).expires / 1e6 });
      },
    });
    const views: Array<{ view: LiveView; connection: string; pull: { at: number; expiresMs: number } }> = [];
    try {
      for (let k = 0; k < 27; k++) {
        const connection = `expiry${k}`;
        const known = new Set(firstPull.keys());
        const view = new LiveView(bus, connection);
        let pull: { at: number; expiresMs: number } | undefined;
        await until(
          () => {
            pull = [...firstPull].find(([name]) => !known.has(name))?.[1];
            return pull !== undefined;
          },
          { timeoutMs: 5000, intervalMs: 5, what: `the first pull of live view ${k}` },
        );
        views.push({ view, connection, pull: pull as { at: number; expiresMs: number } });
        await sleep(100);
      }
    } finally {
      spy.unsubscribe();
    }
    // Each view's burst reaches its (idle) first pull a few ms either side of its expiry; in about one case in
    // nine the server drops the pull without the 408 that says how many messages it left undelivered.
    await Promise.all(
      views.map(async ({ view, connection, pull }, k) => {
        const at = pull.at + pull.expiresMs + (k % 9) - 4;
        while (performance.now() < at - 20) await sleep(10);
        while (performance.now() < at) await sleep(0);
        await Promise.all(Array.from({ length: 100 }, (_, i) => publishStored(bus, view, connection, i)));
      }),
    );
    const seen = await Promise.all(views.map(({ view }) => view.stop(100, 5000)));
    expect(seen).toEqual(views.map(({ connection }) => expected(connection, 100)));
    // The nats client's ordered consumer kept 3 views of 27 waiting 15–30 s here (until its heartbeat check).
    expect(Math.max(...views.map(({ view }) => view.longestWaitMs))).toBeLessThan(1000);
  }, 120_000);

  it("recovers when its consumer is deleted behind its back, with no event lost or repeated", async () => {
    const before = new Set(await consumersOf(bus));
    const view = new LiveView(bus, "deleted");
    await sleep(300);
    let i = 0;
    for (; i < 40; i++) await publishStored(bus, view, "deleted", i);
    const own = (await consumersOf(bus)).filter((name) => !before.has(name));
    expect(own).toHaveLength(1);
    await bus.jsm().consumers.delete(STREAMS.telemetry, own[0]!);
    for (const end = Date.now() + 6000; Date.now() < end; i++) {
      await publishStored(bus, view, "deleted", i);
      await sleep(20);
    }
    const ids = await view.stop(i, 15_000);
    expect(ids).toEqual(expected("deleted", i));
    // Noticed by missed heartbeats (three of 500 ms) or the pull's end status; the nats client waited 30–45 s.
    expect(view.longestWaitMs).toBeLessThan(3000);
  }, 60_000);

  it("continues after the server restarts, from the event after the last one it handed out", async () => {
    const view = new LiveView(bus, "restart");
    await sleep(300);
    let i = 0;
    for (; i < 50; i++) await publishStored(bus, view, "restart", i);
    await nats.restart("SIGKILL");
    for (const end = Date.now() + 6000; Date.now() < end; i++) {
      await publishStored(bus, view, "restart", i);
      await sleep(20);
    }
    const ids = await view.stop(i, 20_000);
    expect(ids).toEqual(expected("restart", i));
  }, 90_000);
});

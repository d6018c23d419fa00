import { createClient } from "@connectrpc/connect";
import { Bus, jsonCodec, KvBucket } from "@meridian/bus";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { type IdigiEmulator, startIdigiEmulator } from "@meridian/emulator-idigi";
import {
  type CapturedLogs,
  captureLogger,
  expectExactlyOnce,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  testLogger,
  testTransport,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { idigiListenerConfig } from "../src/config.js";
import { LEASES_BUCKET, REPLICA_KEY_PREFIX, type SessionLease } from "../src/pipeline/manager.js";
import { type IdigiListener, startIdigiListener } from "../src/service.js";
import { collect, startTcpRelay } from "./harness.js";

/*
 * Scale-out: two listener instances on one nats-server share the recorded sessions through the leases bucket, each
 * running its fair share, and one takes over every session of the other when it dies.
 */

const logger = testLogger();
const LEASE_TTL_MS = 1_500;
/**
 * Every emit is whole blocks of this many events per monitor. A block that reaches one instance and is acked by nobody
 * is replayed to the next holder, whose fresh memory of event ids knows nothing: only the bus's Nats-Msg-Id window
 * recognises it, and only when the platform replays it in the same grouping (README, "Exactly once onto the bus").
 */
const BLOCK = 10;
const MONITORS = 4;

describe("two idigi-listener instances split the monitors through the session leases", () => {
  let nats: NatsServerHandle;
  let emu: IdigiEmulator;
  let emuLogs: CapturedLogs;
  let reader: Bus;
  const started: IdigiListener[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    // The emulator logs a ConnectRequest that takes a monitor from a connection still open: two instances at once.
    emuLogs = captureLogger({ service: "emulator" });
    emu = await startIdigiEmulator({ tls: false, logger: emuLogs.logger });
    reader = Bus.connect({ servers: nats.url, name: "test-reader", logger });
    await reader.ready;
  });

  afterAll(async () => {
    await Promise.all(started.map((l) => l.stop()));
    await reader?.close();
    await emu?.stop();
    await nats?.stop();
  });

  async function startInstance(instance: string, pushPort: number): Promise<IdigiListener> {
    const l = await startForTest(
      startIdigiListener,
      idigiListenerConfig,
      {
        NATS_URL: nats.url,
        IDIGI_URL: emu.httpUrl,
        IDIGI_PUSH_PORT: String(pushPort),
        IDIGI_USERNAME: "emulator",
        IDIGI_PASSWORD: "emulator",
        IDIGI_ALLOW_INSECURE: "true",
        INSTANCE_ID: instance,
      },
      { reconnectBackoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 }, startWaitMs: 5_000, leaseTtlMs: LEASE_TTL_MS },
      logger,
    );
    started.push(l);
    return l;
  }

  it("each runs half the monitors, never one monitor both; every event reaches the bus once; after one dies unannounced the other runs them all, nothing lost", async () => {
    const a = await startInstance("inst-a", emu.pushPort);
    const client = createClient(IdigiListenerService, testTransport(a.service.url));
    const since = new Date();
    const ids: string[] = [];
    for (let i = 0; i < MONITORS; i++) {
      const { monitor } = await client.createMonitor({
        topics: ["DataPoint"],
        batchSize: BLOCK,
        batchDurationSeconds: 0,
        startSession: true,
      });
      ids.push(monitor!.id);
    }
    expect(ids.filter((id) => a.sessions.has(id))).toHaveLength(MONITORS);
    const buses = ids.map((id) => collect(reader, id, since));
    const sent = new Map(ids.map((id) => [id, 0]));
    const emitBlock = () => {
      for (const id of ids) {
        emu.emit({ monitorId: Number(id), count: BLOCK });
        sent.set(id, sent.get(id)! + BLOCK);
      }
    };
    // Events keep coming while sessions move: a block every 100 ms to each monitor until stopped.
    let pumping = true;
    const pump = (async () => {
      while (pumping) {
        emitBlock();
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // B reaches the platform through a relay, so that its death can cut its push connections at once.
    const relayB = await startTcpRelay("127.0.0.1", emu.pushPort);
    const b = await startInstance("inst-b", relayB.port);

    // No monitor runs on both instances at once (sampled every 5 ms; the emulator's takeover log is the exact check).
    const both: string[] = [];
    const overlap = setInterval(() => {
      for (const id of ids) if (a.sessions.has(id) && b.sessions.has(id)) both.push(id);
    }, 5);
    const on = (l: IdigiListener) => ids.filter((id) => l.sessions.has(id));
    const connectedOn = async (l: IdigiListener, instance: string) =>
      (await l.sessions.list()).sessions.filter((s) => s.instance === instance && s.state?.state === "connected").length;
    const takeovers = () => emuLogs.lines.filter((l) => l["msg"] === "session taken over by a new connection");

    try {
      // A was alone and started all four; with B alive its share is two, and it hands two over.
      await until(
        async () =>
          on(a).length === 2 && on(b).length === 2 && (await connectedOn(a, "inst-a")) === 2 && (await connectedOn(b, "inst-b")) === 2,
        {
          timeoutMs: 15_000,
          what: "the sessions split two and two, connected",
        },
      );
      const splitA = on(a);
      const splitB = on(b);
      expect([...splitA, ...splitB].sort()).toEqual([...ids].sort());
      // The split holds: after at least two whole lease rounds more on each instance nothing moved.
      const roundsA = vi.spyOn(a.sessions, "maintain");
      const roundsB = vi.spyOn(b.sessions, "maintain");
      await until(() => roundsA.mock.calls.length >= 3 && roundsB.mock.calls.length >= 3, { timeoutMs: 10_000, what: "lease rounds" });
      expect(on(a)).toEqual(splitA);
      expect(on(b)).toEqual(splitB);
      const leases = new KvBucket(reader, LEASES_BUCKET, jsonCodec<SessionLease>());
      const replicaKeys = async () => (await leases.keys()).filter((k) => k.startsWith(REPLICA_KEY_PREFIX));
      expect(await replicaKeys(), JSON.stringify(await leases.entries())).toHaveLength(2);
      for (const id of splitB) expect((await leases.get(id))?.instance).toBe("inst-b");

      // B dies unannounced: its push connections drop and its bus connection is gone, so it publishes nothing more,
      // acks nothing more, renews no lease, releases none and removes no replica key. A runs all four once B's lease
      // and replica keys expire (lease TTL, plus up to one renewal interval to notice).
      // (B's dead pipelines stay in its memory from here on: the sampling ends with its life.)
      clearInterval(overlap);
      expect(both).toEqual([]);
      const bConnection = b.bus.connection();
      await Promise.all([relayB.cut(), bConnection.close()]);
      await until(async () => on(a).length === MONITORS && (await connectedOn(a, "inst-a")) === MONITORS, {
        timeoutMs: 4 * LEASE_TTL_MS,
        what: "A runs every session",
      });
      expect(await replicaKeys()).toHaveLength(1);
      for (const id of ids) expect((await leases.get(id))?.instance).toBe("inst-a");
      // What B's monitors recorded while nobody ran them came to A as a replay.
      for (const id of splitB) expect(emu.state().monitors.find((m) => String(m.id) === id)?.eventsReplayed).toBeGreaterThan(0);

      pumping = false;
      await pump;
      emitBlock();
      emitBlock();
      for (const [i, id] of ids.entries()) {
        const n = sent.get(id)!;
        expectExactlyOnce(await buses[i]!.exactly(n), n);
      }
      // The platform holds nothing unacked: every event was acked once stored.
      await until(() => ids.every((id) => emu.state().monitors.find((m) => String(m.id) === id)?.eventsAcked === sent.get(id)), {
        timeoutMs: 10_000,
        what: "every event acked at the platform",
      });
      expect(takeovers()).toEqual([]);
    } finally {
      pumping = false;
      clearInterval(overlap);
      await pump;
      await relayB.cut();
    }
  }, 60_000);
});

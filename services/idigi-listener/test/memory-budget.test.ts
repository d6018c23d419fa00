import { createClient } from "@connectrpc/connect";
import { Bus } from "@meridian/bus";
import { Compression, IdigiListenerService, SessionState } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { type IdigiEmulator, startIdigiEmulator } from "@meridian/emulator-idigi";
import { captureLogger, expectExactlyOnce, startForTest, testLogger, testTransport, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idigiListenerConfig, MIN_MONITOR_MEMORY_BYTES } from "../src/config.js";
import { type IdigiListener, startIdigiListener } from "../src/service.js";
import { collect, metric, monitorState, type OwnNatsServer, startOwnNatsServer } from "./harness.js";

/*
 * IDIGI_MONITOR_MEMORY_BYTES: while the bus is down nothing is acked, so a monitor's blocks pile up in the listener
 * until its budget stops the listener reading the socket; the platform keeps the rest. Once the bus is back every
 * event arrives, once.
 */

const BUDGET = MIN_MONITOR_MEMORY_BYTES;
/** FileData records of about 100 KB, one per block, uncompressed: each block holds about 200 KB (received + inflated). */
const RECORD = { id: { fdName: "big.bin", fdPath: "/db/budget/" }, fdData: "A".repeat(100_000) };
/** About 20 MB in all: far beyond the budget plus what loopback socket buffers absorb. */
const EVENTS = 200;

describe("idigi-listener: a monitor's memory budget", () => {
  let nats: OwnNatsServer;
  let emu: IdigiEmulator;
  let l: IdigiListener;
  let reader: Bus;

  beforeAll(async () => {
    nats = await startOwnNatsServer();
    emu = await startIdigiEmulator({ tls: false });
  });

  afterAll(async () => {
    await l?.stop();
    await reader?.close();
    await emu?.stop();
    nats?.close();
  });

  it("at the budget the socket is not read (the platform keeps the data; status and metric say so); once the bus is back all arrive exactly once", async () => {
    const { logger, lines } = captureLogger();
    l = await startForTest(
      startIdigiListener,
      idigiListenerConfig,
      {
        NATS_URL: nats.url,
        IDIGI_URL: emu.httpUrl,
        IDIGI_PUSH_PORT: String(emu.pushPort),
        IDIGI_USERNAME: "emulator",
        IDIGI_PASSWORD: "emulator",
        IDIGI_ALLOW_INSECURE: "true",
        IDIGI_MONITOR_MEMORY_BYTES: String(BUDGET),
        // Only the byte budget is to stop reading here.
        IDIGI_MAX_UNACKED: "10000",
        INSTANCE_ID: "budget",
      },
      { reconnectBackoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 }, startWaitMs: 5_000 },
      logger,
    );
    reader = Bus.connect({ servers: nats.url, name: "budget-reader", logger: testLogger() });
    await reader.ready;
    const client = createClient(IdigiListenerService, testTransport(l.service.url));
    const { monitor } = await client.createMonitor({
      topics: ["FileData"],
      compression: Compression.NONE,
      batchSize: 1,
      batchDurationSeconds: 0,
      startSession: true,
    });
    const id = monitor!.id;
    const session = async () => (await client.listSessions({})).sessions.find((s) => s.monitorId === id)!;
    expect(await session()).toMatchObject({ state: SessionState.CONNECTED, memoryBudgetBytes: BigInt(BUDGET), atMemoryBudget: false });

    nats.down();
    await until(() => !l.bus.connected, { timeoutMs: 10_000, what: "bus down" });
    emu.emit({ monitorId: Number(id), count: EVENTS, record: RECORD });

    await until(async () => (await session()).atMemoryBudget, { timeoutMs: 10_000, what: "monitor at its budget" });
    // Let the socket buffers fill: the emulator's writes back up and it stops sending.
    await new Promise((r) => setTimeout(r, 1_500));
    // The bus is down, so the sessions bucket cannot be read: ListSessions answers with what runs here.
    expect((await client.listSessions({})).recordsUnavailable).toBe(true);
    const held = await session();
    const platform = await monitorState(emu, id);
    const block = 2 * RECORD.fdData.length + 2_000;
    console.log(
      JSON.stringify({
        test: "idigi memory budget",
        budgetBytes: BUDGET,
        heldBytes: Number(held.heldBytes),
        receivedByListenerAboutBlocks: Math.round(Number(held.heldBytes) / (block / 2)),
        sentByPlatform: platform.eventsSent,
        queuedAtPlatform: platform.queued,
      }),
    );
    expect(held.atMemoryBudget).toBe(true);
    expect(held.memoryBudgetReached).toBeGreaterThanOrEqual(1);
    expect(Number(held.heldBytes)).toBeGreaterThanOrEqual(BUDGET);
    // The budget plus at most the block that reached it and the frame bytes already read behind it.
    expect(Number(held.heldBytes)).toBeLessThanOrEqual(BUDGET + 2 * block);
    // Back-pressure reached the platform: it holds what it could not send, and nothing was acked.
    expect(platform.queued).toBeGreaterThan(0);
    expect(platform.eventsSent).toBeLessThan(EVENTS);
    expect(platform.eventsAcked).toBe(0);
    expect(await metric(l.service.url, "meridian_idigi_monitor_at_memory_budget", { monitor: id })).toBe(1);
    expect(await metric(l.service.url, "meridian_idigi_monitor_held_bytes", { monitor: id })).toBe(Number(held.heldBytes));
    expect(await metric(l.service.url, "meridian_idigi_monitor_memory_budget_bytes")).toBe(BUDGET);
    expect(lines.some((x) => x["level"] === 40 && x["monitorId"] === id && String(x["msg"]).includes("memory budget"))).toBe(true);

    nats.up();
    await until(() => reader.connected && l.bus.connected, { timeoutMs: 15_000, what: "bus back" });
    const bus = collect(reader, id, new Date(Date.now() - 60_000));
    expectExactlyOnce(await bus.exactly(EVENTS, 60_000), EVENTS);
    await until(async () => (await monitorState(emu, id)).eventsAcked === EVENTS, { timeoutMs: 20_000, what: "everything acked" });
    expect((await client.listSessions({})).recordsUnavailable).toBe(false);
    const after = await session();
    expect(after).toMatchObject({ atMemoryBudget: false, heldBytes: 0n, receivedEvents: BigInt(EVENTS), deliveredEvents: 0n });
    expect(after.skippedEvents + after.duplicateEvents).toBe(BigInt(EVENTS));
    expect(await metric(l.service.url, "meridian_idigi_monitor_at_memory_budget", { monitor: id })).toBe(0);
    expect(await metric(l.service.url, "meridian_idigi_monitor_memory_budget_reached_total", { monitor: id })).toBeGreaterThanOrEqual(1);
  }, 90_000);
});

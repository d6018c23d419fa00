import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type IdigiEmulator, startIdigiEmulator } from "../src/index.js";
import { createXmlMonitor, USER } from "./harness.js";
import { connectRequest, jsonMsgs, type RxConnectResponse, specAck, WireClient } from "./wire.js";

let emu: IdigiEmulator;
const clients: WireClient[] = [];

beforeAll(async () => {
  emu = await startIdigiEmulator({ users: [USER], tls: false });
});
afterAll(async () => {
  await emu.stop();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fetch(`${emu.httpUrl}/_emulator/faults`, { method: "DELETE" });
  await fetch(`${emu.httpUrl}/_emulator/reset`, { method: "POST" });
});

async function createMonitor(extra = ""): Promise<number> {
  const body = `<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>1</monBatchSize><monBatchDuration>0</monBatchDuration>${extra}</Monitor>`;
  return createXmlMonitor(emu.httpUrl, body);
}

async function session(id: number) {
  const { client, status } = await WireClient.session(emu.pushPort, USER.username, USER.password, id);
  clients.push(client);
  expect(status).toBe(200);
  return client;
}

async function fault(body: Record<string, unknown>) {
  const r = await fetch(`${emu.httpUrl}/_emulator/faults`, { method: "POST", body: JSON.stringify(body) });
  expect(r.status).toBe(200);
  return r.json();
}

const emit = (monitorId: number, count: number) =>
  fetch(`${emu.httpUrl}/_emulator/emit`, { method: "POST", body: JSON.stringify({ monitorId, count }) }).then((r) => r.json());

describe("faults, seen from the client", () => {
  it("dropMidFrame: the client gets exactly N bytes of the next PublishMessage, then EOF", async () => {
    const id = await createMonitor();
    const c = await session(id);
    await fault({ type: "dropMidFrame", afterBytes: 9, monitorId: id });
    await emit(id, 1);
    await c.waitClosed();
    expect(c.bytesReceived).toBe(10 + 9); // ConnectResponse + 9 bytes of the frame
    expect(c.publishes).toHaveLength(0);
    const tail = Buffer.concat(c.received).subarray(10);
    expect(tail.subarray(0, 2).toString("hex")).toBe("0003");
  });

  it("dropMidFrame then reconnect: the cut block is replayed (explicit + auto-replay)", async () => {
    const id = await createMonitor("<monAckOption>explicit</monAckOption><monAutoReplayOnConnect>true</monAutoReplayOnConnect>");
    const c = await session(id);
    await fault({ type: "dropMidFrame", afterBytes: 20 });
    await emit(id, 1);
    await c.waitClosed();
    const c2 = await session(id);
    const [p] = await c2.waitPublishes(1);
    expect(jsonMsgs(p!)[0]!.replay).toBe("true");
  });

  it("dropAfterBatch: the whole block arrives, then EOF before the ack; the block is replayed on reconnect", async () => {
    const id = await createMonitor("<monAckOption>explicit</monAckOption><monAutoReplayOnConnect>true</monAutoReplayOnConnect>");
    const c = await session(id);
    await fault({ type: "dropAfterBatch" });
    await emit(id, 1);
    const [first] = await c.waitPublishes(1);
    await c.waitClosed();
    c.send(specAck(first!.blockId)); // too late: the socket is gone
    const c2 = await session(id);
    const [again] = await c2.waitPublishes(1);
    const a = jsonMsgs(first!)[0]!;
    const b = jsonMsgs(again!)[0]!;
    expect(b.topic).toBe(a.topic);
    expect((b.DataPoint as { id: string }).id).toBe((a.DataPoint as { id: string }).id);
    expect(b.replay).toBe("true");
  });

  it("stall: nothing is sent for N ms, then the queued blocks arrive", async () => {
    const id = await createMonitor();
    const c = await session(id);
    const t0 = Date.now();
    await fault({ type: "stall", ms: 1500 });
    await emit(id, 3);
    await sleep(200);
    if (Date.now() - t0 < 1300) expect(c.publishes).toHaveLength(0);
    await c.waitPublishes(3, 5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1450);
    expect(c.closed).toBe(false);
  });

  it("slowReads: acks are read late, so with a window of one the next block waits for the delay", async () => {
    const e2 = await startIdigiEmulator({ users: [USER], tls: false, maxInFlight: 1 });
    try {
      const body =
        "<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>1</monBatchSize><monAckOption>explicit</monAckOption></Monitor>";
      const id = await createXmlMonitor(e2.httpUrl, body);
      const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(client);
      client.autoAck = "spec";
      // A delay far longer than a loaded machine's stalls, so "no longer delayed" below needs no tight bound.
      const delayMs = 1500;
      e2.setFault({ type: "slowReads", delayMs });
      const t0 = Date.now();
      e2.emit({ monitorId: id, count: 3 });
      await client.waitPublishes(3, 15_000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2 * delayMs - 50); // blocks 2 and 3 each waited for a late ack
      e2.clearFaults();
      // The last ack may still be in the slow path when the fault is cleared: once it is read, nothing is late.
      await expect.poll(() => e2.state().monitors.find((m) => m.id === id)?.unackedBlocks, { timeout: 10_000, interval: 20 }).toBe(0);
      const t1 = Date.now();
      e2.emit({ monitorId: id, count: 3 });
      await client.waitPublishes(6, 15_000);
      // Still slow, blocks 5 and 6 would each wait the delay (at least 2 × 1500 ms); cleared, a few ms.
      expect(Date.now() - t1).toBeLessThan(2 * delayMs - 500);
    } finally {
      await e2.stop();
    }
  });

  it("refuseConnect: the next ConnectRequest gets the given status; silent closes with no reply", async () => {
    const id = await createMonitor();
    await fault({ type: "refuseConnect", status: 503 });
    const a = await WireClient.open(emu.pushPort);
    clients.push(a);
    a.send(connectRequest(USER.username, USER.password, id));
    await a.waitClosed();
    expect((a.frames[0] as RxConnectResponse).status).toBe(503);
    await fault({ type: "refuseConnect", silent: true });
    const b = await WireClient.open(emu.pushPort);
    clients.push(b);
    b.send(connectRequest(USER.username, USER.password, id));
    await b.waitClosed();
    expect(b.bytesReceived).toBe(0);
    // one-shot: the third attempt succeeds
    await session(id);
  });

  it("splitFrames: frames arrive in small pieces and still decode", async () => {
    const id = await createMonitor();
    const c = await session(id);
    let chunks = 0;
    c.socket.on("data", () => chunks++);
    await fault({ type: "splitFrames", chunkBytes: 7, delayMs: 5 });
    await emit(id, 2);
    const pubs = await c.waitPublishes(2, 5000);
    expect(pubs.map((p) => p.blockId)).toEqual([0, 1]);
    expect(chunks).toBeGreaterThan(10);
  });

  it("badFrameType: one frame of an unexpected type precedes the next PublishMessage", async () => {
    const id = await createMonitor();
    const c = await session(id);
    await fault({ type: "badFrameType", frameType: 9 });
    await emit(id, 1);
    await c.waitPublishes(1);
    expect(c.frames.map((f) => f.type)).toEqual([2, 9, 3]);
  });

  it("DELETE /_emulator/faults clears armed faults and stalls", async () => {
    const id = await createMonitor();
    const c = await session(id);
    await fault({ type: "dropMidFrame", afterBytes: 3 });
    await fault({ type: "stall", ms: 10_000 });
    const state = (await (await fetch(`${emu.httpUrl}/_emulator/state`)).json()) as { faults: Array<{ spec: { type: string } }> };
    expect(state.faults.map((f) => f.spec.type)).toEqual(["dropMidFrame"]);
    await fetch(`${emu.httpUrl}/_emulator/faults`, { method: "DELETE" });
    await emit(id, 1);
    await c.waitPublishes(1, 1000);
    expect(c.closed).toBe(false);
  });
});

describe("strict ack mode", () => {
  it("with acceptLegacyAck false a legacy ack is not taken as an ack (unverified: the real server's tolerance)", async () => {
    const e2 = await startIdigiEmulator({ users: [USER], tls: false, acceptLegacyAck: false });
    try {
      const body =
        "<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>1</monBatchSize><monAckOption>explicit</monAckOption></Monitor>";
      const id = await createXmlMonitor(e2.httpUrl, body);
      const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(client);
      client.autoAck = "legacy";
      e2.emit({ monitorId: id, count: 1 });
      await client.waitPublishes(1);
      await sleep(100);
      const m = e2.state().monitors.find((x) => x.id === id)!;
      expect(m.blocksAcked).toBe(0);
      expect(m.legacyAcks).toBe(0);
    } finally {
      await e2.stop();
    }
  });
});

describe("switchable server policies", () => {
  async function withEmu(
    opts: Parameters<typeof startIdigiEmulator>[0],
    extra: string,
    fn: (e: IdigiEmulator, id: number) => Promise<void>,
  ) {
    const e2 = await startIdigiEmulator({ users: [USER], tls: false, ...opts });
    try {
      const body = `<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>1</monBatchSize>${extra}</Monitor>`;
      await fn(e2, await createXmlMonitor(e2.httpUrl, body));
    } finally {
      await e2.stop();
    }
  }

  it("ackTimeoutMs closes a session whose block stays unacked; the block is replayed (unverified: what DRM does)", async () => {
    await withEmu(
      { ackTimeoutMs: 200 },
      "<monAckOption>explicit</monAckOption><monAutoReplayOnConnect>true</monAutoReplayOnConnect>",
      async (e2, id) => {
        const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
        clients.push(client);
        e2.emit({ monitorId: id, count: 1 });
        await client.waitPublishes(1);
        await client.waitClosed(2000);
        const again = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
        clients.push(again.client);
        const [p] = await again.client.waitPublishes(1);
        again.client.send(specAck(p!.blockId));
        expect(jsonMsgs(p!)[0]!.replay).toBe("true");
        await sleep(400);
        expect(again.client.closed).toBe(false);
      },
    );
  });

  it("compressMinBytes leaves small payloads of a zlib monitor uncompressed (unverified: whether DRM does this)", async () => {
    await withEmu({ compressMinBytes: 100_000 }, "<monCompression>zlib</monCompression>", async (e2, id) => {
      const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(client);
      e2.emit({ monitorId: id, count: 1 });
      const [p] = await client.waitPublishes(1);
      expect(p!.compression).toBe(0);
      expect(JSON.parse(p!.text).Document.Msg.topic).toMatch(/DataPoint/);
    });
  });

  it("duplicateSession reject refuses a second connection for the same monitor (unverified policy)", async () => {
    await withEmu({ duplicateSession: "reject" }, "", async (e2, id) => {
      const first = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(first.client);
      const second = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(second.client);
      expect(second.status).toBe(400);
      await second.client.waitClosed();
      expect(first.client.closed).toBe(false);
    });
  });

  it("closes a connection that sends no ConnectRequest within the handshake timeout", async () => {
    await withEmu({ handshakeTimeoutMs: 150 }, "", async (e2) => {
      const c = await WireClient.open(e2.pushPort);
      clients.push(c);
      await c.waitClosed(2000);
      expect(c.bytesReceived).toBe(0);
    });
  });

  it("connectStatuses overrides the refusal codes, e.g. 404 for an unknown monitor", async () => {
    await withEmu({ connectStatuses: { unknownMonitor: 404 } }, "", async (e2) => {
      const c = await WireClient.open(e2.pushPort);
      clients.push(c);
      c.send(connectRequest(USER.username, USER.password, 99));
      await c.waitClosed();
      expect((c.frames[0] as RxConnectResponse).status).toBe(404);
    });
  });
});

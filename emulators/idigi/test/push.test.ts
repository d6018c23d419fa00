import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type IdigiEmulator, startIdigiEmulator } from "../src/index.js";
import { basic, createXmlMonitor, OTHER, USER } from "./harness.js";
import { connectRequest, jsonMsgs, legacyAck, type RxConnectResponse, specAck, WireClient } from "./wire.js";

let emu: IdigiEmulator;
const clients: WireClient[] = [];

beforeAll(async () => {
  emu = await startIdigiEmulator({ users: [USER, OTHER] });
});
afterAll(async () => {
  await emu.stop();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fetch(`${emu.httpUrl}/_emulator/reset`, { method: "POST" });
});

interface MonOpts {
  topics?: string;
  batchSize?: number;
  batchDuration?: number;
  format?: "json" | "xml";
  compression?: "none" | "zlib" | "gzip";
  ack?: "explicit" | "off";
  replay?: boolean;
  transport?: string;
  as?: typeof USER;
}

async function createMonitor(o: MonOpts = {}): Promise<number> {
  const fields: Record<string, string> = {
    monTopic: o.topics ?? "DataPoint",
    monTransportType: o.transport ?? "tcp",
    monBatchSize: String(o.batchSize ?? 1),
    monBatchDuration: String(o.batchDuration ?? 0),
    monFormatType: o.format ?? "json",
    monCompression: o.compression ?? "none",
  };
  if (o.ack) fields.monAckOption = o.ack;
  if (o.replay !== undefined) fields.monAutoReplayOnConnect = String(o.replay);
  if (fields.monTransportType === "http") fields.monTransportUrl = "http://127.0.0.1:9/hook";
  const body = `<Monitor>${Object.entries(fields)
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join("")}</Monitor>`;
  return createXmlMonitor(emu.httpUrl, body, o.as ?? USER);
}

async function session(monitorId: number, opts: { tls?: boolean; user?: string; pass?: string } = {}) {
  const { client, status } = await WireClient.session(
    opts.tls ? emu.pushTlsPort : emu.pushPort,
    opts.user ?? USER.username,
    opts.pass ?? USER.password,
    monitorId,
    {
      tls: opts.tls ?? false,
      ca: emu.caPem,
    },
  );
  clients.push(client);
  return { client, status };
}

async function emit(body: Record<string, unknown>) {
  const r = await fetch(`${emu.httpUrl}/_emulator/emit`, { method: "POST", body: JSON.stringify(body) });
  expect(r.status).toBe(200);
  return (await r.json()) as { emitted: number; deliveries: Record<string, number> };
}

async function monitorState(id: number) {
  const s = (await (await fetch(`${emu.httpUrl}/_emulator/state`)).json()) as { monitors: Array<Record<string, unknown> & { id: number }> };
  return s.monitors.find((m) => m.id === id)!;
}

async function monStatus(id: number): Promise<string> {
  const r = await fetch(`${emu.httpUrl}/ws/Monitor/${id}.json`, { headers: { Authorization: basic(USER.username, USER.password) } });
  return ((await r.json()) as { items: Array<{ monStatus: string }> }).items[0]!.monStatus;
}

/** Opens a raw socket, sends bytes, returns the ConnectResponse bytes (if any) and whether the server closed. */
async function rawConnect(bytes: Buffer) {
  const c = await WireClient.open(emu.pushPort);
  clients.push(c);
  c.send(bytes);
  await c.waitClosed(3000);
  const resp = c.frames[0] as RxConnectResponse | undefined;
  return { resp, bytes: Buffer.concat(c.received), closed: c.closed };
}

describe("ConnectRequest → ConnectResponse", () => {
  it("answers 200 in one 10-byte frame for good credentials and a tcp monitor, and the monitor goes ACTIVE", async () => {
    const id = await createMonitor();
    expect(await monStatus(id)).toBe("INACTIVE");
    const { client, status } = await session(id);
    expect(status).toBe(200);
    expect((client.frames[0] as RxConnectResponse).raw).toEqual(Buffer.from("0002000000040" + "0c80001", "hex"));
    expect(await monStatus(id)).toBe("ACTIVE");
  });

  it("bad credentials → 403 then close (unverified: 403 for auth failure)", async () => {
    const id = await createMonitor();
    const r = await rawConnect(connectRequest(USER.username, "wrong", id));
    expect(r.resp?.status).toBe(403);
    expect(r.bytes.length).toBe(10);
    expect(r.closed).toBe(true);
  });

  it("unknown monitor → 400 then close (unverified: 400 rather than 404)", async () => {
    const r = await rawConnect(connectRequest(USER.username, USER.password, 424242));
    expect(r.resp?.status).toBe(400);
    expect(r.closed).toBe(true);
  });

  it("a monitor of another customer → 403 (unverified)", async () => {
    const id = await createMonitor({ as: OTHER });
    const r = await rawConnect(connectRequest(USER.username, USER.password, id));
    expect(r.resp?.status).toBe(403);
  });

  it("an http monitor → 400 (unverified)", async () => {
    const id = await createMonitor({ transport: "http" });
    const r = await rawConnect(connectRequest(USER.username, USER.password, id));
    expect(r.resp?.status).toBe(400);
  });

  it("protocol version 2 → 400 then close (unverified: which status)", async () => {
    const id = await createMonitor();
    const r = await rawConnect(connectRequest(USER.username, USER.password, id, 2));
    expect(r.resp?.status).toBe(400);
    expect(r.resp?.version).toBe(1);
  });

  it("a first frame that is not a ConnectRequest → 400 then close", async () => {
    const r = await rawConnect(specAck(1));
    expect(r.resp?.status).toBe(400);
  });

  it("accepts a ConnectRequest split across many writes", async () => {
    const id = await createMonitor();
    const c = await WireClient.open(emu.pushPort);
    clients.push(c);
    for (const b of connectRequest(USER.username, USER.password, id)) {
      c.send(Buffer.from([b]));
      await sleep(1);
    }
    const resp = await c.waitFor(() => c.frames[0] as RxConnectResponse | undefined);
    expect(resp.status).toBe(200);
  });

  it("works over TLS on the TLS port, verified against the emulator CA (file and GET /_emulator/ca.pem)", async () => {
    const pem = await (await fetch(`${emu.httpUrl}/_emulator/ca.pem`)).text();
    expect(pem).toBe(emu.caPem);
    expect(pem).toContain("BEGIN CERTIFICATE");
    const id = await createMonitor();
    const { client, status } = await session(id, { tls: true });
    expect(status).toBe(200);
    await emit({ monitorId: id, count: 2 });
    const pubs = await client.waitPublishes(2);
    expect(pubs.map((p) => p.blockId)).toEqual([0, 1]);
  });

  it("a second connection for the same monitor takes over; the first is closed (unverified policy)", async () => {
    const id = await createMonitor();
    const a = await session(id);
    const b = await session(id);
    expect(b.status).toBe(200);
    await a.client.waitClosed();
    await emit({ monitorId: id, count: 1 });
    await b.client.waitPublishes(1);
  });
});

describe("PublishMessage", () => {
  it("sends block ids 0,1,2… per connection (unverified: restart at 0 on reconnect), count, format json, no compression, size == 10 + payloadSize", async () => {
    const id = await createMonitor({ batchSize: 1 });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 3 });
    const pubs = await client.waitPublishes(3);
    expect(pubs.map((p) => p.blockId)).toEqual([0, 1, 2]);
    for (const p of pubs) {
      expect(p.count).toBe(1);
      expect(p.compression).toBe(0);
      expect(p.format).toBe(1);
      expect(p.raw.readUInt32BE(2)).toBe(10 + p.payloadSize);
      expect(p.raw.length).toBe(16 + p.payloadSize);
    }
    // batch of one: Msg is a plain object, not an array
    const doc = JSON.parse(pubs[0]!.text);
    expect(Array.isArray(doc.Document.Msg)).toBe(false);
    const msg = doc.Document.Msg;
    expect(Object.keys(msg)).toEqual(["timestamp", "topic", "operation", "group", "DataPoint"]);
    expect(msg.topic).toMatch(/^7603\/DataPoint\/00000000-00000000-00409DFF-FF000001\/temperature$/);
    expect(msg.operation).toBe("INSERTION");
    expect(msg.timestamp).toBe("2024-01-01T00:00:00.000Z");
    expect(msg.DataPoint).toMatchObject({ cstId: 7603, streamId: "00000000-00000000-00409DFF-FF000001/temperature", data: "20.0" });
    // block ids restart at 0 on a new connection
    client.close();
    const again = await session(id);
    await emit({ monitorId: id, count: 1 });
    expect((await again.client.waitPublishes(1))[0]!.blockId).toBe(0);
  });

  it("zlib (monCompression gzip) → compression byte 1, a 78 9C zlib stream, payloadSize = compressed length (unverified: small payloads compressed too)", async () => {
    const id = await createMonitor({ compression: "gzip", batchSize: 5 });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 5 });
    const [p] = await client.waitPublishes(1);
    expect(p!.compression).toBe(1);
    expect(p!.raw.subarray(16, 18).toString("hex")).toBe("789c");
    expect(p!.payloadSize).toBe(p!.raw.length - 16);
    expect(jsonMsgs(p!)).toHaveLength(5);
  });

  it("a batch of several events → Msg is an array", async () => {
    const id = await createMonitor({ batchSize: 4 });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 4 });
    const [p] = await client.waitPublishes(1);
    expect(p!.count).toBe(4);
    expect(Array.isArray(JSON.parse(p!.text).Document.Msg)).toBe(true);
  });

  it("xml format → format byte 0, <Document><Msg topic= operation= timestamp=>…", async () => {
    const id = await createMonitor({ format: "xml", topics: "DeviceCore", batchSize: 2 });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 2 });
    const [p] = await client.waitPublishes(1);
    expect(p!.format).toBe(0);
    expect(p!.count).toBe(2);
    expect(p!.text).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?><Document><Msg topic="7603\/DeviceCore\/7000\/0" operation="update" timestamp="[^"]+Z"><DeviceCore>/,
    );
    expect(p!.text.match(/<Msg /g)).toHaveLength(2);
    expect(p!.text.endsWith("</Msg></Document>")).toBe(true);
  });

  it("emits on each of the monitor's topics, and routes untargeted events only to matching subscriptions", async () => {
    const a = await createMonitor({ topics: "DataPoint,DeviceCore,DataStream,FileData", batchSize: 1 });
    const b = await createMonitor({ topics: "DeviceCore[U]", batchSize: 1 });
    const ca = (await session(a)).client;
    const cb = (await session(b)).client;
    await emit({ monitorId: a, count: 4 });
    const types = (await ca.waitPublishes(4)).map((p) => (jsonMsgs(p)[0]!.topic as string).split("/")[1]);
    expect(types).toEqual(["DataPoint", "DeviceCore", "DataStream", "FileData"]);
    const r = await emit({ topic: "DeviceCore", count: 2 });
    expect(r.deliveries).toEqual({ [a]: 2, [b]: 2 });
    await cb.waitPublishes(2);
    const r2 = await emit({ topic: "DeviceCore", operation: "DELETE", count: 1 });
    expect(r2.deliveries).toEqual({ [a]: 1 });
  });
});

describe("acks", () => {
  it("accepts the spec 10-byte ack and the legacy 6-byte ack on one connection", async () => {
    const id = await createMonitor({ ack: "explicit" });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 4 });
    const pubs = await client.waitPublishes(4);
    client.send(Buffer.concat([specAck(pubs[0]!.blockId), legacyAck(pubs[1]!.blockId), specAck(pubs[2]!.blockId)]));
    client.send(legacyAck(pubs[3]!.blockId));
    await expect.poll(async () => (await monitorState(id)).blocksAcked, { timeout: 3000 }).toBe(4);
    const st = await monitorState(id);
    expect(st).toMatchObject({ specAcks: 2, legacyAcks: 2, unackedBlocks: 0, blocksSent: 4, eventsAcked: 4 });
    expect(st.ackedBlockIds).toEqual([0, 1, 2, 3]);
    expect(client.closed).toBe(false);
  });

  it("keeps several unacked blocks in flight by default and lists them as pending", async () => {
    const id = await createMonitor({ ack: "explicit" });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 5 });
    await client.waitPublishes(5);
    client.send(specAck(2));
    await expect.poll(async () => (await monitorState(id)).pendingBlocks, { timeout: 3000 }).toEqual([0, 1, 3, 4]);
  });

  it("replays un-acked blocks after reconnect, flagged replay, before new events (explicit + auto-replay; unverified: unacked blocks are part of the replay)", async () => {
    const id = await createMonitor({ ack: "explicit", replay: true, batchSize: 2 });
    const first = (await session(id)).client;
    await emit({ monitorId: id, count: 6 });
    const pubs = await first.waitPublishes(3);
    first.send(specAck(pubs[0]!.blockId)); // seq 0,1 delivered; 2..5 not acked
    await expect.poll(async () => (await monitorState(id)).blocksAcked).toBe(1);
    first.close();
    await expect.poll(() => monStatus(id)).toBe("SUSPENDED");
    await emit({ monitorId: id, count: 1 }); // seq 6 happens while disconnected
    const second = (await session(id)).client;
    await emit({ monitorId: id, count: 2 }); // seq 7, 8 live
    const got = await second.waitEvents(5);
    const msgs = got.flatMap(jsonMsgs);
    const values = msgs.map((m) => (m.DataPoint as { data: string }).data);
    expect(values).toEqual(["20.2", "20.3", "20.4", "20.5", "20.6", "20.7", "20.8"]);
    expect(msgs.map((m) => m.replay ?? null)).toEqual(["true", "true", "true", "true", "true", null, null]);
    expect(got[0]!.blockId).toBe(0);
  });

  it("without auto-replay, events during a disconnect are dropped and the monitor is INACTIVE", async () => {
    const id = await createMonitor({ ack: "explicit", replay: false });
    const first = (await session(id)).client;
    await emit({ monitorId: id, count: 2 });
    await first.waitPublishes(2);
    first.close();
    await expect.poll(() => monStatus(id)).toBe("INACTIVE");
    await emit({ monitorId: id, count: 3 });
    const second = (await session(id)).client;
    await emit({ monitorId: id, count: 1 });
    const [p] = await second.waitPublishes(1);
    expect(jsonMsgs(p!)[0]!.replay).toBeUndefined();
    await sleep(100);
    expect(second.publishes).toHaveLength(1);
    const st = await monitorState(id);
    expect(st.eventsDropped).toBe(5);
  });

  it("ack option off + auto-replay: sent blocks count as delivered, only missed events are replayed", async () => {
    const id = await createMonitor({ ack: "off", replay: true });
    const first = (await session(id)).client;
    await emit({ monitorId: id, count: 2 });
    await first.waitPublishes(2);
    first.close();
    await expect.poll(() => monStatus(id)).toBe("SUSPENDED");
    await emit({ monitorId: id, count: 2 });
    const second = (await session(id)).client;
    const pubs = await second.waitPublishes(2);
    expect(pubs.flatMap(jsonMsgs).map((m) => [(m.DataPoint as { data: string }).data, m.replay])).toEqual([
      ["20.2", "true"],
      ["20.3", "true"],
    ]);
    await sleep(100);
    expect(second.publishes).toHaveLength(2);
  });

  it("block ids wrap from 0xFFFF to 0 (unverified: the wrap point)", async () => {
    const e2 = await startIdigiEmulator({ users: [USER], tls: false, firstBlockId: 0xfffe });
    try {
      const body =
        "<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>1</monBatchSize></Monitor>";
      const id = await createXmlMonitor(e2.httpUrl, body);
      const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(client);
      e2.emit({ monitorId: id, count: 4 });
      expect((await client.waitPublishes(4)).map((p) => p.blockId)).toEqual([0xfffe, 0xffff, 0, 1]);
    } finally {
      await e2.stop();
    }
  });

  it("a non-200 ack leaves the block unacked and it is replayed on reconnect (unverified: no client sends one)", async () => {
    const id = await createMonitor({ ack: "explicit", replay: true });
    const first = (await session(id)).client;
    await emit({ monitorId: id, count: 2 });
    await first.waitPublishes(2);
    first.send(Buffer.concat([specAck(0, 500), specAck(1, 200)]));
    await expect.poll(async () => (await monitorState(id)).blocksNacked).toBe(1);
    expect((await monitorState(id)).pendingBlocks).toEqual([0]);
    first.close();
    await expect.poll(() => monStatus(id)).toBe("SUSPENDED");
    const second = (await session(id)).client;
    const [p] = await second.waitPublishes(1);
    expect(jsonMsgs(p!).map((m) => [(m.DataPoint as { data: string }).data, m.replay])).toEqual([["20.0", "true"]]);
  });

  it("max in flight 1 waits for each ack before the next block", async () => {
    const e2 = await startIdigiEmulator({ users: [USER], tls: false, maxInFlight: 1 });
    try {
      const body =
        "<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>1</monBatchSize><monAckOption>explicit</monAckOption></Monitor>";
      const id = await createXmlMonitor(e2.httpUrl, body);
      const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(client);
      e2.emit({ monitorId: id, count: 3 });
      await client.waitPublishes(1);
      await sleep(100);
      expect(client.publishes).toHaveLength(1);
      client.send(specAck(0));
      await client.waitPublishes(2);
      client.send(legacyAck(1));
      await client.waitPublishes(3);
    } finally {
      await e2.stop();
    }
  });
});

describe("batching", () => {
  it("by size: 250 events at batch size 100 → blocks of 100, 100, then 50 after the duration", async () => {
    const id = await createMonitor({ batchSize: 100, batchDuration: 1 });
    const { client } = await session(id);
    const t0 = Date.now();
    await emit({ monitorId: id, count: 250 });
    // The full blocks went out while the emit was handled, without waiting for the duration (read in a later
    // request, so no clock is involved: a slow machine can only add the third block too, never fewer than two).
    expect((await monitorState(id)).blocksSent).toBeGreaterThanOrEqual(2);
    const two = await client.waitPublishes(2);
    expect(two.map((p) => p.count)).toEqual([100, 100]);
    const three = await client.waitPublishes(3, 5000);
    expect(three[2]!.count).toBe(50);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(jsonMsgs(three[0]!)).toHaveLength(100);
  });

  it("by duration: 3 events at batch size 100, duration 3 s → one block of 3 after ~3 s", async () => {
    // A duration of 3 s rather than 1: the second emit 300 ms in and the check after it have 2.7 s to spare on a
    // loaded machine before the block is due.
    const id = await createMonitor({ batchSize: 100, batchDuration: 3 });
    const { client } = await session(id);
    const t0 = Date.now();
    await emit({ monitorId: id, count: 2 });
    await sleep(300);
    await emit({ monitorId: id, count: 1 });
    expect(await monitorState(id)).toMatchObject({ blocksSent: 0, queued: 3 });
    expect(client.publishes).toHaveLength(0);
    const [p] = await client.waitPublishes(1, 10_000);
    const elapsed = Date.now() - t0;
    expect(p!.count).toBe(3);
    expect(elapsed).toBeGreaterThanOrEqual(2900);
    expect(elapsed).toBeLessThan(6000);
  });

  it("duration 0 sends what is queued at once", async () => {
    const id = await createMonitor({ batchSize: 100, batchDuration: 0 });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 7 });
    // Sent at the end of the emit's own turn, so before the next request is read: no clock involved.
    expect(await monitorState(id)).toMatchObject({ blocksSent: 1, queued: 0 });
    const [p] = await client.waitPublishes(1);
    expect(p!.count).toBe(7);
  });

  it("keeps up with an acking client: 20 000 events at batch size 100", async () => {
    const id = await createMonitor({ batchSize: 100, batchDuration: 10, ack: "explicit", compression: "zlib" });
    const { client } = await session(id);
    client.autoAck = "spec";
    const t0 = Date.now();
    await emit({ monitorId: id, count: 20_000 });
    const pubs = await client.waitEvents(20_000, 20_000);
    expect(pubs).toHaveLength(200);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await expect.poll(async () => (await monitorState(id)).blocksAcked, { timeout: 5000 }).toBe(200);
  });
});

describe("monitor status", () => {
  it("INACTIVE → ACTIVE on connect → SUSPENDED (auto-replay) or INACTIVE on disconnect; DISABLED refuses connects until reset", async () => {
    const id = await createMonitor({ replay: true });
    expect(await monStatus(id)).toBe("INACTIVE");
    const c = (await session(id)).client;
    expect(await monStatus(id)).toBe("ACTIVE");
    c.close();
    await expect.poll(() => monStatus(id)).toBe("SUSPENDED");
    await fetch(`${emu.httpUrl}/_emulator/monitors/${id}/disable`, { method: "POST" });
    expect(await monStatus(id)).toBe("DISABLED");
    const refused = await rawConnect(connectRequest(USER.username, USER.password, id));
    expect(refused.resp?.status).toBe(400);
    const r = await fetch(`${emu.httpUrl}/ws/v1/monitors/inventory/${id}/reset`, {
      method: "POST",
      headers: { Authorization: basic(USER.username, USER.password) },
    });
    expect(r.status).toBe(200);
    expect(await monStatus(id)).toBe("INACTIVE");
    expect((await session(id)).status).toBe(200);
  });

  it("DELETE of the monitor closes its session", async () => {
    const id = await createMonitor();
    const c = (await session(id)).client;
    await fetch(`${emu.httpUrl}/ws/Monitor/${id}`, { method: "DELETE", headers: { Authorization: basic(USER.username, USER.password) } });
    await c.waitClosed();
  });
});

describe("simulated devices and state", () => {
  it("auto-emits at the configured rate onto the subscribed topics", async () => {
    const e2 = await startIdigiEmulator({ users: [USER], tls: false, autoEmitRate: 100 });
    try {
      const body =
        "<Monitor><monTopic>DeviceCore</monTopic><monTransportType>tcp</monTransportType><monBatchSize>10</monBatchSize><monBatchDuration>0</monBatchDuration></Monitor>";
      const id = await createXmlMonitor(e2.httpUrl, body);
      // The emitter keeps to the wall clock (a late tick emits what it owes), so the time the first 300 events take
      // tells the rate: about 3 s at 100/s. No event comes before the session (t0 is taken before it), so a rate
      // above 120/s shows as under 2.5 s; one under 55/s as over 5.5 s, 2.5 s beyond a loaded machine's stalls.
      const t0 = Date.now();
      const { client } = await WireClient.session(e2.pushPort, USER.username, USER.password, id);
      clients.push(client);
      await client.waitEvents(300, 15_000);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(2500);
      expect(elapsed).toBeLessThan(5500);
      for (const m of client.publishes.flatMap(jsonMsgs)) expect(m.topic).toMatch(/^7603\/DeviceCore\//);
    } finally {
      await e2.stop();
    }
  });

  it("GET /_emulator/state reports sessions, sent/acked/pending blocks and events emitted", async () => {
    const id = await createMonitor({ ack: "explicit", batchSize: 2 });
    const { client } = await session(id);
    await emit({ monitorId: id, count: 6 });
    await client.waitPublishes(3);
    client.send(specAck(1));
    await expect.poll(async () => (await monitorState(id)).blocksAcked).toBe(1);
    type BlockRec = { blockId: number; count: number };
    const s = (await (await fetch(`${emu.httpUrl}/_emulator/state`)).json()) as {
      eventsEmitted: number;
      sessions: unknown[];
      monitors: Array<{ id: number; recentBlocks: BlockRec[] }>;
    };
    expect(s.eventsEmitted).toBe(6);
    expect(s.sessions).toEqual([
      expect.objectContaining({ monitorId: id, established: true, nextBlockId: 3, blocksSent: 3, outstanding: 2 }),
    ]);
    const m = s.monitors.find((x) => x.id === id);
    expect(m).toMatchObject({
      status: "ACTIVE",
      eventsEmitted: 6,
      eventsSent: 6,
      blocksSent: 3,
      blocksAcked: 1,
      pendingBlocks: [0, 2],
      unackedBlocks: 2,
      ackedBlockIds: [1],
    });
    expect(m!.recentBlocks.map((b) => [b.blockId, b.count])).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
  });

  it("the same sequence gives the same content after a reset (deterministic devices)", async () => {
    const run = async () => {
      const id = await createMonitor({ batchSize: 3, topics: "DataPoint,DeviceCore,FileData" });
      const { client } = await session(id);
      await emit({ monitorId: id, count: 3 });
      const [p] = await client.waitPublishes(1);
      client.close();
      await fetch(`${emu.httpUrl}/_emulator/reset`, { method: "POST" });
      return p!.text;
    };
    expect(await run()).toBe(await run());
  });
});

import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { deflateSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { IdigiAckError, IdigiConnectRefusedError, IdigiFrameError } from "./errors.js";
import { type InvalidBatch, type PushBatch, PushSession, type SessionState } from "./session.js";

/*
 * A deliberately small push server written from shared/protocols/idigi.md §2 alone (it shares no code with the
 * client's codec, so a mistake in one is caught by the other).
 */

interface ConnectRequestSeen {
  version: number;
  username: string;
  password: string;
  monitorId: number;
}

interface ServerConn {
  index: number;
  socket: net.Socket;
  request?: ConnectRequestSeen;
  /** Every byte the client sent after its ConnectRequest (acks). */
  after: Buffer;
  closed: boolean;
}

interface ServerBehaviour {
  /** ConnectResponse status to send, or "silent" to send nothing. Default 200. */
  status?: (req: ConnectRequestSeen, conn: ServerConn) => number | "silent";
  /** Called after a 200 was written. */
  ready?: (conn: ServerConn) => void;
  tls?: { key: string; cert: string };
  /** [I] whether the real server closes after a refusal is unknown; false keeps the socket open. Default true. */
  closeAfterRefusal?: boolean;
  /** Called with each chunk received after the ConnectRequest. */
  received?: (conn: ServerConn, chunk: Buffer) => void;
}

class TestPushServer {
  readonly conns: ServerConn[] = [];
  private server!: net.Server;
  port = 0;

  constructor(private readonly behaviour: ServerBehaviour = {}) {}

  async listen(): Promise<this> {
    const onSocket = (socket: net.Socket) => this.accept(socket);
    this.server = this.behaviour.tls
      ? tls.createServer({ key: this.behaviour.tls.key, cert: this.behaviour.tls.cert }, onSocket)
      : net.createServer(onSocket);
    this.server.on("tlsClientError", () => {});
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private accept(socket: net.Socket): void {
    const conn: ServerConn = { index: this.conns.length, socket, after: Buffer.alloc(0), closed: false };
    this.conns.push(conn);
    let buf = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("close", () => {
      conn.closed = true;
    });
    socket.on("data", (chunk: Buffer) => {
      if (conn.request) {
        conn.after = Buffer.concat([conn.after, chunk]);
        this.behaviour.received?.(conn, chunk);
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 6) return;
      const type = buf.readUInt16BE(0);
      const size = buf.readUInt32BE(2);
      if (type !== 1) {
        socket.destroy();
        return;
      }
      if (buf.length < 6 + size) return;
      let o = 6;
      const version = buf.readUInt16BE(o);
      o += 2;
      const uLen = buf.readUInt16BE(o);
      o += 2;
      const username = buf.subarray(o, o + uLen).toString("utf8");
      o += uLen;
      const pLen = buf.readUInt16BE(o);
      o += 2;
      const password = buf.subarray(o, o + pLen).toString("utf8");
      o += pLen;
      const monitorId = buf.readUInt32BE(o);
      o += 4;
      expect(o).toBe(6 + size); // size = 10 + uLen + pLen, exactly
      conn.request = { version, username, password, monitorId };
      conn.after = buf.subarray(o);
      const status = this.behaviour.status?.(conn.request, conn) ?? 200;
      if (status === "silent") return;
      const resp = Buffer.from([0x00, 0x02, 0x00, 0x00, 0x00, 0x04, status >> 8, status & 0xff, 0x00, 0x01]);
      socket.write(resp);
      if (status !== 200 && this.behaviour.closeAfterRefusal !== false) socket.end();
      else this.behaviour.ready?.(conn);
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A PublishMessage, hand-assembled from the §2.4 table. */
function publish(blockId: number, payload: string, opts: { zlib?: boolean; xml?: boolean; count?: number } = {}): Buffer {
  const body = opts.zlib ? deflateSync(Buffer.from(payload)) : Buffer.from(payload);
  const h = Buffer.alloc(16);
  h.writeUInt16BE(3, 0);
  h.writeUInt32BE(10 + body.length, 2);
  h.writeUInt16BE(blockId, 6);
  h.writeUInt16BE(opts.count ?? 1, 8);
  h.writeUInt8(opts.zlib ? 1 : 0, 10);
  h.writeUInt8(opts.xml ? 0 : 1, 11);
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

const msg = (n: number, extra: Record<string, unknown> = {}) => ({
  timestamp: `2024-01-01T00:00:0${n}.000Z`,
  topic: `1234/DataPoint/dev1/temp${n}`,
  operation: "INSERTION",
  group: "*",
  ...extra,
  DataPoint: { cstId: 1234, streamId: `dev1/temp${n}`, data: n },
});
const jsonDoc = (m: unknown) => JSON.stringify({ Document: { Msg: m } });
const xmlDoc = (...ns: number[]) =>
  `<Document>${ns.map((n) => `<Msg topic="1234/DataPoint/dev1/x${n}" operation="insertion" timestamp="t${n}"><DataPoint><data>${n}</data></DataPoint></Msg>`).join("")}</Document>`;

const ack = (blockId: number) => Buffer.from([0x00, 0x04, 0x00, 0x00, 0x00, 0x04, blockId >> 8, blockId & 0xff, 0x00, 0xc8]);

async function waitFor(cond: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const FAST = { initialMs: 10, maxMs: 40, multiplier: 2, jitter: 0 };

interface Recorded {
  session: PushSession;
  states: SessionState[];
  batches: PushBatch[];
  invalid: InvalidBatch[];
  warnings: Error[];
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startServer(b: ServerBehaviour = {}): Promise<TestPushServer> {
  const s = await new TestPushServer(b).listen();
  cleanups.push(() => s.close());
  return s;
}

function startSession(server: TestPushServer, extra: Partial<ConstructorParameters<typeof PushSession>[0]> = {}): Recorded {
  const session = new PushSession({
    host: "127.0.0.1",
    port: server.port,
    tls: false,
    username: "jürgen",
    password: "pässwörd",
    monitorId: 99850,
    backoff: FAST,
    handshakeTimeoutMs: 2000,
    ...extra,
  });
  const r: Recorded = { session, states: [], batches: [], invalid: [], warnings: [] };
  session.on("state", (s) => r.states.push(s));
  session.on("batch", (b) => r.batches.push(b));
  session.on("invalidBatch", (b) => r.invalid.push(b));
  session.on("warning", (w) => r.warnings.push(w));
  cleanups.push(() => session.stop());
  session.start();
  return r;
}

const count = (r: Recorded, state: SessionState["state"]) => r.states.filter((s) => s.state === state).length;

describe("PushSession (plain TCP)", () => {
  it("sends a UTF-8 ConnectRequest, connects on 200, and delivers JSON/XML, compressed/not, single/array batches", async () => {
    const server = await startServer({
      ready: (c) => {
        c.socket.write(publish(0, jsonDoc(msg(1))));
        c.socket.write(publish(1, jsonDoc([msg(2), msg(3), msg(4)]), { zlib: true, count: 3 }));
        c.socket.write(
          Buffer.concat([publish(2, xmlDoc(5), { xml: true }), publish(3, xmlDoc(6, 7), { xml: true, zlib: true, count: 2 })]),
        );
      },
    });
    const r = startSession(server);
    await waitFor(() => r.batches.length === 4, "4 batches");
    expect(server.conns[0]!.request).toEqual({ version: 1, username: "jürgen", password: "pässwörd", monitorId: 99850 });
    expect(r.states.map((s) => s.state).slice(0, 2)).toEqual(["connecting", "connected"]);
    const [b0, b1, b2, b3] = r.batches;
    expect(b0).toMatchObject({ monitorId: 99850, blockId: 0, compressed: false, format: "json", count: 1 });
    expect(b0!.events[0]).toMatchObject({ topic: "1234/DataPoint/dev1/temp1", operation: "INSERTION", group: "*", resource: "DataPoint" });
    expect(b1).toMatchObject({ blockId: 1, compressed: true, format: "json" });
    expect(b1!.events.map((e) => e.data["data"])).toEqual([2, 3, 4]);
    expect(b1!.rawBytes.subarray(0, 1)).toEqual(Buffer.from([0x78]));
    expect(b2).toMatchObject({ blockId: 2, compressed: false, format: "xml" });
    expect(b2!.events[0]).toMatchObject({ operation: "INSERTION", data: { data: "5" } });
    expect(b3!.events.map((e) => e.topic)).toEqual(["1234/DataPoint/dev1/x6", "1234/DataPoint/dev1/x7"]);
    expect(r.warnings).toEqual([]);
  });

  it("never auto-acks; acks are the 10-byte spec form with the right block id, sent only when asked", async () => {
    const server = await startServer({
      ready: (c) => c.socket.write(Buffer.concat([publish(0x01a7, jsonDoc(msg(1))), publish(0x01a8, jsonDoc(msg(2)))])),
    });
    const r = startSession(server);
    await waitFor(() => r.batches.length === 2, "2 batches");
    await new Promise((res) => setTimeout(res, 100));
    const conn = server.conns[0]!;
    expect(conn.after.length).toBe(0); // nothing acked yet
    expect(r.session.pendingAcks.sort()).toEqual([0x01a7, 0x01a8]);
    await r.batches[1]!.ack();
    await r.session.ack(0x01a7);
    await waitFor(() => conn.after.length >= 20, "two acks");
    expect(conn.after).toEqual(Buffer.concat([ack(0x01a8), ack(0x01a7)]));
    expect(r.session.pendingAcks).toEqual([]);
    // A second ack of the same block is refused rather than sent twice.
    await expect(r.batches[0]!.ack()).rejects.toMatchObject({ reason: "not_pending" });
    await expect(r.session.ack(7)).rejects.toBeInstanceOf(IdigiAckError);
    expect(conn.after.length).toBe(20);
  });

  it("reconnects after a drop before the ack; the stale ack is refused and the re-delivered block is acked on the new connection", async () => {
    const server = await startServer({
      ready: (c) => {
        if (c.index === 0) {
          c.socket.write(publish(0, jsonDoc(msg(1))));
          setTimeout(() => c.socket.destroy(), 30);
        } else {
          // Auto-replay: the un-acked event comes again, flagged replay="true"; block ids restart at 0.
          c.socket.write(publish(0, jsonDoc(msg(1, { replay: "true" }))));
        }
      },
    });
    const r = startSession(server);
    await waitFor(() => r.batches.length === 2, "re-delivery");
    expect(server.conns).toHaveLength(2);
    expect(server.conns[1]!.request?.monitorId).toBe(99850); // a fresh ConnectRequest on every connect
    expect(r.states.map((s) => s.state)).toEqual(["connecting", "connected", "disconnected", "connecting", "connected"]);
    const [first, second] = r.batches;
    expect(first!.connectionId).not.toBe(second!.connectionId);
    expect(second!.events[0]!.replay).toBe(true);
    await expect(first!.ack()).rejects.toMatchObject({ name: "IdigiAckError", reason: "stale_connection" });
    await second!.ack();
    await waitFor(() => server.conns[1]!.after.length === 10, "ack on connection 2");
    expect(server.conns[1]!.after).toEqual(ack(0));
    expect(server.conns[0]!.after.length).toBe(0);
  });

  it.each([
    [403, "refused"],
    [401, "refused"],
    [400, "refused"], // [I] unknown monitor as 400 …
    [404, "refused"], // [I] … or as 404: both stop the session
    [422, "refused"], // a 4xx no one guessed: its class decides
  ])("stops with a typed error on ConnectResponse %i (no reconnect loop)", async (status, refusal) => {
    const server = await startServer({ status: () => status });
    const r = startSession(server);
    await waitFor(() => count(r, "failed") === 1, "failed");
    const failed = r.states.find((s) => s.state === "failed") as Extract<SessionState, { state: "failed" }>;
    expect(failed.error).toBeInstanceOf(IdigiConnectRefusedError);
    expect((failed.error as IdigiConnectRefusedError).status).toBe(status);
    expect((failed.error as IdigiConnectRefusedError).refusal).toBe(refusal);
    expect(failed.error.message).not.toContain("pässwörd");
    await new Promise((res) => setTimeout(res, 150));
    expect(server.conns).toHaveLength(1);
    expect(count(r, "connected")).toBe(0);
  });

  it("[I] stops on 403 also when the server keeps the socket open after refusing", async () => {
    const server = await startServer({ status: () => 403, closeAfterRefusal: false });
    const r = startSession(server);
    await waitFor(() => count(r, "failed") === 1, "failed");
    await waitFor(() => server.conns[0]!.closed, "client closed the socket itself");
    expect(server.conns).toHaveLength(1);
  });

  it("[I] works with a window-1 server that sends the next block only after the ack (and with an unbounded one, above)", async () => {
    let next = 1;
    const server = await startServer({
      ready: (c) => c.socket.write(publish(0, jsonDoc(msg(0)))),
      received: (c, chunk) => {
        expect(chunk).toEqual(ack(next - 1));
        if (next < 3) c.socket.write(publish(next, jsonDoc(msg(next))));
        next++;
      },
    });
    const r = startSession(server);
    r.session.on("batch", (b) => void b.ack());
    await waitFor(() => r.batches.length === 3 && server.conns[0]!.after.length === 30, "3 acked blocks");
    expect(r.batches.map((b) => b.blockId)).toEqual([0, 1, 2]);
  });

  it("[I] block ids that wrap from 0xFFFF to 0 are acked independently", async () => {
    const server = await startServer({
      ready: (c) =>
        c.socket.write(Buffer.concat([publish(0xfffe, jsonDoc(msg(1))), publish(0xffff, jsonDoc(msg(2))), publish(0, jsonDoc(msg(3)))])),
    });
    const r = startSession(server);
    await waitFor(() => r.batches.length === 3, "3 batches");
    expect(r.session.pendingAcks.sort((a, b) => a - b)).toEqual([0, 0xfffe, 0xffff]);
    await r.batches[2]!.ack();
    await r.batches[1]!.ack();
    await waitFor(() => server.conns[0]!.after.length === 20, "acks");
    expect(server.conns[0]!.after).toEqual(Buffer.concat([ack(0), ack(0xffff)]));
    expect(r.session.pendingAcks).toEqual([0xfffe]);
  });

  it("keeps reconnecting with backoff on a 5xx ConnectResponse, then connects", async () => {
    const server = await startServer({ status: (_q, c) => (c.index < 2 ? 503 : 200) });
    const r = startSession(server);
    await waitFor(() => count(r, "connected") === 1, "connected");
    expect(server.conns).toHaveLength(3);
    const retries = r.states.filter((s) => s.state === "disconnected") as Extract<SessionState, { state: "disconnected" }>[];
    expect(retries.map((s) => s.retryInMs)).toEqual([10, 20]); // capped exponential backoff from @meridian/retry
    expect(retries[0]!.error).toBeInstanceOf(IdigiConnectRefusedError);
  });

  it("gives up after maxReconnectAttempts consecutive failures", async () => {
    const server = await startServer({ status: () => 500 });
    const r = startSession(server, { maxReconnectAttempts: 2 });
    await waitFor(() => count(r, "failed") === 1, "failed");
    expect(server.conns).toHaveLength(3);
  });

  it.each([
    ["an unknown frame type", Buffer.from([0x00, 0x09, 0x00, 0x00, 0x00, 0x00]), "unknown_type"],
    ["an oversized length", Buffer.from([0x00, 0x03, 0x7f, 0xff, 0xff, 0xff]), "oversized"],
    ["a second ConnectResponse", Buffer.from([0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0xc8, 0x00, 0x01]), "unexpected_type"],
    ["a bad compression byte", Buffer.from([0, 3, 0, 0, 0, 10, 0, 1, 0, 1, 7, 1, 0, 0, 0, 0]), "bad_field"],
  ])("reports %s as a IdigiFrameError, drops the socket and reconnects", async (_n, bad, code) => {
    const server = await startServer({ ready: (c) => c.index === 0 && c.socket.write(bad) });
    const r = startSession(server);
    await waitFor(() => count(r, "connected") === 2, "reconnect");
    const d = r.states.find((s) => s.state === "disconnected") as Extract<SessionState, { state: "disconnected" }>;
    expect(d.error).toBeInstanceOf(IdigiFrameError);
    expect((d.error as IdigiFrameError).code).toBe(code);
    await waitFor(() => server.conns[0]!.closed, "first socket closed");
  });

  it("handles a ConnectResponse split across writes and coalesced with the first PublishMessage", async () => {
    const server = await startServer({ status: () => "silent" });
    const r = startSession(server);
    await waitFor(() => server.conns[0]?.request !== undefined, "ConnectRequest");
    const all = Buffer.concat([Buffer.from([0, 2, 0, 0, 0, 4, 0, 0xc8, 0, 1]), publish(5, jsonDoc(msg(1)))]);
    const s = server.conns[0]!.socket;
    s.write(all.subarray(0, 3));
    await new Promise((res) => setTimeout(res, 20));
    s.write(all.subarray(3, 13));
    await new Promise((res) => setTimeout(res, 20));
    s.write(all.subarray(13));
    await waitFor(() => r.batches.length === 1, "batch");
    expect(r.batches[0]!.blockId).toBe(5);
  });

  it("times out a silent handshake and retries", async () => {
    const server = await startServer({ status: (_q, c) => (c.index === 0 ? "silent" : 200) });
    const r = startSession(server, { handshakeTimeoutMs: 50 });
    await waitFor(() => count(r, "connected") === 1, "connected on retry");
    const d = r.states.find((s) => s.state === "disconnected") as Extract<SessionState, { state: "disconnected" }>;
    expect(d.reason).toMatch(/ConnectResponse/);
  });

  it("emits an undecodable payload as invalidBatch (not acked), keeps the connection, and lets it be acked to skip", async () => {
    const bad = publish(3, "not json");
    const corrupt = Buffer.concat([Buffer.from([0, 3, 0, 0, 0, 14, 0, 4, 0, 1, 1, 1, 0, 0, 0, 4]), Buffer.from([0x78, 0x9c, 0xde, 0xad])]);
    const server = await startServer({ ready: (c) => c.socket.write(Buffer.concat([bad, corrupt, publish(5, jsonDoc(msg(1)))])) });
    const r = startSession(server);
    await waitFor(() => r.batches.length === 1 && r.invalid.length === 2, "batches");
    expect(r.invalid.map((i) => [i.blockId, i.error.code])).toEqual([
      [3, "bad_json"],
      [4, "inflate_failed"],
    ]);
    expect(r.invalid[0]!.rawBytes.toString()).toBe("not json");
    await r.invalid[0]!.ack();
    await waitFor(() => server.conns[0]!.after.length === 10, "skip ack");
    expect(server.conns[0]!.after).toEqual(ack(3));
    expect(count(r, "disconnected")).toBe(0);
  });

  it("pauses reading at maxUnacked and resumes on ack", async () => {
    const server = await startServer({
      ready: (c) => {
        // Separate writes, so the pause is observable (frames already in one chunk are all parsed).
        for (const i of [0, 1, 2, 3]) setTimeout(() => c.socket.write(publish(i, jsonDoc(msg(i)))), 20 * i);
      },
    });
    const r = startSession(server, { maxUnacked: 2 });
    await waitFor(() => r.batches.length === 2, "2 batches");
    await new Promise((res) => setTimeout(res, 150));
    expect(r.batches).toHaveLength(2); // paused: blocks 2 and 3 wait in the socket
    await r.batches[0]!.ack();
    await waitFor(() => r.batches.length === 3, "one more after one ack");
    await new Promise((res) => setTimeout(res, 50));
    expect(r.batches).toHaveLength(3);
    await r.batches[1]!.ack();
    await waitFor(() => r.batches.length === 4, "the last after another ack");
  });

  describe("maxHeldBytes", () => {
    const padded = (i: number) => jsonDoc(msg(i, { pad: "x".repeat(1000) }));
    /** What one padded block holds: its payload as received plus inflated (the same bytes, uncompressed). */
    const heldPerBlock = 2 * Buffer.byteLength(padded(0));

    it("stops reading when the unacked blocks (and frames waiting in the reader) hold the limit, and resumes as acks free it", async () => {
      // All four frames in one write: the reader has them all at once, so only the limit keeps blocks 2 and 3 back.
      const server = await startServer({ ready: (c) => c.socket.write(Buffer.concat([0, 1, 2, 3].map((i) => publish(i, padded(i))))) });
      // A frame waiting in the reader counts its bytes once (about half a handed-out block): after block 0 the session
      // holds 1 + 3 × ½ blocks, after block 1 it holds 2 + 2 × ½ ≥ 2.75.
      const maxHeldBytes = Math.floor(heldPerBlock * 2.75);
      const r = startSession(server, { maxHeldBytes });
      const changes: Array<{ atLimit: boolean; heldBytes: number }> = [];
      r.session.on("heldBytes", (c) => changes.push(c));
      await waitFor(() => r.batches.length === 2, "2 batches");
      await new Promise((res) => setTimeout(res, 100));
      expect(r.batches).toHaveLength(2);
      expect(r.session.atHeldLimit).toBe(true);
      expect(r.session.heldBytes).toBeGreaterThanOrEqual(maxHeldBytes);
      expect(changes).toEqual([{ atLimit: true, heldBytes: r.session.heldBytes, maxHeldBytes }]);
      await r.batches[0]!.ack();
      await waitFor(() => r.batches.length === 4, "the rest after one ack");
      expect(r.session.atHeldLimit).toBe(true);
      for (const b of r.batches.slice(1)) await b.ack();
      expect(r.session.heldBytes).toBe(0);
      expect(r.session.atHeldLimit).toBe(false);
      expect(changes.at(-1)).toMatchObject({ atLimit: false });
      // Every block delivered once, in order, and acked.
      expect(r.batches.map((b) => b.blockId)).toEqual([0, 1, 2, 3]);
      await waitFor(() => server.conns[0]!.after.length === 40, "4 acks");
    });

    it("a block larger than the limit still passes, alone: the session never stalls", async () => {
      const server = await startServer({ ready: (c) => c.socket.write(Buffer.concat([0, 1, 2].map((i) => publish(i, padded(i))))) });
      const r = startSession(server, { maxHeldBytes: 100 });
      for (const n of [1, 2, 3]) {
        await waitFor(() => r.batches.length === n, `batch ${n}`);
        await new Promise((res) => setTimeout(res, 40));
        expect(r.batches).toHaveLength(n);
        expect(r.session.atHeldLimit).toBe(true);
        await r.batches[n - 1]!.ack();
      }
      expect(r.session.atHeldLimit).toBe(false);
    });

    it("blocks of a dropped connection stay held until their ack is given up; the next connection is not read until then", async () => {
      const server = await startServer({
        ready: (c) => {
          if (c.index === 0) {
            c.socket.write(Buffer.concat([publish(0, padded(0)), publish(1, padded(1))]));
            setTimeout(() => c.socket.destroy(), 30);
          } else c.socket.write(Buffer.concat([publish(0, padded(0)), publish(1, padded(1)), publish(2, padded(2))]));
        },
      });
      const r = startSession(server, { maxHeldBytes: 2 * heldPerBlock });
      await waitFor(() => count(r, "connected") === 2, "reconnected");
      await new Promise((res) => setTimeout(res, 100));
      // Connected again, but the two blocks of the first connection still hold the limit.
      expect(r.batches).toHaveLength(2);
      expect(r.session.atHeldLimit).toBe(true);
      await expect(r.batches[0]!.ack()).rejects.toMatchObject({ reason: "stale_connection" });
      await new Promise((res) => setTimeout(res, 50));
      expect(r.batches).toHaveLength(2);
      await expect(r.batches[1]!.ack()).rejects.toMatchObject({ reason: "stale_connection" });
      for (let i = 2; i < 5; i++) {
        await waitFor(() => r.batches.length > i, `batch ${i}`);
        expect(r.batches[i]!.connectionId).toBe(r.batches[2]!.connectionId);
        await r.batches[i]!.ack();
      }
      expect(r.batches.slice(2).map((b) => b.blockId)).toEqual([0, 1, 2]);
      expect(r.session.heldBytes).toBe(0);
    });

    it("an ack of a batch already acked is refused, and never acks a later block that got the same id", async () => {
      const server = await startServer({
        ready: (c) => c.socket.write(Buffer.concat([publish(7, jsonDoc(msg(1))), publish(7, jsonDoc(msg(2)))])),
      });
      const r = startSession(server);
      await waitFor(() => r.batches.length === 2, "2 batches with one id");
      await r.batches[0]!.ack();
      await expect(r.batches[0]!.ack()).rejects.toMatchObject({ reason: "not_pending" });
      expect(r.session.pendingAcks).toEqual([7]);
      await r.batches[1]!.ack();
      expect(r.session.pendingAcks).toEqual([]);
    });

    it("rejects a negative or fractional maxHeldBytes, naming it", () => {
      for (const maxHeldBytes of [-1, 1.5]) {
        expect(() => new PushSession({ host: "h", username: "u", password: "p", monitorId: 1, maxHeldBytes })).toThrow(/maxHeldBytes/);
      }
    });
  });

  it("survives a throwing batch listener (reported as a warning)", async () => {
    const server = await startServer({ ready: (c) => c.socket.write(publish(0, jsonDoc(msg(1)))) });
    const r = startSession(server);
    r.session.prependListener("batch", () => {
      throw new Error("consumer bug");
    });
    await waitFor(() => r.warnings.length === 1, "warning");
    expect(count(r, "disconnected")).toBe(0);
  });

  it("treats connection refused as retryable network loss, then gives up after maxReconnectAttempts", async () => {
    const dead = net.createServer().listen(0, "127.0.0.1");
    await once(dead, "listening");
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((res) => dead.close(() => res()));
    const r = startSession({ port } as TestPushServer, { maxReconnectAttempts: 2 });
    await waitFor(() => count(r, "failed") === 1, "failed");
    expect(r.states.map((s) => s.state)).toEqual(["connecting", "disconnected", "connecting", "disconnected", "connecting", "failed"]);
    const failed = r.states.at(-1) as Extract<SessionState, { state: "failed" }>;
    expect((failed.error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });

  it("stop() closes the socket cleanly and stops reconnecting", async () => {
    const server = await startServer();
    const r = startSession(server);
    await waitFor(() => count(r, "connected") === 1, "connected");
    await r.session.stop();
    expect(r.states.at(-1)).toEqual({ state: "stopped" });
    await waitFor(() => server.conns[0]!.closed, "server sees close");
    await new Promise((res) => setTimeout(res, 100));
    expect(server.conns).toHaveLength(1);
    await expect(r.session.ack(0)).rejects.toMatchObject({ reason: "not_connected" });
  });

  it("stop() during backoff ends the loop", async () => {
    const server = await startServer({ status: () => 503 });
    const r = startSession(server, { backoff: { initialMs: 60_000, maxMs: 60_000, multiplier: 1, jitter: 0 } });
    await waitFor(() => count(r, "disconnected") === 1, "disconnected");
    await r.session.stop();
    expect(r.states.at(-1)).toEqual({ state: "stopped" });
  });
});

// ---- TLS ----

function makeCert(): { key: string; cert: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), "idigi-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CERT = makeCert();

describe.skipIf(!CERT)("PushSession (TLS, throwaway self-signed cert via openssl)", () => {
  const ready = (c: ServerConn) => c.socket.write(publish(9, jsonDoc(msg(1)), { zlib: true }));

  it("defaults to TLS on port 3201", () => {
    const s = new PushSession({ host: "example.invalid", username: "u", password: "p", monitorId: 1 });
    expect(s.state).toEqual({ state: "idle" });
    // Port/TLS defaults are config-level; see config.test.ts. Here: nothing connects before start().
  });

  it("connects with the custom CA and verifies the certificate", async () => {
    const server = await startServer({ tls: CERT!, ready });
    const r = startSession(server, { tls: true, ca: CERT!.cert });
    await waitFor(() => r.batches.length === 1, "batch over TLS");
    expect(r.batches[0]!.events[0]!.topic).toBe("1234/DataPoint/dev1/temp1");
    expect(server.conns[0]!.request?.username).toBe("jürgen");
  });

  it("refuses an unverifiable certificate unless insecure is explicit", async () => {
    const server = await startServer({ tls: CERT!, ready });
    const r = startSession(server, { tls: true });
    await waitFor(() => count(r, "disconnected") >= 1, "TLS failure");
    const d = r.states.find((s) => s.state === "disconnected") as Extract<SessionState, { state: "disconnected" }>;
    expect((d.error as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    expect(count(r, "connected")).toBe(0);
    expect(server.conns.every((c) => c.request === undefined)).toBe(true); // credentials never sent
  });

  it("accepts the certificate with insecure: true", async () => {
    const server = await startServer({ tls: CERT!, ready });
    const r = startSession(server, { tls: true, insecure: true });
    await waitFor(() => r.batches.length === 1, "batch over insecure TLS");
  });

  it("checks the host name against the certificate (servername)", async () => {
    const server = await startServer({ tls: CERT!, ready });
    const r = startSession(server, { tls: true, ca: CERT!.cert, servername: "wrong.example" });
    await waitFor(() => count(r, "disconnected") >= 1, "host name mismatch");
    const d = r.states.find((s) => s.state === "disconnected") as Extract<SessionState, { state: "disconnected" }>;
    expect((d.error as NodeJS.ErrnoException).code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });
});

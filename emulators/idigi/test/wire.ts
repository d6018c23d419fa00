/**
 * A minimal iDigi push client for the tests, written from the protocol notes (§2, §5) independently of the
 * emulator's own codec in src/push/frames.ts, so a mistake in one is not mirrored in the other.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { inflateSync } from "node:zlib";

export function connectRequest(username: string, password: string, monitorId: number, version = 1): Buffer {
  const u = Buffer.from(username, "utf8");
  const p = Buffer.from(password, "utf8");
  const body = Buffer.concat([
    Buffer.from([version >> 8, version & 0xff, u.length >> 8, u.length & 0xff]),
    u,
    Buffer.from([p.length >> 8, p.length & 0xff]),
    p,
    Buffer.from([(monitorId >>> 24) & 0xff, (monitorId >>> 16) & 0xff, (monitorId >>> 8) & 0xff, monitorId & 0xff]),
  ]);
  const size = body.length;
  return Buffer.concat([Buffer.from([0, 1, (size >>> 24) & 0xff, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]), body]);
}

/** Spec PublishMessageReceived: `00 04 00 00 00 04 id id st st`. */
export function specAck(blockId: number, status = 200): Buffer {
  return Buffer.from([0, 4, 0, 0, 0, 4, blockId >> 8, blockId & 0xff, status >> 8, status & 0xff]);
}

/** Legacy Python `struct.pack('!HHH', 4, block_id, 200)`: `00 04 id id st st`. */
export function legacyAck(blockId: number, status = 200): Buffer {
  return Buffer.from([0, 4, blockId >> 8, blockId & 0xff, status >> 8, status & 0xff]);
}

export interface RxConnectResponse {
  type: 2;
  status: number;
  version: number;
  raw: Buffer;
}

export interface RxPublish {
  type: 3;
  blockId: number;
  count: number;
  compression: number;
  format: number;
  payloadSize: number;
  /** Inflated when compression was 1. */
  text: string;
  raw: Buffer;
}

export interface RxOther {
  type: number;
  raw: Buffer;
}

export type RxFrame = RxConnectResponse | RxPublish | RxOther;

export function isPublish(f: RxFrame): f is RxPublish {
  return f.type === 3;
}

/** Msg list from a JSON payload, normalised to an array (the object-vs-array quirk). */
export function jsonMsgs(p: RxPublish): Array<Record<string, unknown>> {
  const doc = JSON.parse(p.text) as { Document: { Msg: unknown } };
  const m = doc.Document.Msg;
  return (Array.isArray(m) ? m : [m]) as Array<Record<string, unknown>>;
}

export class WireClient {
  readonly frames: RxFrame[] = [];
  bytesReceived = 0;
  /** Every byte received, in order. */
  received: Buffer[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private expectConnectResponse = true;
  /** Ack every PublishMessage as it arrives with this form. */
  autoAck: "spec" | "legacy" | undefined;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.bytesReceived += c.length;
      this.received.push(c);
      this.buf = Buffer.concat([this.buf, c]);
      this.parse();
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static async open(port: number, opts: { tls?: boolean; ca?: string; host?: string } = {}): Promise<WireClient> {
    const host = opts.host ?? "127.0.0.1";
    const socket = opts.tls ? tlsConnect({ host, port, ca: opts.ca, servername: "localhost" }) : netConnect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? "secureConnect" : "connect", () => resolve());
      socket.once("error", reject);
    });
    return new WireClient(socket);
  }

  /** Opens, sends a ConnectRequest and waits for the ConnectResponse. */
  static async session(port: number, user: string, pass: string, monitorId: number, opts: { tls?: boolean; ca?: string } = {}) {
    const c = await WireClient.open(port, opts);
    c.send(connectRequest(user, pass, monitorId));
    const resp = await c.waitFor(() => c.frames[0] as RxConnectResponse | undefined);
    return { client: c, status: resp.status };
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length < 6) return;
      const type = this.buf.readUInt16BE(0);
      const size = this.buf.readUInt32BE(2);
      if (this.buf.length < 6 + size) return;
      const raw = this.buf.subarray(0, 6 + size);
      this.buf = this.buf.subarray(6 + size);
      if (type === 2 && this.expectConnectResponse) {
        this.expectConnectResponse = false;
        this.frames.push({ type: 2, status: raw.readUInt16BE(6), version: raw.readUInt16BE(8), raw });
      } else if (type === 3) {
        const compression = raw[10]!;
        const payloadSize = raw.readUInt32BE(12);
        const payload = raw.subarray(16, 16 + payloadSize);
        // A Base64 payload (the emulator's base64Payloads switch) is kept as its text; the test decodes it.
        let text = payload.toString("utf8");
        if (compression === 1) {
          try {
            text = inflateSync(payload).toString("utf8");
          } catch {}
        }
        const f: RxPublish = {
          type: 3,
          blockId: raw.readUInt16BE(6),
          count: raw.readUInt16BE(8),
          compression,
          format: raw[11]!,
          payloadSize,
          text,
          raw,
        };
        this.frames.push(f);
        if (this.autoAck) this.send(this.autoAck === "spec" ? specAck(f.blockId) : legacyAck(f.blockId));
      } else this.frames.push({ type, raw });
    }
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  get publishes(): RxPublish[] {
    return this.frames.filter(isPublish);
  }

  /** Waits until `pick` returns a value (re-checked on every data/close event). */
  waitFor<T>(pick: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        const v = pick();
        if (v !== undefined && v !== false) {
          clearTimeout(timer);
          resolve(v as T);
        } else if (this.closed && !this.buf.length) {
          const again = pick();
          clearTimeout(timer);
          if (again !== undefined && again !== false) resolve(again as T);
          else reject(new Error("connection closed while waiting"));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  waitPublishes(n: number, timeoutMs = 5000): Promise<RxPublish[]> {
    return this.waitFor(() => (this.publishes.length >= n ? this.publishes : undefined), timeoutMs);
  }

  waitEvents(n: number, timeoutMs = 5000): Promise<RxPublish[]> {
    return this.waitFor(() => (this.publishes.reduce((s, p) => s + p.count, 0) >= n ? this.publishes : undefined), timeoutMs);
  }

  waitClosed(timeoutMs = 5000): Promise<true> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("still open")), timeoutMs);
      const check = () => {
        if (this.closed) {
          clearTimeout(timer);
          resolve(true);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

import { inflateSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { type IdigiEmulator, type IdigiEmulatorOptions, startIdigiEmulator } from "../src/index.js";
import { basic, createXmlMonitor, USER } from "./harness.js";
import { WireClient } from "./wire.js";

let emu: IdigiEmulator | undefined;
const clients: WireClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await emu?.stop();
  emu = undefined;
});

async function start(options: IdigiEmulatorOptions): Promise<IdigiEmulator> {
  emu = await startIdigiEmulator({ users: [USER], tls: false, ...options });
  return emu;
}

async function blockOf(e: IdigiEmulator, compression: "none" | "zlib") {
  const body = `<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monBatchSize>2</monBatchSize><monBatchDuration>0</monBatchDuration><monFormatType>json</monFormatType><monCompression>${compression}</monCompression></Monitor>`;
  const id = await createXmlMonitor(e.httpUrl, body, USER);
  const { client, status } = await WireClient.session(e.pushPort, USER.username, USER.password, id);
  clients.push(client);
  expect(status).toBe(200);
  e.emit({ monitorId: id, count: 2 });
  const [p] = await client.waitPublishes(1);
  return p!;
}

describe("base64Payloads (the docs' 'may be compressed & Base64 encoded')", () => {
  it.each([
    ["none", true, 0],
    ["zlib", true, 1],
    ["zlib", false, 0],
  ] as const)(
    "compression %s, compression byte flagged %s → byte %i, payload is Base64 text of the (zlib) document",
    async (compression, flag, byte) => {
      const e = await start({ base64Payloads: true, base64CompressionByte: flag });
      const p = await blockOf(e, compression);
      expect(p.compression).toBe(byte);
      const wire = p.raw.subarray(16);
      expect(wire.toString("ascii")).toMatch(/^[A-Za-z0-9+/]+=*$/);
      expect(p.payloadSize).toBe(wire.length);
      const decoded = Buffer.from(wire.toString("ascii"), "base64");
      const doc = JSON.parse((compression === "zlib" ? inflateSync(decoded) : decoded).toString("utf8")) as {
        Document: { Msg: unknown[] };
      };
      expect(doc.Document.Msg).toHaveLength(2);
    },
  );

  it("is off by default: raw JSON bytes", async () => {
    const e = await start({});
    const p = await blockOf(e, "none");
    expect(p.raw.subarray(16, 17).toString()).toBe("{");
  });
});

describe("v1 ack_option ([I]: not in the notes' v1 field list)", () => {
  async function createV1(e: IdigiEmulator) {
    const auth = { Authorization: basic(USER.username, USER.password), "content-type": "application/json" };
    const r = await fetch(`${e.httpUrl}/ws/v1/monitors/inventory`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ type: "tcp", topics: ["DataPoint"], ack_option: "explicit" }),
    });
    expect(r.status).toBe(201);
    const { id } = (await r.json()) as { id: number };
    const got = (await (await fetch(`${e.httpUrl}/ws/v1/monitors/inventory/${id}`, { headers: auth })).json()) as Record<string, unknown>;
    const legacy = (await (await fetch(`${e.httpUrl}/ws/Monitor/${id}.json`, { headers: auth })).json()) as {
      items: Array<Record<string, string>>;
    };
    return { got, legacy: legacy.items[0]! };
  }

  it("stored (default): kept and listed", async () => {
    const { got, legacy } = await createV1(await start({}));
    expect(got["ack_option"]).toBe("explicit");
    expect(legacy["monAckOption"]).toBe("explicit");
  });

  it("unknown: ignored (the monitor keeps ack off) and not listed", async () => {
    const { got, legacy } = await createV1(await start({ v1AckOption: "unknown" }));
    expect("ack_option" in got).toBe(false);
    expect(legacy["monAckOption"]).toBe("off");
  });
});

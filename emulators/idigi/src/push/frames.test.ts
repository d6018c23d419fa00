import { deflateSync, inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { connectRequest, legacyAck, specAck } from "../../test/wire.js";
import { DeviceSim, type EventSpec, jsonDocument, jsonMsg } from "../events.js";
import { ClientFrameDecoder, encodeConnectResponse, encodePublishMessage, parseConnectRequestBody } from "./frames.js";

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ""), "hex");

// Protocol notes §5.
const GOLDEN_PAYLOAD =
  '{"Document":{"Msg":{"timestamp":"2024-01-01T00:00:00.000Z","topic":"1234/DataPoint/dev1/temp","operation":"INSERTION","group":"*","DataPoint":{"cstId":1234,"streamId":"dev1/temp","data":"21.5"}}}}';
// The same payload through CPython's zlib 1.2.13 (`zlib.compress(p)`), 154 bytes as the notes say.
const GOLDEN_ZLIB = hex(
  "789c4d4ebb0ec2300cfc178fa8b44e294be632646841d0892d6aa32a431e4a5c968a7fc761405827f96cdd9dbd431fe6cd194f207718f25a1a596732691741428b6d7744c19810e51735223ea1020ad1ce2c11eda96b7a4dfa16aca766312fd190617705219aa4c906cf32353e2ef7495d47deaf296c25fdc0fce72ca7e74c6a0159222bc8948c766586ffd0850de533519fe1cdf5017e873ac1",
);

describe("golden frames (protocol notes §5)", () => {
  it("ConnectResponse OK is 00 02 00000004 00C8 0001", () => {
    expect(encodeConnectResponse(200)).toEqual(hex("00 02 00 00 00 04 00 C8 00 01"));
  });

  it("ConnectResponse refused 403 is 00 02 00000004 0193 0001 (unverified: 403 as the refusal code)", () => {
    expect(encodeConnectResponse(403)).toEqual(hex("00 02 00 00 00 04 01 93 00 01"));
  });

  it("the golden payload is 196 bytes and the emulator renders exactly it from an event", () => {
    expect(Buffer.byteLength(GOLDEN_PAYLOAD)).toBe(196);
    const e: EventSpec = {
      seq: 0,
      resource: "DataPoint",
      operation: "INSERTION",
      ts: Date.UTC(2024, 0, 1),
      device: "dev1",
      deviceIndex: -1,
      record: { cstId: 1234, streamId: "dev1/temp", data: "21.5" },
    };
    // With a caller-supplied record the topic key still comes from device + simulated stream name;
    // the stream name "temp" gives the notes' topic `1234/DataPoint/dev1/temp`.
    const sim = new DeviceSim({ streams: ["temp"] });
    expect(jsonDocument([jsonMsg(e, false, { cstId: 1234, sim })])).toBe(GOLDEN_PAYLOAD);
  });

  it("PublishMessage JSON uncompressed block 0x01A7: header 00 03 000000CE 01A7 0001 00 01 000000C4 then the payload", () => {
    const frame = encodePublishMessage({ blockId: 0x01a7, count: 1, compression: 0, format: 1, payload: Buffer.from(GOLDEN_PAYLOAD) });
    expect(frame.subarray(0, 16)).toEqual(hex("00 03 00 00 00 CE | 01 A7 | 00 01 | 00 | 01 | 00 00 00 C4"));
    expect(frame.subarray(16, 20)).toEqual(hex("7B 22 44 6F"));
    expect(frame).toEqual(Buffer.concat([hex("000300 0000CE 01A7 0001 00 01 000000C4"), Buffer.from(GOLDEN_PAYLOAD)]));
  });

  it("PublishMessage zlib block 0x01A7 with the 154-byte stream: 00 03 000000A4 01A7 0001 01 01 0000009A 78 9C ...", () => {
    expect(GOLDEN_ZLIB.length).toBe(154);
    expect(inflateSync(GOLDEN_ZLIB).toString()).toBe(GOLDEN_PAYLOAD);
    const frame = encodePublishMessage({ blockId: 0x01a7, count: 1, compression: 1, format: 1, payload: GOLDEN_ZLIB });
    expect(frame).toEqual(Buffer.concat([hex("00 03 00 00 00 A4 | 01 A7 | 00 01 | 01 | 01 | 00 00 00 9A"), GOLDEN_ZLIB]));
    expect(frame.subarray(16, 18)).toEqual(hex("78 9C"));
  });

  it("Node's own zlib output differs in length (bundled zlib fork) but keeps size == 10 + payloadSize", () => {
    const z = deflateSync(Buffer.from(GOLDEN_PAYLOAD));
    const frame = encodePublishMessage({ blockId: 0x01a7, count: 1, compression: 1, format: 1, payload: z });
    expect(frame.readUInt32BE(2)).toBe(10 + z.length);
    expect(frame.readUInt32BE(12)).toBe(z.length);
    expect(frame.subarray(16, 18)).toEqual(hex("78 9C"));
    expect(inflateSync(frame.subarray(16)).toString()).toBe(GOLDEN_PAYLOAD);
  });

  it("decodes the pepsi/cola ConnectRequest for monitor 260", () => {
    const bytes = hex("00 01 00 00 00 13 | 00 01 | 00 05 70 65 70 73 69 | 00 04 63 6F 6C 61 | 00 00 01 04");
    expect(bytes.length).toBe(25);
    // The test-only writer produces the same bytes independently.
    expect(connectRequest("pepsi", "cola", 260)).toEqual(bytes);
    const frames = new ClientFrameDecoder().push(bytes);
    expect(frames).toEqual([{ kind: "connect", version: 1, username: "pepsi", password: "cola", monitorId: 260 }]);
  });

  it("decodes the real jfocht/digidev capture (monitor 99850)", () => {
    const bytes = hex("00 01 00 00 00 17 00 01 00 06 6A 66 6F 63 68 74 00 07 64 69 67 69 64 65 76 00 01 86 0A");
    const frames = new ClientFrameDecoder().push(bytes);
    expect(frames).toEqual([{ kind: "connect", version: 1, username: "jfocht", password: "digidev", monitorId: 99850 }]);
  });

  it("decodes both PublishMessageReceived forms: spec 10-byte and legacy 6-byte", () => {
    expect(specAck(0x01a7)).toEqual(hex("00 04 00 00 00 04 01 A7 00 C8"));
    expect(legacyAck(0x01a7)).toEqual(hex("00 04 01 A7 00 C8"));
    const d = new ClientFrameDecoder();
    expect(d.push(hex("00 04 00 00 00 04 01 A7 00 C8 00 04 01 A7 00 C8"))).toEqual([
      { kind: "ack", blockId: 0x01a7, status: 200, form: "spec" },
      { kind: "ack", blockId: 0x01a7, status: 200, form: "legacy" },
    ]);
    // Block id 0 in both forms: the legacy one's "size" is 0x000000C8, never 4.
    expect(d.push(Buffer.concat([legacyAck(0), specAck(0)]))).toEqual([
      { kind: "ack", blockId: 0, status: 200, form: "legacy" },
      { kind: "ack", blockId: 0, status: 200, form: "spec" },
    ]);
  });

  it("tolerates fragmentation: byte-at-a-time input yields the same frames", () => {
    const all = Buffer.concat([connectRequest("jfocht", "digidev", 99850), specAck(1), legacyAck(2), specAck(3, 500)]);
    const d = new ClientFrameDecoder();
    const out = [];
    for (const b of all) out.push(...d.push(Buffer.from([b])));
    expect(out.map((f) => f.kind)).toEqual(["connect", "ack", "ack", "ack"]);
    expect(out[3]).toEqual({ kind: "ack", blockId: 3, status: 500, form: "spec" });
    expect(d.buffered).toBe(0);
  });

  it("counts UTF-8 bytes, not characters, in ConnectRequest lengths", () => {
    const req = connectRequest("jürgen", "pässwörd", 7);
    const [f] = new ClientFrameDecoder().push(req);
    expect(f).toEqual({ kind: "connect", version: 1, username: "jürgen", password: "pässwörd", monitorId: 7 });
  });

  it("reports a ConnectRequest whose lengths do not add up as malformed", () => {
    const good = connectRequest("a", "b", 1);
    const body = Buffer.from(good.subarray(6));
    body.writeUInt16BE(50, 2); // username length past the end
    expect(parseConnectRequestBody(body).kind).toBe("malformed");
  });
});

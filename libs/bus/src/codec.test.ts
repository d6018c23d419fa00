import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  Platform,
  Quality,
  type TelemetryBatch,
  TelemetryBatchSchema,
  type TelemetryEvent,
  TelemetryEventSchema,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { seededRandom } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { decodeBatch, decodeBatchFast, encodeBatch, encodeBatchWithin, encodedEventSize, makeBatch } from "./codec.js";

/** Random telemetry from a seed (@meridian/testing seededRandom): a failure names its seed and can be replayed. */
function random(seed: number) {
  const { next, int, pick } = seededRandom(seed);
  const chars = ["a", "Z", "0", "-", ".", " ", "é", "€", "😀", "\u0000", "/", "%", "~"];
  const str = (max: number) => Array.from({ length: int(max + 1) }, () => pick(chars)).join("");
  const bigint = () =>
    pick([
      0n,
      1n,
      -1n,
      127n,
      128n,
      2n ** 53n - 1n,
      2n ** 53n,
      -(2n ** 63n),
      2n ** 63n - 1n,
      BigInt(int(1e9)) * BigInt(int(1e9)),
      -BigInt(int(1e12)),
    ]);
  const num = () => pick([0, -0, 1.5, -3.25e-300, 1e308, Number.MIN_VALUE, int(1e6) / 7]);
  const smallInt = () => pick([0, 1, 127, 128, 16383, 16384, 2 ** 31 - 1, -1, -(2 ** 31), int(1e9)]);
  return { int, pick, str, bigint, num, smallInt, bool: () => next() < 0.5 };
}

function randomEvent(r: ReturnType<typeof random>): TelemetryEvent {
  const ts = () => (r.bool() ? { seconds: r.bigint(), nanos: r.smallInt() } : undefined);
  const value = () =>
    r.pick([
      { case: undefined },
      { case: "doubleValue" as const, value: r.num() },
      { case: "intValue" as const, value: r.bigint() },
      { case: "boolValue" as const, value: r.bool() },
      { case: "stringValue" as const, value: r.str(20) },
    ]);
  const attributes: Record<string, string> = {};
  for (let i = r.int(4); i > 0; i--) attributes[r.str(6)] = r.str(10);
  return create(TelemetryEventSchema, {
    id: r.str(40),
    ...(r.int(10) > 0 ? { source: { platform: r.pick([0, 1, 3, 6, 99, -5]) as Platform, connection: r.str(12), device: r.str(12) } } : {}),
    ...(ts() ? { observedTime: ts() } : {}),
    ...(ts() ? { receivedTime: ts() } : {}),
    points: Array.from({ length: r.int(6) }, () => ({
      name: r.str(10),
      value: value(),
      unit: r.str(4),
      quality: r.pick([0, 1, 3, 7, -2]) as Quality,
    })),
    attributes,
    ...(r.int(4) === 0
      ? { raw: { data: new Uint8Array(Array.from({ length: r.int(30) }, () => r.int(256))), contentType: r.str(8) } }
      : {}),
  });
}

function randomBatch(seed: number): TelemetryBatch {
  const r = random(seed);
  return makeBatch(
    r.str(30),
    Array.from({ length: r.int(12) }, () => randomEvent(r)),
  );
}

describe("TelemetryBatch codec", () => {
  it("agrees with the reflective codec both ways on random batches", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const batch = randomBatch(seed);
      const fast = encodeBatch(batch);
      const reflective = toBinary(TelemetryBatchSchema, batch);
      // What the reflective codec reads back from ours, and what ours reads from the reflective bytes: the same batch.
      expect(equals(TelemetryBatchSchema, fromBinary(TelemetryBatchSchema, fast), batch), `seed ${seed}`).toBe(true);
      expect(equals(TelemetryBatchSchema, decodeBatch(reflective), batch), `seed ${seed}`).toBe(true);
      expect(decodeBatch(reflective), `seed ${seed}`).toEqual(fromBinary(TelemetryBatchSchema, reflective));
      // The hand-written reader itself read it (a fallback to the reflective codec would hide a broken reader).
      expect(decodeBatchFast(reflective), `seed ${seed}`).toEqual(fromBinary(TelemetryBatchSchema, reflective));
      expect(fast.length, `seed ${seed}`).toBe(reflective.length);
    }
  });

  it("sizes each event as it lands in the batch", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const batch = randomBatch(seed);
      const idBytes = batch.id === "" ? 0 : toBinary(TelemetryBatchSchema, makeBatch(batch.id, [])).length;
      const sum = batch.events.reduce((n, e) => n + encodedEventSize(e), idBytes);
      expect(sum, `seed ${seed}`).toBe(encodeBatch(batch).length);
    }
  });

  it("encodes a batch within a bound of event bytes as encodeBatch does, and refuses one past it", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const batch = randomBatch(seed);
      const eventBytes = batch.events.reduce((n, e) => n + encodedEventSize(e), 0);
      expect(encodeBatchWithin(batch, eventBytes), `seed ${seed}`).toEqual(encodeBatch(batch));
      if (eventBytes > 0) expect(encodeBatchWithin(batch, eventBytes - 1), `seed ${seed}`).toBeUndefined();
    }
  });

  it("writes a string that turns non-ASCII late, with a longer length prefix than its character count, as UTF-8", () => {
    // 120 characters, 160 bytes: the prefix needs two bytes, the character count one.
    for (const text of [`${"a".repeat(100)}${"€".repeat(20)}`, `${"b".repeat(127)}é`, `\u0000${"😀".repeat(40)}`, "x".repeat(128)]) {
      const batch = makeBatch(text, [
        create(TelemetryEventSchema, { id: text, points: [{ name: text, value: { case: "stringValue", value: text } }] }),
      ]);
      expect(new Uint8Array(encodeBatch(batch))).toEqual(toBinary(TelemetryBatchSchema, batch));
    }
  });

  it("writes nested lengths of every size (1 to 3 bytes, past its 64 KiB scratch space), and a message stays as written after the next", () => {
    const point = (name: string) => ({ name, value: { case: "stringValue" as const, value: name } });
    const sizes = [0, 1, 60, 127, 128, 200, 16_383, 16_384, 20_000, 70_000];
    const batches = sizes.map((n) =>
      makeBatch(`b${n}`, [
        create(TelemetryEventSchema, { id: `e${n}`, points: [point("x".repeat(n)), point("y")], attributes: { k: "v".repeat(n) } }),
      ]),
    );
    const written = batches.map((b) => encodeBatch(b));
    batches.forEach((b, i) => {
      expect(new Uint8Array(written[i]!), `size ${sizes[i]}`).toEqual(toBinary(TelemetryBatchSchema, b));
    });
  });

  it("hands what it does not know to the reflective codec: unknown fields are kept both ways", () => {
    const event = create(TelemetryEventSchema, { id: "e1", source: { platform: Platform.API, connection: "c", device: "d" } });
    // A newer writer's field 15 on the event.
    const extra = new BinaryWriter().tag(15, 2).string("from the future").finish();
    const withUnknown = toBinary(TelemetryBatchSchema, makeBatch("b", [event]));
    const eventBytes = toBinary(TelemetryEventSchema, event);
    const longer = new BinaryWriter()
      .tag(1, 2)
      .string("b")
      .tag(2, 2)
      .bytes(new Uint8Array([...eventBytes, ...extra]))
      .finish();
    expect(withUnknown.length).toBeLessThan(longer.length);
    const decoded = decodeBatch(longer);
    expect(decodeBatchFast(longer)).toBeUndefined();
    expect(decoded.events[0]!.$unknown?.length).toBe(1);
    expect(encodeBatch(decoded)).toEqual(toBinary(TelemetryBatchSchema, decoded));
    expect(fromBinary(TelemetryBatchSchema, encodeBatch(decoded)).events[0]!.$unknown?.length).toBe(1);
  });

  it("reads back many different short names that share slots of its table of repeated strings, each as written", () => {
    // 5,000 names of one length: more than the table has slots, so names meet in a slot and must be told apart.
    const names = Array.from({ length: 5000 }, (_, i) => `p${String(i).padStart(5, "0")}`);
    for (let round = 0; round < 2; round++) {
      for (let from = 0; from < names.length; from += 250) {
        const events = names.slice(from, from + 250).map((name, i) =>
          create(TelemetryEventSchema, {
            id: `e${from + i}`,
            source: { platform: Platform.API, connection: `c${(from + i) % 7}`, device: name },
            points: [{ name, unit: name.slice(0, 3), value: { case: "stringValue", value: name } }],
            attributes: { [name]: name },
          }),
        );
        const bytes = encodeBatch(makeBatch(`b${from}`, events));
        expect(decodeBatchFast(bytes), `names from ${from}`).toEqual(fromBinary(TelemetryBatchSchema, bytes));
      }
    }
  });

  it("leaves a string that is not UTF-8 to the reflective codec, which refuses it, short or long", () => {
    for (const bad of [[0xff], [0x61, 0xc3], [0xe2, 0x82], Array.from({ length: 60 }, (_, i) => (i === 50 ? 0x80 : 0x61))]) {
      const name = new Uint8Array(bad);
      const point = new BinaryWriter().tag(1, 2).bytes(name).finish();
      const event = new BinaryWriter().tag(1, 2).bytes(name).tag(5, 2).bytes(point).finish();
      const bytes = new BinaryWriter().tag(2, 2).bytes(event).finish();
      expect(() => fromBinary(TelemetryBatchSchema, bytes)).toThrow(/not valid/);
      expect(decodeBatchFast(bytes), `bytes ${bad.slice(0, 4)}`).toBeUndefined();
      expect(() => decodeBatch(bytes)).toThrow(/not valid/);
    }
  });

  it("reads a batch cut anywhere as the reflective codec does: the same batch or the same error", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const whole = encodeBatch(randomBatch(seed));
      for (let cut = 0; cut < whole.length; cut++) {
        const part = whole.subarray(0, cut);
        let expected: unknown;
        try {
          expected = fromBinary(TelemetryBatchSchema, part);
        } catch (err) {
          expect(() => decodeBatch(part), `seed ${seed} cut ${cut}`).toThrow((err as Error).message);
          continue;
        }
        expect(decodeBatch(part), `seed ${seed} cut ${cut}`).toEqual(expected);
      }
    }
  });

  it("fails on broken bytes as the reflective codec does", () => {
    const good = encodeBatch(makeBatch("b", [create(TelemetryEventSchema, { id: "e1", points: [{ name: "p", quality: Quality.GOOD }] })]));
    for (const broken of [good.subarray(0, good.length - 2), new Uint8Array([0x12, 0x40, 0x0a])]) {
      const reflective = (() => {
        try {
          fromBinary(TelemetryBatchSchema, broken);
          return undefined;
        } catch (err) {
          return (err as Error).message;
        }
      })();
      expect(reflective).toBeDefined();
      expect(() => decodeBatch(broken)).toThrow(reflective);
    }
  });
});

import { describe, expect, it } from "vitest";
import { batchMessage, splitInHalf } from "./batching.js";
import { OmfInvalidMessageError } from "./errors.js";
import { containerMessage, dataMessage, type OmfContainerData, type OmfDataItem, type OmfMessage, serializeBody } from "./messages.js";

const bytes = (m: OmfMessage) => Buffer.byteLength(serializeBody(m), "utf8");

/** Deterministic PRNG so a failure is reproducible. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomItems(rand: () => number): OmfContainerData[] {
  const items: OmfContainerData[] = [];
  const n = 1 + Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) {
    const values = Array.from({ length: Math.floor(rand() * 40) }, (_, j) => ({
      Timestamp: new Date(1_700_000_000_000 + j * 1000).toISOString(),
      v: rand() * 1000,
      s: "é€".repeat(Math.floor(rand() * 20)),
    }));
    items.push({ containerid: `dev-${i}-${"x".repeat(Math.floor(rand() * 30))}`, values });
  }
  return items;
}

/** Flattens to (containerid, value) pairs to check nothing was lost, duplicated or reordered. */
const flat = (items: readonly OmfDataItem[]) => items.flatMap((it) => it.values.map((v) => [(it as OmfContainerData).containerid, v]));

describe("batchMessage (data)", () => {
  it("never exceeds the byte or value limit, measured on the serialized body, and keeps every value in order", () => {
    const rand = rng(42);
    for (let round = 0; round < 200; round++) {
      const items = randomItems(rand);
      const maxBytes = 300 + Math.floor(rand() * 3000);
      const maxValues = 1 + Math.floor(rand() * 30);
      const batches = batchMessage(dataMessage(items), { maxBytes, maxValues });
      for (const b of batches) {
        expect(bytes(b)).toBeLessThanOrEqual(maxBytes);
        expect(b.body.reduce((n, it) => n + it.values.length, 0)).toBeLessThanOrEqual(maxValues);
        expect(b.body.length).toBeGreaterThan(0);
      }
      expect(flat(batches.flatMap((b) => b.body as OmfDataItem[]))).toEqual(flat(items.filter((i) => i.values.length > 0)));
    }
  });

  it("a message that fits one request goes whole, serialized once: the kept body is its JSON, at the byte limit too", () => {
    const rand = rng(7);
    let whole = 0;
    for (let round = 0; round < 200; round++) {
      const items = randomItems(rand).filter((i) => i.values.length > 0);
      if (items.length === 0) continue;
      const message = dataMessage(items);
      const json = JSON.stringify(items);
      const exact = Buffer.byteLength(json, "utf8");
      // At its exact size (with multi-byte characters: UTF-8 bytes, not string length) and below it.
      for (const maxBytes of [exact, exact - 1]) {
        const batches = batchMessage(message, { maxBytes, maxValues: 10_000 });
        for (const b of batches) expect(serializeBody(b)).toBe(JSON.stringify(b.body));
        expect(flat(batches.flatMap((b) => b.body as OmfDataItem[]))).toEqual(flat(items));
        if (maxBytes === exact) {
          expect(batches).toHaveLength(1);
          expect(serializeBody(batches[0]!)).toBe(json);
          whole++;
        } else expect(batches.length).toBeGreaterThan(1);
      }
    }
    expect(whole).toBeGreaterThan(100);
  });

  it("packs tightly: a batch is only closed when the next value would not fit", () => {
    const values = Array.from({ length: 10 }, (_, i) => ({ Timestamp: `2026-01-01T00:00:0${i}Z`, v: i }));
    const message = dataMessage([{ containerid: "c", values }]);
    const whole = bytes(message);
    expect(batchMessage(message, { maxBytes: whole, maxValues: 100 })).toHaveLength(1);
    const split = batchMessage(message, { maxBytes: whole - 1, maxValues: 100 });
    expect(split).toHaveLength(2);
    expect(split[0]?.body[0]?.values).toHaveLength(9);
    expect(batchMessage(message, { maxBytes: whole, maxValues: 3 }).map((b) => b.body[0]?.values.length)).toEqual([3, 3, 3, 1]);
  });

  it("keeps the action and other item fields", () => {
    const [b] = batchMessage(
      dataMessage([{ typeid: "__Link", values: [{ source: { typeid: "A", index: "a" }, target: { containerid: "c" } }] }], "delete"),
      {
        maxBytes: 1000,
        maxValues: 10,
      },
    );
    expect(b).toEqual({
      messageType: "data",
      action: "delete",
      body: [{ typeid: "__Link", values: [{ source: { typeid: "A", index: "a" }, target: { containerid: "c" } }] }],
    });
  });

  it("names a value that cannot fit alone", () => {
    const message = dataMessage([{ containerid: "c", values: [{ v: 1 }, { v: "x".repeat(500) }] }]);
    expect(() => batchMessage(message, { maxBytes: 200, maxValues: 10 })).toThrow(OmfInvalidMessageError);
    expect(() => batchMessage(message, { maxBytes: 200, maxValues: 10 })).toThrow(
      /body\[0\]\.values\[1\]: serializes to \d+ bytes alone, over the 200-byte limit/,
    );
  });

  it("defaults to the endpoint kind's body limit from the notes", () => {
    const values = Array.from({ length: 60_000 }, (_, i) => ({ Timestamp: new Date(i * 1000).toISOString(), Value: i * 1.5 }));
    const message = dataMessage([{ containerid: "c", values }]);
    const sizes = (ms: OmfMessage[]) => ms.map(bytes);
    const pi = sizes(batchMessage(message, { kind: "pi", maxValues: 1_000_000 }));
    const adh = sizes(batchMessage(message, { kind: "adh", maxValues: 1_000_000 }));
    expect(Math.max(...pi)).toBeLessThanOrEqual(4_194_304);
    expect(Math.max(...pi)).toBeGreaterThan(192_000);
    expect(Math.max(...adh)).toBeLessThanOrEqual(192_000);
    expect(Math.max(...sizes(batchMessage(message, { maxValues: 1_000_000 })))).toBeLessThanOrEqual(192_000);
    expect(batchMessage(message).every((b) => b.body.reduce((n, i) => n + i.values.length, 0) <= 10_000)).toBe(true);
  });

  it("defaults of the notes fit: a 4 MiB PI budget and a 192 KB cloud budget", () => {
    const values = Array.from({ length: 20_000 }, (_, i) => ({ Timestamp: new Date(i * 1000).toISOString(), Value: i * 1.5 }));
    const message = dataMessage([{ containerid: "plant.line1.dev42.abcd1234", values }]);
    for (const maxBytes of [4_194_304, 192_000]) {
      const batches = batchMessage(message, { maxBytes, maxValues: 1_000_000 });
      for (const b of batches) expect(bytes(b)).toBeLessThanOrEqual(maxBytes);
    }
  });
});

describe("batchMessage (type/container)", () => {
  it("packs whole objects under the limits", () => {
    const containers = Array.from({ length: 50 }, (_, i) => ({ id: `c${i}`, typeid: "T" }));
    const batches = batchMessage(containerMessage(containers), { maxBytes: 200, maxValues: 7 });
    for (const b of batches) {
      expect(bytes(b)).toBeLessThanOrEqual(200);
      expect(b.body.length).toBeLessThanOrEqual(7);
      expect(b.messageType).toBe("container");
    }
    expect(batches.flatMap((b) => b.body)).toEqual(containers);
  });
});

describe("splitInHalf", () => {
  it("halves data by value count, keeping order and grouping", () => {
    const message = dataMessage([
      { containerid: "a", values: [{ v: 1 }, { v: 2 }, { v: 3 }] },
      { containerid: "b", values: [{ v: 4 }, { v: 5 }] },
    ]);
    const halves = splitInHalf(message);
    expect(halves?.[0].body).toEqual([{ containerid: "a", values: [{ v: 1 }, { v: 2 }, { v: 3 }] }]);
    expect(halves?.[1].body).toEqual([{ containerid: "b", values: [{ v: 4 }, { v: 5 }] }]);
    const again = splitInHalf(halves![0]);
    expect(again?.[0].body).toEqual([{ containerid: "a", values: [{ v: 1 }, { v: 2 }] }]);
    expect(again?.[1].body).toEqual([{ containerid: "a", values: [{ v: 3 }] }]);
  });

  it("cannot split one value or one object", () => {
    expect(splitInHalf(dataMessage([{ containerid: "a", values: [{ v: 1 }] }]))).toBeUndefined();
    expect(splitInHalf(containerMessage([{ id: "c", typeid: "T" }]))).toBeUndefined();
    expect(
      splitInHalf(
        containerMessage([
          { id: "c", typeid: "T" },
          { id: "d", typeid: "T" },
        ]),
      )?.map((m) => m.body.length),
    ).toEqual([1, 1]);
  });
});

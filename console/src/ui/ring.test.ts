import { describe, expect, it } from "vitest";
import { RingBuffer } from "./ring.js";

describe("RingBuffer", () => {
  it("keeps items oldest first until it is full", () => {
    const r = new RingBuffer<number>(4);
    expect(r.length).toBe(0);
    expect(r.toArray()).toEqual([]);
    r.push(1);
    r.push(2);
    r.push(3);
    expect(r.length).toBe(3);
    expect(r.toArray()).toEqual([1, 2, 3]);
    expect([r.at(0), r.at(2), r.at(3), r.at(-1)]).toEqual([1, 3, undefined, undefined]);
  });

  it("drops the oldest when full, in order across the wrap", () => {
    const r = new RingBuffer<number>(4);
    for (let i = 1; i <= 10; i++) r.push(i);
    expect(r.length).toBe(4);
    expect(r.toArray()).toEqual([7, 8, 9, 10]);
    expect(r.at(0)).toBe(7);
    expect(r.at(3)).toBe(10);
    r.push(11);
    expect(r.toArray()).toEqual([8, 9, 10, 11]);
  });

  it("matches an array trimmed to the last `capacity` items, push by push", () => {
    const capacity = 7;
    const r = new RingBuffer<number>(capacity);
    const model: number[] = [];
    for (let i = 0; i < 50; i++) {
      r.push(i);
      model.push(i);
      if (model.length > capacity) model.splice(0, model.length - capacity);
      expect(r.toArray()).toEqual(model);
      expect(r.length).toBe(model.length);
    }
  });

  it("stays at its capacity however many items pass", () => {
    const r = new RingBuffer<{ n: number }>(1000);
    for (let i = 0; i < 100_000; i++) r.push({ n: i });
    expect(r.length).toBe(1000);
    expect(r.toArray()).toHaveLength(1000);
    expect(r.at(0)?.n).toBe(99_000);
    expect(r.at(999)?.n).toBe(99_999);
  });

  it("empties on clear", () => {
    const r = new RingBuffer<string>(3);
    r.push("a");
    r.push("b");
    r.push("c");
    r.push("d");
    r.clear();
    expect(r.length).toBe(0);
    expect(r.toArray()).toEqual([]);
    r.push("e");
    expect(r.toArray()).toEqual(["e"]);
  });

  it("refuses a capacity that is not a whole number from 1", () => {
    expect(() => new RingBuffer(0)).toThrow(/capacity 0/);
    expect(() => new RingBuffer(2.5)).toThrow(RangeError);
  });
});

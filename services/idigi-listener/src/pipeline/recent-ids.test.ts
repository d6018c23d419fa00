import { createHash } from "node:crypto";
import { seededRandom } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { eventId } from "./mapping.js";
import { RecentIds } from "./recent-ids.js";

/** What RecentIds promises, kept the obvious way: a Set of the strings and a ring of the last `capacity` added. */
class Model {
  readonly ids = new Set<string>();
  private readonly ring: Array<string | undefined>;
  private next = 0;
  constructor(private readonly capacity: number) {
    this.ring = new Array(capacity);
  }
  has(id: string) {
    return this.ids.has(id);
  }
  /** False when remembered already; with a capacity of 0 nothing is, so every add is new. */
  add(id: string): boolean {
    if (this.capacity === 0) return true;
    if (this.ids.has(id)) return false;
    const oldest = this.ring[this.next];
    if (oldest !== undefined) this.ids.delete(oldest);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.ids.add(id);
    return true;
  }
  forget(id: string) {
    this.ids.delete(id);
    // A forgotten id's slot no longer stands for it.
    for (let i = 0; i < this.ring.length; i++) if (this.ring[i] === id) this.ring[i] = undefined;
  }
}

const digest = (n: number) => createHash("sha256").update(String(n)).digest("hex").slice(0, 32);

describe("RecentIds", () => {
  it("answers as a Set of the last `capacity` ids would, for ids of the digest shape with and without a position", () => {
    // Small capacities: small tables, where probes wrap around the end and removals shift entries across it.
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = seededRandom(seed);
      const capacity = 1 + rnd.int(seed % 3 === 0 ? 64 : 8);
      const ids = new RecentIds(capacity);
      const model = new Model(capacity);
      // Few distinct contents, so that ids come back after their eviction, and positions on some.
      const pool = Array.from({ length: capacity * 3 }, (_, i) =>
        rnd.bool() ? `idigi:mon-1:${digest(i)}` : `idigi:mon-1:${digest(i % 7)}:${rnd.int(5)}`,
      );
      for (let step = 0; step < 2_000; step++) {
        const id = rnd.pick(pool);
        const op = rnd.int(10);
        if (op < 4) {
          expect(ids.has(id), `seed ${seed} step ${step}: has ${id}`).toBe(model.has(id));
          ids.add(id);
          model.add(id);
        } else if (op < 6) expect(ids.add(id), `seed ${seed} step ${step}: add ${id}`).toBe(model.add(id));
        else if (op < 8) expect(ids.has(id), `seed ${seed} step ${step}: has ${id}`).toBe(model.has(id));
        else {
          ids.forget(id);
          model.forget(id);
        }
      }
      for (const id of pool) expect(ids.has(id), `seed ${seed}: has ${id} at the end`).toBe(model.has(id));
    }
  });

  it("takes the ids mapping.ts makes, each once, and forgets the oldest past its capacity", () => {
    const ids = new RecentIds(3);
    const made = [0, 1, 2, 3].map((i) =>
      eventId("mon-7", { topic: "DataPoint/dev/s", operation: "INSERTION", timestamp: `2026-01-01T00:00:0${i}Z`, data: { v: i } } as never),
    );
    for (const id of made.slice(0, 3)) ids.add(id);
    expect(made.slice(0, 3).map((id) => ids.has(id))).toEqual([true, true, true]);
    ids.add(made[3]!);
    expect(made.map((id) => ids.has(id))).toEqual([false, true, true, true]);
  });

  it("keeps ids of another shape or another monitor's prefix apart, exactly (no id is taken for another)", () => {
    const ids = new RecentIds(4);
    const d = digest(1);
    ids.add(`idigi:mon-1:${d}`);
    expect(ids.has(`idigi:mon-2:${d}`)).toBe(false);
    expect(ids.has(`idigi:mon-1:${d}:0`)).toBe(false);
    ids.add(`idigi:mon-2:${d}`);
    ids.add("not-an-idigi-id");
    ids.add(`idigi:mon-1:${d.toUpperCase()}`);
    expect(ids.has(`idigi:mon-2:${d}`)).toBe(true);
    expect(ids.has("not-an-idigi-id")).toBe(true);
    expect(ids.has("not-an-idigi-id ")).toBe(false);
    expect(ids.has(`idigi:mon-1:${d}`)).toBe(true);
    expect(ids.has(`idigi:mon-1:${d.toUpperCase()}`)).toBe(true);
    expect(ids.has(`idigi:mon-1:${digest(2).toUpperCase()}`)).toBe(false);
    ids.forget("not-an-idigi-id");
    expect(ids.has("not-an-idigi-id")).toBe(false);
  });

  it("remembers nothing with a capacity of 0", () => {
    const ids = new RecentIds(0);
    expect(ids.add(`idigi:m:${digest(1)}`)).toBe(true);
    expect(ids.add(`idigi:m:${digest(1)}`)).toBe(true);
    expect(ids.add("x")).toBe(true);
    expect(ids.has(`idigi:m:${digest(1)}`)).toBe(false);
    expect(ids.has("x")).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { collectInBackground, expectExactlyOnce } from "./collect.js";

/** Yields `ids` one per 10 ms, then waits until aborted, failing as an aborted subscription does. */
async function* feed(ids: string[], signal: AbortSignal): AsyncGenerator<{ id: string }> {
  for (const id of ids) {
    await new Promise((r) => setTimeout(r, 10));
    yield { id };
  }
  await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
}

describe("collectInBackground", () => {
  it("exactly(n) returns what was read, including a duplicate that came after the n-th", async () => {
    const c = collectInBackground((signal) => feed(["a", "b", "b"], signal));
    const got = await c.exactly(2);
    expect(got.map((i) => i.id)).toEqual(["a", "b", "b"]);
    expect(() => expectExactlyOnce(got, 2)).toThrow(/expected 2 items exactly once, got 3 items with 2 different ids/);
  });

  it("exactly(n) fails naming how many it has when fewer come", async () => {
    const c = collectInBackground((signal) => feed(["a"], signal));
    await expect(c.exactly(2, 200)).rejects.toThrow(/2 items not read in 200 ms \(have 1\)/);
    c.stop();
  });

  it("a stream failing before the stop fails exactly()", async () => {
    const c = collectInBackground<{ id: string }>(async function* () {
      yield { id: "a" };
      throw new Error("subscription refused");
    });
    await expect(c.exactly(1)).rejects.toThrow("subscription refused");
  });
});

describe("expectExactlyOnce", () => {
  it("holds for n different ids, fails for one missing", () => {
    expectExactlyOnce([{ id: "a" }, { id: "b" }], 2);
    expect(() => expectExactlyOnce([{ id: "a" }], 2)).toThrow(/got 1 items with 1 different ids/);
  });
});

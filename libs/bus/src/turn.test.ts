import { describe, expect, it } from "vitest";
import { EndOfTurn } from "./turn.js";

describe("EndOfTurn", () => {
  it("runs what separate callbacks of one turn added together, once, after them", async () => {
    const runs: number[][] = [];
    const turn = new EndOfTurn<number>((items) => runs.push(items));
    // Two timer callbacks of the same turn, each with its own microtask run, as two socket reads would be.
    await new Promise<void>((resolve) => {
      setTimeout(() => {
        turn.add(1);
        queueMicrotask(() => turn.add(2));
      }, 0);
      setTimeout(() => {
        turn.add(3);
        expect(runs).toEqual([]);
        setImmediate(resolve);
      }, 0);
    });
    expect(runs).toEqual([[1, 2, 3]]);
  });

  it("starts a new batch after a run, and flush() runs what is queued at once", async () => {
    const runs: string[][] = [];
    const turn = new EndOfTurn<string>((items) => runs.push(items));
    turn.add("a");
    turn.flush();
    expect(runs).toEqual([["a"]]);
    turn.add("b");
    await new Promise((r) => setImmediate(r));
    expect(runs).toEqual([["a"], ["b"]]);
    turn.flush();
    expect(runs).toEqual([["a"], ["b"]]);
  });
});

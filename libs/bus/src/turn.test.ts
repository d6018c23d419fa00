import { describe, expect, it } from "vitest";
import { EndOfTurn } from "./turn.js";

describe("EndOfTurn", () => {
  it("runs what separate callbacks of one turn added together, once, after them", async () => {
    const runs: number[][] = [];
    const turn = new EndOfTurn<number>((items) => runs.push(items));
    let runsBeforeLastAdd: number[][] | undefined;
    // Two callbacks of the same turn, each followed by its own microtask run, as two socket reads would be. Two
    // setImmediate callbacks queued together run in the same check phase (two 0 ms timers need not share a turn).
    await new Promise<void>((resolve) => {
      setImmediate(() => {
        turn.add(1);
        queueMicrotask(() => turn.add(2));
      });
      setImmediate(() => {
        turn.add(3);
        runsBeforeLastAdd = runs.map((r) => [...r]);
        setImmediate(resolve);
      });
    });
    expect(runsBeforeLastAdd).toEqual([]);
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

import { describe, expect, it } from "vitest";
import type { Monitor } from "../monitors.js";
import { Fifo, MonitorQueue } from "./queue.js";

describe("Fifo", () => {
  it("takes in order, puts a batch back in front, and compacts without losing items", () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 10_000; i++) q.push(i);
    expect(q.take(5000)).toHaveLength(5000);
    expect(q.peek()).toBe(5000);
    q.unshiftAll([-2, -1]);
    expect(q.take(3)).toEqual([-2, -1, 5000]);
    expect(q.length).toBe(4999);
    const seen: number[] = [];
    q.forEach((x) => {
      seen.push(x);
    });
    expect(seen[0]).toBe(5001);
    expect(q.clear()).toBe(4999);
    expect(q.length).toBe(0);
  });
});

describe("MonitorQueue", () => {
  const monitor = { id: 1, topics: ["DataPoint", "DeviceCore[U]"], batchDuration: 0 } as Monitor;

  it("parses the monitor's subscriptions and keeps at most historyLimit entries of a history list", () => {
    const q = new MonitorQueue(monitor, 3);
    expect(q.subs.map((s) => s.resource)).toEqual(["DataPoint", "DeviceCore"]);
    for (let i = 0; i < 5; i++) q.remember(q.ackedBlockIds, i);
    expect(q.ackedBlockIds).toEqual([2, 3, 4]);
  });

  it("a batch duration of 0 fires at the end of the tick; clearTimer cancels", async () => {
    const q = new MonitorQueue(monitor, 10);
    let fired = 0;
    q.armTimer(() => fired++);
    expect(q.timerArmed).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(fired).toBe(1);
    expect(q.timerArmed).toBe(false);
    q.armTimer(() => fired++);
    q.clearTimer();
    await new Promise((r) => setImmediate(r));
    expect(fired).toBe(1);
  });
});

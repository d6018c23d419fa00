import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { ProcessSampler, procCpuSeconds, procPssMiB, procRssMiB } from "./sampler.js";

function busy(ms: number): number {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  return x;
}

describe("ProcessSampler", () => {
  it("sees this process's CPU rise after a busy loop, per process and summed", () => {
    const sampler = new ProcessSampler({ self: process.pid }).start();
    try {
      const m = sampler.mark();
      busy(300);
      const cpu = sampler.cpuSeconds(m);
      // 300 ms of wall time spinning: at least a third of it is CPU even on a crowded machine (ticks are 10 ms).
      expect(cpu.perProcess.self).toBeGreaterThanOrEqual(0.1);
      expect(cpu.total).toBe(cpu.perProcess.self);
      const perEvent = sampler.cpuMicrosPerEvent(1000, m);
      expect(perEvent.perProcess.self).toBeGreaterThanOrEqual(100);
    } finally {
      sampler.stop();
    }
  });

  it("reports idle RSS at start and a peak at least as high after memory is touched", () => {
    const sampler = new ProcessSampler({ self: process.pid }).start();
    const idle = sampler.idleRssMiB().perProcess.self!;
    const held = Buffer.alloc(64 * 1024 * 1024, 1);
    const peak = sampler.peakRssMiB().perProcess.self!;
    sampler.stop();
    expect(idle).toBeGreaterThan(10);
    expect(held.length).toBe(64 * 1024 * 1024);
    expect(peak).toBeGreaterThanOrEqual(idle + 50);
  });

  it("reads a process's PSS, at most its RSS and above zero, and nothing for a process that is gone", async () => {
    // An idle child, not this process: the test runner's other workers share this one and can free tens of MiB
    // between two reads.
    const child = spawn(process.execPath, ["-e", "process.stdout.write('up'); setTimeout(() => {}, 60_000)"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    try {
      await once(child.stdout!, "data");
      const pss = procPssMiB(child.pid!);
      const rss = procRssMiB(child.pid!)!;
      expect(pss).toBeGreaterThan(1);
      // Pages shared with other processes count in part: PSS is never above RSS (a page's worth of slack for the two reads).
      expect(pss!).toBeLessThanOrEqual(rss + 1);
    } finally {
      child.kill("SIGKILL");
    }
    expect(procPssMiB(2 ** 22 + 1)).toBeUndefined();
  });

  it("keeps a process's last figures once it is gone and refuses bad input", () => {
    expect(procCpuSeconds(2 ** 22 + 1)).toBeUndefined();
    expect(procRssMiB(2 ** 22 + 1)).toBeUndefined();
    expect(() => new ProcessSampler({ x: 0 })).toThrow(/not a process id/);
    expect(() => new ProcessSampler({ x: process.pid }, { intervalMs: 1 })).toThrow(/from 10 to 60000/);
    expect(() => new ProcessSampler({ gone: 2 ** 22 + 1 }).start()).toThrow(/not running/);
    expect(() => new ProcessSampler({ x: process.pid }).cpuMicrosPerEvent(0)).toThrow(/above 0/);
  });
});

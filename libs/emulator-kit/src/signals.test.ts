import { EventEmitter } from "node:events";
import { captureLogger, until } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { stopOnSignals } from "./signals.js";

function fakeProcess() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  return {
    emitter,
    exits,
    target: { on: (s: NodeJS.Signals, l: () => void) => emitter.on(s, l), exit: (code: number) => void exits.push(code) },
  };
}

describe("stopOnSignals", () => {
  it("stops once at SIGTERM or SIGINT, whatever comes after, and exits 0", async () => {
    const p = fakeProcess();
    const logs = captureLogger();
    let stops = 0;
    stopOnSignals(async () => void stops++, logs.logger, p.target);
    p.emitter.emit("SIGTERM");
    p.emitter.emit("SIGINT");
    p.emitter.emit("SIGTERM");
    await until(() => p.exits.length > 0, { timeoutMs: 1000 });
    expect(stops).toBe(1);
    expect(p.exits).toEqual([0]);
    expect(logs.lines.filter((l) => l.msg === "stopping").map((l) => l.signal)).toEqual(["SIGTERM"]);
  });

  it("exits 1 when stopping failed", async () => {
    const p = fakeProcess();
    stopOnSignals(async () => Promise.reject(new Error("stuck")), captureLogger().logger, p.target);
    p.emitter.emit("SIGINT");
    await until(() => p.exits.length > 0, { timeoutMs: 1000 });
    expect(p.exits).toEqual([1]);
  });
});

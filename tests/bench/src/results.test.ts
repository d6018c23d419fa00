import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { appendResult } from "./results.js";

describe("appendResult", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it("appends one parseable line per result with bench, at, commit, machine and the figures", () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-results-"));
    vi.stubEnv("BENCH_RESULTS_DIR", dir);
    const printed = vi.spyOn(console, "log").mockImplementation(() => {});
    const path = appendResult("unit-check", { eventsPerSec: 1234, nested: { p99Ms: 7 } });
    appendResult("unit-check", { eventsPerSec: 99 });
    expect(path).toBe(join(dir, "unit-check.jsonl"));
    const lines = readFileSync(path, "utf8").split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe("");
    const first = JSON.parse(lines[0]!);
    expect(first).toMatchObject({ bench: "unit-check", eventsPerSec: 1234, nested: { p99Ms: 7 } });
    expect(Number.isNaN(Date.parse(first.at))).toBe(false);
    expect(first.commit).toMatch(/^([0-9a-f]{4,40}|unknown)$/);
    expect(first.machine).toMatchObject({ node: process.version });
    expect(first.machine.cpus).toBeGreaterThan(0);
    expect(first.machine.loadavg).toHaveLength(3);
    expect(JSON.parse(lines[1]!).eventsPerSec).toBe(99);
    expect(JSON.parse(printed.mock.calls[0]![0] as string)).toEqual(first);
  });

  it("refuses a bench name that is not a plain file name", () => {
    expect(() => appendResult("../x", {})).toThrow(/lower-case letters/);
  });
});

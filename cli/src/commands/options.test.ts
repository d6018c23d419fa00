import { describe, expect, it } from "vitest";
import { CliError, EXIT } from "../kit/exit.js";
import { choiceFlag, intFlag, jsonArg, jsonObjectArg, listFlag, numberFlag, pairFlag, parseTime } from "./options.js";

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.usage);
    return (err as Error).message;
  }
  throw new Error("no error");
}

describe("flag parsers", () => {
  it("whole numbers within bounds; anything else names the flag and the bounds", () => {
    expect(intFlag("--n", 1, 10)("7")).toBe(7);
    for (const bad of ["0", "11", "1.5", "7x", "", "1e3"])
      expect(usage(() => intFlag("--n", 1, 10)(bad))).toBe(`--n: "${bad}" is not a whole number from 1 to 10`);
    expect(numberFlag("--s", 0, 5)("0.25")).toBe(0.25);
    expect(usage(() => numberFlag("--s", 0, 5)("-1"))).toContain("--s");
  });

  it("choices case-insensitive; lists comma-separated and repeated; key=value pairs", () => {
    expect(choiceFlag("--f", ["json", "xml"] as const)("JSON")).toBe("json");
    expect(usage(() => choiceFlag("--f", ["json", "xml"] as const)("csv"))).toBe('--f: "csv" is not one of json, xml');
    expect(listFlag("b, c,", listFlag("a", undefined))).toEqual(["a", "b", "c"]);
    expect(pairFlag("-p")("x=1=2", { a: "b" })).toEqual({ a: "b", x: "1=2" });
    expect(usage(() => pairFlag("-p")("=1", undefined))).toBe('-p: "=1" is not key=value');
  });

  it("times: RFC 3339, now, or a duration back from now", () => {
    const now = Date.parse("2026-01-02T03:04:05Z");
    expect(parseTime("--t", "2026-01-01T00:00:00Z", now).toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(parseTime("--t", "now", now).getTime()).toBe(now);
    expect(parseTime("--t", "15m", now).getTime()).toBe(now - 15 * 60_000);
    expect(parseTime("--t", "-2h", now).getTime()).toBe(now - 2 * 3_600_000);
    expect(parseTime("--t", "1.5d", now).getTime()).toBe(now - 1.5 * 86_400_000);
    expect(usage(() => parseTime("--t", "yesterday", now))).toMatch(/^--t: "yesterday" is not a time/);
    expect(usage(() => parseTime("--t", "2026-13-45T99:00:00Z", now))).toContain("is not a time");
  });

  it("JSON arguments inline, @file or @-; an object where one is needed", () => {
    expect(jsonArg('{"a": 1}', "x")).toEqual({ a: 1 });
    expect(jsonArg("@-", "x", () => "[1]")).toEqual([1]);
    expect(usage(() => jsonArg("@/nonexistent/p.json", "the payload"))).toBe("the payload /nonexistent/p.json: cannot be read (ENOENT)");
    expect(usage(() => jsonObjectArg("3", "the patch"))).toBe("the patch: must be a JSON object, not number");
  });
});

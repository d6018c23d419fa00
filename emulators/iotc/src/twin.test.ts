import { describe, expect, it } from "vitest";
import { MAX_DEPTH, MAX_SECTION_BYTES, TwinPatchError, TwinSection } from "./twin.js";

describe("twin sections", () => {
  it("merges deeply, deletes on null, ignores $ members and bumps the version per patch", () => {
    const s = new TwinSection();
    expect(s.view()).toEqual({ $version: 1 });
    expect(s.apply({ a: { b: 1, c: [1, 2] }, d: 1, $version: 99 }, "reported")).toBe(2);
    expect(s.apply({ a: { b: null, e: { f: true } }, d: null }, "reported")).toBe(3);
    expect(s.view()).toEqual({ a: { c: [1, 2], e: { f: true } }, $version: 3 });
    // Replacing an object by a scalar and back.
    s.apply({ a: 5 }, "reported");
    s.apply({ a: { x: 1 } }, "reported");
    expect(s.view()).toEqual({ a: { x: 1 }, $version: 5 });
  });

  it("refuses a non-object, too deep or too large patch and leaves the section unchanged", () => {
    const s = new TwinSection();
    s.apply({ keep: 1 }, "reported");
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < MAX_DEPTH; i++) deep = { n: deep };
    for (const bad of [[1], "x", null, deep, { big: "x".repeat(MAX_SECTION_BYTES) }]) {
      expect(() => s.apply(bad, "reported")).toThrow(TwinPatchError);
    }
    expect(s.view()).toEqual({ keep: 1, $version: 2 });
  });
});

import { describe, expect, it } from "vitest";
import { Series } from "./store.js";

describe("Series", () => {
  it("keeps keys ordered for appends, out-of-order inserts and removals", () => {
    const s = new Series();
    for (const k of ["b", "d", "a", "c", "e"]) s.put(k, { k }, "replace");
    expect(s.keys).toEqual(["a", "b", "c", "d", "e"]);
    s.put("c", { k: "c2" }, "replace");
    expect(s.count).toBe(5);
    s.put("c", { k: "c3" }, "insert");
    expect(s.count).toBe(6);
    expect(s.put("c", { k: "c4" }, "noreplace")).toBe("ignored");
    s.remove("c");
    expect(s.keys).toEqual(["a", "b", "d", "e"]);
    expect(s.count).toBe(4);
    expect([...s.range("b", "d")].map((e) => e.key)).toEqual(["b", "d"]);
    expect(s.last()?.key).toBe("e");
  });
});

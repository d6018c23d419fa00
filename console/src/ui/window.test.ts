import { describe, expect, it } from "vitest";
import { visibleWindow } from "./window.js";

describe("visibleWindow", () => {
  it("renders the rows in view plus the overscan, with spacers for the rest", () => {
    expect(visibleWindow(100_000, 2800, 400, 28, 10)).toEqual({ first: 90, last: 125, before: 2520, after: (100_000 - 125) * 28 });
  });

  it("clamps at both ends", () => {
    expect(visibleWindow(5, 0, 400, 28)).toEqual({ first: 0, last: 5, before: 0, after: 0 });
    expect(visibleWindow(0, 0, 400, 28)).toEqual({ first: 0, last: 0, before: 0, after: 0 });
  });
});

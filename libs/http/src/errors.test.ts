import { describe, expect, it } from "vitest";
import { networkErrorCode } from "./errors.js";

describe("networkErrorCode", () => {
  it("finds the code where fetch puts it, under one or two causes, and nothing where there is none", () => {
    const socket = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(networkErrorCode(new TypeError("fetch failed", { cause: socket }))).toBe("ECONNREFUSED");
    expect(networkErrorCode(new Error("outer", { cause: new Error("mid", { cause: socket }) }))).toBe("ECONNREFUSED");
    expect(networkErrorCode(new Error("no code"))).toBeUndefined();
    expect(networkErrorCode("not an error")).toBeUndefined();
  });
});

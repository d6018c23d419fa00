import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { codeOf, expectCode } from "./codes.js";

const refusal = () => Promise.reject(new ConnectError("route_id: not a route id", Code.InvalidArgument));

describe("expectCode", () => {
  it("returns the message of a call that failed with the code", async () => {
    expect(await expectCode(refusal(), Code.InvalidArgument)).toBe("route_id: not a route id");
  });

  it("fails for another code, and for a call that succeeded", async () => {
    await expect(expectCode(refusal(), Code.NotFound)).rejects.toThrow(/expected code NotFound, got InvalidArgument/);
    await expect(expectCode(Promise.resolve(), Code.NotFound)).rejects.toThrow(/succeeded/);
  });

  it("checks the message when asked: a RegExp matches it, a string is contained in it", async () => {
    expect(await expectCode(refusal(), Code.InvalidArgument, /^route_id:/)).toBe("route_id: not a route id");
    expect(await expectCode(refusal(), Code.InvalidArgument, "not a route")).toBe("route_id: not a route id");
    await expect(expectCode(refusal(), Code.InvalidArgument, /endpoint_id/)).rejects.toThrow(
      "expected a message matching /endpoint_id/, got: route_id: not a route id",
    );
    await expect(expectCode(refusal(), Code.InvalidArgument, "endpoint")).rejects.toThrow(/containing endpoint/);
  });
});

describe("codeOf", () => {
  it("is the code and the raw message", async () => {
    expect(await codeOf(refusal())).toEqual({ code: Code.InvalidArgument, message: "route_id: not a route id" });
  });
});

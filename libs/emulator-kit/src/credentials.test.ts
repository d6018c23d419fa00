import { describe, expect, it } from "vitest";
import { basicCredentials, safeEqual } from "./credentials.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("basicCredentials", () => {
  it("splits at the first colon, so a password may hold colons; the scheme is case-insensitive", () => {
    expect(basicCredentials(`Basic ${b64("u:p:q")}`)).toEqual({ username: "u", password: "p:q" });
    expect(basicCredentials(`basic  ${b64("u:")}`)).toEqual({ username: "u", password: "" });
  });

  it("is undefined without a header, for another scheme, or without a colon", () => {
    expect(basicCredentials(undefined)).toBeUndefined();
    expect(basicCredentials("Bearer abc")).toBeUndefined();
    expect(basicCredentials(`Basic ${b64("nocolon")}`)).toBeUndefined();
  });
});

describe("safeEqual", () => {
  it("is plain equality, also for different lengths", () => {
    expect(safeEqual("secret", "secret")).toBe(true);
    expect(safeEqual("secret", "secreT")).toBe(false);
    expect(safeEqual("secret", "secrets")).toBe(false);
  });
});

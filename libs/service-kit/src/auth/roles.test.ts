import { TEST_KEYS, TEST_ROLES } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { ROLES } from "./roles.js";

// @meridian/testing cannot import this list (service-kit's tests depend on it), so it keeps a copy: the copy must not drift.
describe("ROLES", () => {
  it("are the roles @meridian/testing has a test key for, no more and no fewer", () => {
    expect([...TEST_ROLES].sort()).toEqual([...ROLES].sort());
    for (const role of ROLES) expect(TEST_KEYS[role]).toMatch(/^mrd_/);
  });
});

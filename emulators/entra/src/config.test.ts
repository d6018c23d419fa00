import { describe, expect, it } from "vitest";
import { parseRegistry } from "./config.js";

describe("parseRegistry", () => {
  it("accepts applications, resources, users and tenants", () => {
    const r = parseRegistry(
      JSON.stringify({
        resources: [{ appId: "r1", scopes: ["read"], audience: "uri" }],
        extraApplications: [{ clientId: "c1", secrets: ["s"], grants: { r1: { roles: ["Reader"] } } }],
        users: [{ username: "a@b" }],
        tenants: ["t1"],
      }),
    );
    expect(r.extraApplications?.[0]?.grants?.r1?.roles).toEqual(["Reader"]);
  });

  it("names the wrong field", () => {
    expect(() => parseRegistry(JSON.stringify({ applications: [{ clientId: "" }] }))).toThrow(/registry applications\.0\.clientId/);
    expect(() => parseRegistry(JSON.stringify({ resources: [{ appId: "r", audience: "x" }] }))).toThrow(/resources\.0\.audience/);
    expect(() => parseRegistry(JSON.stringify({ apps: [] }))).toThrow(/registry/);
    expect(() => parseRegistry("{")).toThrow(/not JSON/);
  });
});

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

  it("takes a single-page application's redirect URIs and users' app roles per resource, refusing what is not a URL", () => {
    const r = parseRegistry(
      JSON.stringify({
        extraApplications: [{ clientId: "spa", spaRedirectUris: ["http://127.0.0.1:8080/sign-in/callback"] }],
        users: [{ username: "a@b", appRoles: { r1: ["routes:admin"] } }],
      }),
    );
    expect(r.extraApplications?.[0]?.spaRedirectUris).toEqual(["http://127.0.0.1:8080/sign-in/callback"]);
    expect(r.users?.[0]?.appRoles).toEqual({ r1: ["routes:admin"] });
    expect(() => parseRegistry(JSON.stringify({ applications: [{ clientId: "c", spaRedirectUris: ["not a url"] }] }))).toThrow(
      /applications\.0\.spaRedirectUris\.0/,
    );
    expect(() => parseRegistry(JSON.stringify({ users: [{ username: "u", appRoles: { r1: "routes:admin" } }] }))).toThrow(
      /users\.0\.appRoles\.r1/,
    );
  });
});

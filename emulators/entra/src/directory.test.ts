import { describe, expect, it } from "vitest";
import { Directory, stableGuid } from "./directory.js";
import { EntraError } from "./errors.js";
import { OMNIA_RESOURCE_NONPROD, OMNIA_RESOURCE_PROD, resolveOptions } from "./options.js";

const dir = new Directory(resolveOptions({}));
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof EntraError) return `${err.error} ${err.code}`;
    throw err;
  }
  return "ok";
};

describe("Directory.resolveScope", () => {
  it("splits OIDC scopes from the one resource, by GUID or api:// URI, in any case", () => {
    const r = dir.resolveScope(`api://${OMNIA_RESOURCE_NONPROD.toUpperCase()}/user_impersonation openid offline_access`, "t");
    expect(r.resource.appId).toBe(OMNIA_RESOURCE_NONPROD);
    expect(r.permissions).toEqual(["user_impersonation"]);
    expect(r.oidc).toEqual(["openid", "offline_access"]);
  });

  it("refuses two resources (AADSTS28000), an unknown one (500011), and scopes that name none (70011)", () => {
    expect(code(() => dir.resolveScope(`${OMNIA_RESOURCE_NONPROD}/.default ${OMNIA_RESOURCE_PROD}/.default`, "t"))).toBe(
      "invalid_scope 28000",
    );
    expect(code(() => dir.resolveScope("11111111-2222-4333-8444-555555555555/.default", "t"))).toBe("invalid_resource 500011");
    expect(code(() => dir.resolveScope("openid profile", "t"))).toBe("invalid_scope 70011");
    expect(code(() => dir.resolveScope(`${OMNIA_RESOURCE_NONPROD}/`, "t"))).toBe("invalid_scope 70011");
  });
});

describe("Directory.tenant", () => {
  it("resolves common and organizations to the home tenant and refuses consumers", () => {
    expect(dir.tenant("common")).toBe(dir.opts.tenantId);
    expect(dir.tenant("Organizations")).toBe(dir.opts.tenantId);
    expect(dir.tenant("consumers")).toBeUndefined();
  });
});

describe("stableGuid", () => {
  it("is a version-4-shaped GUID, the same for the same name", () => {
    expect(stableGuid("user:a")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stableGuid("user:a")).toBe(stableGuid("user:a"));
    expect(stableGuid("user:a")).not.toBe(stableGuid("user:b"));
  });
});

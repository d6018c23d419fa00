import { describe, expect, it } from "vitest";
import { classify } from "./server.js";

describe("classify", () => {
  it("PI Web API, its OMF endpoint only for POST", () => {
    expect(classify("POST", "/piwebapi/omf")).toMatchObject({ kind: "pi", profile: "pi", rest: ["omf"], isOmf: true });
    expect(classify("GET", "/PIWebAPI/omf")).toMatchObject({ kind: "pi", isOmf: false });
  });

  it("tenants/default/namespaces/default is EDS, any other namespace ADH; a prefix forces the profile", () => {
    expect(classify("POST", "/api/v1/tenants/default/namespaces/default/omf")).toMatchObject({ kind: "sds", profile: "eds", isOmf: true });
    expect(classify("GET", "/api/v1/Tenants/t-1/Namespaces/Samples/Streams/a%20b")).toMatchObject({
      kind: "sds",
      profile: "adh",
      tenant: "t-1",
      namespace: "Samples",
      rest: ["Streams", "a b"],
    });
    expect(classify("POST", "/adh/api/v1/tenants/default/namespaces/default/omf")).toMatchObject({ profile: "adh", prefix: "/adh" });
    expect(classify("POST", "/eds/api/v1/tenants/t/namespaces/n/omf")).toMatchObject({ kind: "notfound" });
  });

  it("identity is ADH, product information EDS, anything else not found", () => {
    expect(classify("POST", "/adh/identity/connect/token")).toMatchObject({ kind: "identity", profile: "adh", prefix: "/adh" });
    expect(classify("GET", "/api/v1/diagnostics/productinformation")).toMatchObject({ kind: "edsinfo", profile: "eds" });
    expect(classify("GET", "/eds/identity/.well-known/openid-configuration").kind).toBe("notfound");
    expect(classify("GET", "/nothing/here").kind).toBe("notfound");
  });
});

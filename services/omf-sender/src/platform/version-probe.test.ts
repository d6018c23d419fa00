import { json, type RecordedRequest, type RecordingServer, type Reply, startRecordingServer, TEST_CA_PATH } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import { OmfClient, VERSION_PROBE_RETRY_MS } from "./client.js";
import type { OmfEndpointInput } from "./config.js";
import { OmfConflictError, OmfUnexpectedReplyError } from "./errors.js";
import { containerMessage, type OmfType, typeMessage } from "./messages.js";
import { PI_PARTIAL_409 } from "./testdata/bodies.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function server(handler: (req: RecordedRequest) => Reply, tls = false): Promise<RecordingServer> {
  const s = await startRecordingServer(handler, { tls });
  cleanups.push(() => s.close());
  return s;
}

function client(input: OmfEndpointInput, now?: () => number): OmfClient {
  const c = new OmfClient(input, { now });
  cleanups.push(() => c.close());
  return c;
}

const pi = (url: string, extra: Record<string, unknown> = {}) =>
  ({
    kind: "pi",
    url: `${url}/piwebapi`,
    username: "u",
    password: "p",
    caPemPath: TEST_CA_PATH,
    compression: false,
    ...extra,
  }) as OmfEndpointInput;
const TYPE: OmfType = {
  id: "T",
  type: "object",
  classification: "dynamic",
  properties: { Timestamp: { type: "string", format: "date-time", isindex: true } },
};
const posts = (s: RecordingServer) => s.requests.filter((r) => r.method === "POST");

describe("OMF version probe", () => {
  it("PI Web API without a version: asks /system once, speaks what it says (2019 → 1.0) and remembers it", async () => {
    const s = await server(
      (r) => (r.path === "/piwebapi/system" ? json(200, { ProductTitle: "PI Web API 2019 SP1", ProductVersion: "1.13" }) : json(200, "")),
      true,
    );
    const c = client(pi(s.url));
    expect(c.omfVersionInUse).toEqual({ version: "1.2", source: "default" });
    await c.send(typeMessage([TYPE]));
    await c.send(typeMessage([TYPE]));
    expect(s.requests.filter((r) => r.path === "/piwebapi/system")).toHaveLength(1);
    expect(s.requests.find((r) => r.path === "/piwebapi/system")?.headers.authorization).toMatch(/^Basic /);
    expect(posts(s).map((r) => r.headers["omfversion"])).toEqual(["1.0", "1.0"]);
    expect(c.omfVersionInUse).toEqual({ version: "1.0", source: "probed" });
  });

  it("a configured version is used as set: nothing is asked", async () => {
    const s = await server(() => json(200, ""), true);
    const c = client(pi(s.url, { omfVersion: "1.1" }));
    await c.send(typeMessage([TYPE]));
    expect(s.requests.map((r) => r.path)).toEqual(["/piwebapi/omf"]);
    expect(posts(s)[0]?.headers["omfversion"]).toBe("1.1");
  });

  it("Edge Data Store 1.0.x (OMF 1.0/1.1 only): product information says so, and 1.1 goes out with no setting", async () => {
    const s = await server((r) =>
      r.path === "/api/v1/diagnostics/productinformation"
        ? json(200, { "Product Name": "Edge Data Store", "Product Version": "1.0.2.9" })
        : json(204),
    );
    const c = client({ kind: "eds", url: s.url, compression: false });
    await c.send(containerMessage([{ id: "C", typeid: "T" }]));
    expect(posts(s)[0]?.headers["omfversion"]).toBe("1.1");
    expect(c.omfVersionInUse.source).toBe("probed");
  });

  it("an endpoint that is down when asked is asked again at the next call, not held at the default", async () => {
    let down = true;
    const s = await server(
      (r) => (r.path.endsWith("/system") ? (down ? json(503, "") : json(200, { ProductTitle: "PI Web API 2019" })) : json(200, "")),
      true,
    );
    const c = client(pi(s.url));
    expect(await c.omfVersion()).toBe("1.2");
    expect(c.omfVersionInUse.source).toBe("default");
    down = false;
    expect(await c.omfVersion()).toBe("1.0");
    expect(c.config.omfVersion).toBe("1.0");
    expect(s.requests.filter((r) => r.path.endsWith("/system"))).toHaveLength(2);
  });

  it("an answer that names no version leaves the default in use and is asked again only after VERSION_PROBE_RETRY_MS", async () => {
    let now = 1_000_000;
    const s = await server((r) => (r.path.endsWith("/system") ? json(404, "") : json(200, "")), true);
    const c = client(pi(s.url), () => now);
    await c.send(typeMessage([TYPE]));
    await c.send(typeMessage([TYPE]));
    expect(s.requests.filter((r) => r.path.endsWith("/system"))).toHaveLength(1);
    expect(posts(s).map((r) => r.headers["omfversion"])).toEqual(["1.2", "1.2"]);
    // Asked again by whoever shapes messages by the version (the pipeline, through the registry), not by send.
    expect(await c.omfVersion()).toBe("1.2");
    expect(s.requests.filter((r) => r.path.endsWith("/system"))).toHaveLength(1);
    now += VERSION_PROBE_RETRY_MS + 1;
    await c.omfVersion();
    expect(s.requests.filter((r) => r.path.endsWith("/system"))).toHaveLength(2);
  });

  it("AVEVA Data Hub speaks 1.2 and is not asked", () => {
    const c = client({ kind: "adh", url: "https://dh.example", tenantId: "t", namespaceId: "n", clientId: "c", clientSecret: "s" });
    expect(c.omfVersionInUse).toEqual({ version: "1.2", source: "probed" });
  });
});

describe("409 on create", () => {
  it("conflictIsSuccess: a 409 to a create resolves as already existing (the sample's reading); otherwise it rejects", async () => {
    const s = await server(() => json(409, PI_PARTIAL_409), true);
    const c = client(pi(s.url, { omfVersion: "1.2" }));
    const r = await c.send(typeMessage([TYPE]), { conflictIsSuccess: true });
    expect(r).toMatchObject({ ok: true, status: 409, alreadyExists: true });
    await expect(c.send(typeMessage([TYPE]))).rejects.toBeInstanceOf(OmfConflictError);
    // Not for a delete: a 409 there is the endpoint refusing it.
    await expect(c.send(typeMessage([TYPE], "delete"), { conflictIsSuccess: true })).rejects.toBeInstanceOf(OmfConflictError);
  });
});

describe("getJson", () => {
  it("follows no link off the endpoint's URL (its credentials go nowhere else)", async () => {
    const s = await server(() => json(200, {}), true);
    const c = client(pi(s.url, { omfVersion: "1.2" }));
    await expect(c.getJson("https://elsewhere.example/piwebapi/points")).rejects.toBeInstanceOf(OmfUnexpectedReplyError);
    await expect(c.getJson(`${s.url}/other/points`)).rejects.toBeInstanceOf(OmfUnexpectedReplyError);
    expect(s.requests).toHaveLength(0);
    await c.getJson(`${s.url}/piwebapi/points`, { query: { nameFilter: "a*" } });
    expect(s.requests[0]?.path).toBe("/piwebapi/points?nameFilter=a*");
    expect(s.requests[0]?.headers["accept-verbosity"]).toBe("verbose");
  });
});

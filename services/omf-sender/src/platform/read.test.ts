import { json, type RecordedRequest, type RecordingServer, type Reply, startRecordingServer } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import { OmfClient } from "./client.js";
import { OmfNotFoundError, OmfUnexpectedReplyError } from "./errors.js";
import { globMatcher, listPoints, listTypes, readValues } from "./read.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function eds(handler: (req: RecordedRequest) => Reply): Promise<{ s: RecordingServer; c: OmfClient }> {
  const s = await startRecordingServer(handler);
  const c = new OmfClient({ kind: "eds", url: s.url, omfVersion: "1.2" });
  cleanups.push(
    () => s.close(),
    () => c.close(),
  );
  return { s, c };
}

const BASE = "/api/v1/tenants/default/namespaces/default";
const streams = Array.from({ length: 7 }, (_, i) => ({ Id: `S${i}`, TypeId: "T" }));

describe("SDS lists (unverified: whether the server pages with skip/count and filters with query; both readings give the same page)", () => {
  it("a server that pages and filters: its page is taken as it is, and skip / count / query are sent", async () => {
    const { s, c } = await eds((r) => {
      const q = new URL(r.path, "http://x").searchParams;
      const skip = Number(q.get("skip"));
      return json(200, streams.slice(skip, skip + Number(q.get("count"))));
    });
    expect((await listPoints(c, "*", { skip: 2, count: 3 })).map((p) => p.name)).toEqual(["S2", "S3", "S4"]);
    expect(s.requests[0]?.path).toBe(`${BASE}/Streams?skip=2&count=3`);
    await listPoints(c, "S1*", { count: 3 });
    expect(new URL(s.requests[1]!.path, "http://x").searchParams.get("query")).toBe("Id:S1*");
  });

  it("a server that ignores both: the page and the filter are applied here", async () => {
    const { c } = await eds(() => json(200, streams));
    expect((await listPoints(c, "*", { skip: 2, count: 3 })).map((p) => p.name)).toEqual(["S2", "S3", "S4"]);
    expect((await listPoints(c, "s1*", { count: 3 })).map((p) => p.name)).toEqual(["S1"]);
  });

  it("a reply that is not the documented array is OmfUnexpectedReplyError", async () => {
    const { c } = await eds(() => json(200, { Items: [] }));
    await expect(listTypes(c)).rejects.toBeInstanceOf(OmfUnexpectedReplyError);
  });
});

describe("SDS values", () => {
  it("an empty last (204) is no data; a missing stream is OmfNotFoundError", async () => {
    const { c } = await eds((r) => {
      if (r.path.endsWith("/Streams/S1")) return json(200, { Id: "S1", TypeId: "T" });
      if (r.path.endsWith("/Types/T")) return json(200, { Id: "T", Properties: [{ Id: "Timestamp", IsKey: true }, { Id: "V" }] });
      if (r.path.endsWith("/Data/last")) return json(204);
      return json(404, { Error: "Stream not found", Reason: "No stream" });
    });
    expect(await readValues(c, "S1", { last: true })).toEqual({ values: [], noData: true, truncated: false });
    await expect(readValues(c, "S9", { last: true })).rejects.toBeInstanceOf(OmfNotFoundError);
  });
});

describe("globMatcher", () => {
  it("* any run, ? one character, case-insensitive, everything else literal", () => {
    const m = globMatcher("Tank.?.*");
    expect(m("tank.1.level")).toBe(true);
    expect(m("tankX1.level")).toBe(false);
    expect(globMatcher("a(b)")("a(b)")).toBe(true);
  });
});

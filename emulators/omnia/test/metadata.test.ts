import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, admin, type Env, startEnv } from "./harness.js";

let env: Env;
let api: Api;
beforeAll(async () => {
  env = await startEnv();
  api = env.api;
});
afterAll(() => env.stop());

describe("metadata", () => {
  it("lists with filters and pages the list with limit and continuationToken", async () => {
    const all = await api.get("/");
    expect(all.status).toBe(200);
    expect(all.json.data.items).toHaveLength(6);
    expect(all.json.continuationToken).toBeNull();
    const jsv = await api.get("/", { query: { facility: "jsv" } });
    expect(jsv.json.data.items.map((i: { name: string }) => i.name).sort()).toEqual([
      "JSV.20PT1234.PV",
      "JSV.20TT1001.PV",
      "JSV.HIRES.VIB01",
    ]);
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const r = await api.get("/", { query: { limit: 4, continuationToken: token } });
      ids.push(...r.json.data.items.map((i: { id: string }) => i.id));
      expect(r.json.count).toBe(r.json.data.items.length);
      token = r.json.continuationToken ?? undefined;
    } while (token);
    expect(new Set(ids).size).toBe(6);
    expect((await api.get("/", { query: { limit: 0 } })).status).toBe(400);
  });

  it("an item carries every field of the notes, standardUnit and the created/changed times included", async () => {
    const id = env.emu.seededIds()[0]!;
    const r = await api.get(`/${id}`);
    expect(r.json.data.items[0]).toEqual({
      id,
      name: "JSV.20PT1234.PV",
      description: "Separator pressure",
      step: false,
      unit: "barg",
      standardUnit: "bar",
      assetId: "JSV-20-VA-001",
      facility: "JSV",
      externalId: null,
      source: "IMS",
      createdTime: "2026-01-01T00:00:00.0000000Z",
      changedTime: "2026-01-01T00:00:00.0000000Z",
      metadata: { seeded: "true" },
    });
  });

  it("searches with * wildcards anywhere, in the path or in name, and by the facility's alias", async () => {
    const byPath = await api.get(`/search/${encodeURIComponent("ASGB.17IIC1030*")}`, { query: { source: "IMS" } });
    expect(byPath.json.data.items.map((i: { name: string }) => i.name)).toEqual(["ASGB.17IIC1030/A/PRIM"]);
    const slash = await api.get("/search/", { query: { name: "ASGB.17IIC1030/*/PRIM" } });
    expect(slash.json.data.items).toHaveLength(1);
    const unencoded = await api.get("/search/ASGB.17IIC1030/*/PRIM");
    expect(unencoded.json.data.items.map((i: { name: string }) => i.name)).toEqual(["ASGB.17IIC1030/A/PRIM"]);
    const inner = await api.get("/search", { query: { name: "*timeseries*", facility: "1191" } });
    expect(inner.json.data.items).toHaveLength(0); // the name does not hold it; the description does
    const desc = await api.get("/search", { query: { description: "*Omnia timeseries test*", facility: "1191" } });
    expect(desc.json.data.items).toHaveLength(1);
    expect((await api.get("/search", { query: { unit: "deg*" } })).json.data.items).toHaveLength(1);
  });

  it("creates (name + facility), refuses an unknown facility and a duplicate with the API's texts", async () => {
    const c = await api.post("/", { name: "New.Tag", facility: "troa", unit: "m", metadata: { a: "1" } });
    expect(c.status).toBe(201);
    const item = c.json.data.items[0];
    expect(item).toMatchObject({ name: "New.Tag", facility: "TROA", unit: "m", standardUnit: "m", source: "IFM", metadata: { a: "1" } });
    expect(item.createdTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/);
    const bad = await api.post("/", { name: "X", facility: "NOWHERE" });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe("Facility not found.");
    const dup = await api.post("/", { name: "New.Tag", facility: "TROA" });
    expect(dup.status).toBe(409);
    expect(dup.json.message).toBe("Attempt to store timeseries 'New.Tag' from 'TROA' which already exists");
    expect((await api.post("/", { facility: "TROA" })).status).toBe(400);
    const tooMany = Object.fromEntries(Array.from({ length: 18 }, (_, i) => [`k${i}`, "v"]));
    expect((await api.post("/", { name: "Many", facility: "TROA", metadata: tooMany })).status).toBe(400);
  });

  it("PATCH changes only what it names, PUT overwrites everything, both recorded in the history", async () => {
    const id = (await api.post("/", { name: "Hist", facility: "SNA", unit: "bar", description: "d" })).json.data.items[0].id as string;
    const p = await api.call("PATCH", `/${id}`, { body: { description: "patched" } });
    expect(p.status).toBe(200);
    expect(p.json.data.items[0]).toMatchObject({ description: "patched", unit: "bar" });
    const u = await api.call("PUT", `/${id}`, { body: { name: "Hist", facility: "SNA" } });
    expect(u.json.data.items[0]).toMatchObject({ description: null, unit: null });
    const h = await api.get(`/${id}/history`);
    expect(h.status).toBe(200);
    const items = h.json.data.items;
    expect(items).toHaveLength(3);
    expect(items[1]).toMatchObject({
      changedBy: "11111111-2222-3333-4444-555555555555",
      changes: { description: { oldValue: "d", newValue: "patched" } },
    });
    expect(items[2].changes.unit).toEqual({ oldValue: "bar", newValue: null });
    expect((await api.call("PUT", `/${id}`, { body: { description: "no name" } })).status).toBe(400);
  });

  it("get-or-add returns existing items and creates missing ones", async () => {
    const r = await api.post("/getoradd", [
      { name: "JSV.20PT1234.PV", facility: "JSV" },
      { name: "Added.One", facility: "JSV" },
    ]);
    expect(r.status).toBe(200);
    expect(r.json.data.items[0].id).toBe(env.emu.seededIds()[0]);
    const again = await api.post("/getoradd", [{ name: "Added.One", facility: "jsv" }]);
    expect(again.json.data.items[0].id).toBe(r.json.data.items[1].id);
  });

  it("DELETE removes the series; then it is 404", async () => {
    const id = (await api.post("/", { name: "Gone", facility: "SNA" })).json.data.items[0].id as string;
    const d = await api.call("DELETE", `/${id}`);
    expect(d.status).toBe(200);
    expect(d.json).toMatchObject({ statusCode: 200, traceId: expect.any(String) });
    expect((await api.get(`/${id}`)).status).toBe(404);
  });

  it("facets count series per facility and per source, filtered by the other", async () => {
    const f = await api.get("/facets/facility", { query: { source: "IMS" } });
    expect(f.json.data.items).toEqual([
      { facility: "ASGB", count: 1 },
      { facility: "JSV", count: 3 },
      { facility: "SNA", count: 2 },
    ]);
    const s = await api.get("/facets/source", { query: { facility: "1191" } });
    expect(s.json.data.items).toEqual([{ source: "IMS", count: 1 }]);
  });

  it("a wrong method is 405 MessageModel", async () => {
    const r = await api.call("DELETE", "/search");
    expect(r.status).toBe(405);
    expect(r.json.statusCode).toBe(405);
  });
});

describe("streaming setup", () => {
  it("destination, subscriptions create/list/delete; written points become datapoints_v2 events", async () => {
    const id = env.emu.seededIds()[1]!;
    expect((await api.post("/streaming/destination", { connectionString: "nope" })).status).toBe(400);
    const d = await api.post("/streaming/destination", {
      connectionString: "Endpoint=sb://hub.servicebus.windows.net/;SharedAccessKeyName=w;SharedAccessKey=abc=;EntityPath=omnia",
    });
    expect(d.status).toBe(200);
    expect((await api.post("/streaming/subscriptions", [{ id }])).status).toBe(200);
    const l = await api.get("/streaming/subscriptions");
    expect(l.json.data.items).toEqual([{ id, customerId: "11111111-2222-3333-4444-555555555555" }]);
    await api.post(`/${id}/data`, { datapoints: [{ time: "2026-03-01T00:00:00Z", value: 7, status: 192 }] });
    const ev = await fetchEvents();
    expect(ev.at(-1)).toEqual({
      schema: "equinor/plant/schemas/ingest/datapoints_v2",
      data: { items: [{ id, datapoints: [{ time: "2026-03-01T00:00:00.0000000Z", value: 7, status: 192 }] }] },
    });
    expect((await api.call("DELETE", `/streaming/subscriptions/${id}`)).status).toBe(200);
    expect((await api.call("DELETE", `/streaming/subscriptions/${id}`)).status).toBe(404);
  });
});

async function fetchEvents() {
  return (await admin(env.emu, "GET", "streaming/events")).json.events as unknown[];
}

import { describe, expect, it } from "vitest";
import type { RunningOmfEmulator } from "../src/index.js";
import { ADH_BASE, adhPost, EDS_BASE, edsPost, getJson, PI_AUTH, piPost, SEED_CONTAINERS, SEED_TYPES, useEmulator } from "./harness.js";

/** The read paths the seed's test.py (and a clean-up) use, in the shapes of PI Web API and SDS (notes §3.4, §6.11). */
let emu: RunningOmfEmulator;
let token: string;
useEmulator((shared) => ({ emu, token } = shared), { settingsEachTest: { piPointNames: "simple", sdsTimestamps: "trimmed" } });

const PI = { authorization: PI_AUTH };
const TANK = {
  id: "Tank",
  classification: "dynamic",
  type: "object",
  properties: {
    Time: { type: "string", format: "date-time", isindex: true },
    Level: { type: "number", format: "float64", uom: "m" },
    Label: { type: "string" },
  },
};
const values = (n: number, from = Date.UTC(2024, 0, 1)) =>
  Array.from({ length: n }, (_, i) => ({ Time: new Date(from + i * 1000).toISOString(), Level: i, Label: `v${i}` }));

async function piPoints(filter: string) {
  const ds = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, PI);
  return (await getJson(`${ds.body.Links.Points}?nameFilter=${encodeURIComponent(filter)}`, PI)).body.Items as {
    Name: string;
    WebId: string;
    Links: Record<string, string>;
  }[];
}

describe("PI Web API read paths", () => {
  it("data server by name or by path, with its WebId and Links.Points; an unknown name → 404", async () => {
    const byName = await getJson(`${emu.url}/piwebapi/dataservers?name=meridian-pi`, PI);
    expect(byName.status).toBe(200);
    expect(byName.body).toMatchObject({ Name: "MERIDIAN-PI", WebId: expect.stringMatching(/^F1DS/), Path: "\\\\PIServers[MERIDIAN-PI]" });
    expect(byName.body.Links.Points).toBe(`${emu.url}/piwebapi/dataservers/${byName.body.WebId}/points`);
    const byPath = await getJson(`${emu.url}/piwebapi/dataservers?path=${encodeURIComponent("\\\\MERIDIAN-PI")}`, PI);
    expect(byPath.body.WebId).toBe(byName.body.WebId);
    const list = await getJson(`${emu.url}/piwebapi/dataservers`, PI);
    expect(list.body.Items.map((d: { WebId: string }) => d.WebId)).toEqual([byName.body.WebId]);
    const missing = await getJson(`${emu.url}/piwebapi/dataservers?name=OTHER`, PI);
    expect(missing.status).toBe(404);
    expect(missing.body.Errors).toHaveLength(1);
  });

  it("points by name filter (wildcards, case-insensitive) with Items, WebId and Links to value / recorded", async () => {
    await piPost(emu.url, "type", [TANK]);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await piPost(emu.url, "container", [{ id: "Tank2", typeid: "Tank" }]);
    const all = await piPoints("tank*");
    expect(all.map((p) => p.Name)).toEqual(["Tank1.Label", "Tank1.Level", "Tank2.Label", "Tank2.Level"]);
    const one = await piPoints("Tank1.Lev?l");
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ PointType: "Float64", EngineeringUnits: "m", WebId: expect.stringMatching(/^F1DP/) });
    expect(one[0]!.Links.Value).toBe(`${emu.url}/piwebapi/streams/${one[0]!.WebId}/value`);
    expect(one[0]!.Links.RecordedData).toBe(`${emu.url}/piwebapi/streams/${one[0]!.WebId}/recorded`);
    const point = await getJson(`${emu.url}/piwebapi/points/${one[0]!.WebId}`, PI);
    expect(point.body.Name).toBe("Tank1.Level");
  });

  it("recorded values in a window honour startTime, endTime and maxCount; value is the current one", async () => {
    await piPost(emu.url, "type", [TANK]);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await piPost(emu.url, "data", [{ containerid: "Tank1", values: values(10) }]);
    const [label, level] = await piPoints("Tank1.*");
    expect(label!.Name).toBe("Tank1.Label");
    const rec = await getJson(`${level!.Links.RecordedData}?startTime=2024-01-01T00:00:02Z&endTime=2024-01-01T00:00:07Z&maxCount=4`, PI);
    expect(rec.status).toBe(200);
    expect(rec.body.Items.map((i: { Value: number }) => i.Value)).toEqual([2, 3, 4, 5]);
    expect(rec.body.Items[0]).toEqual({
      Timestamp: "2024-01-01T00:00:02Z",
      Value: 2,
      UnitsAbbreviation: "m",
      Good: true,
      Questionable: false,
      Substituted: false,
      Annotated: false,
    });
    const window = await getJson(`${level!.Links.RecordedData}?startTime=2024-01-01T00:00:08Z&endTime=2024-01-01T00:01:00Z`, PI);
    expect(window.body.Items.map((i: { Value: number }) => i.Value)).toEqual([8, 9]);
    const current = await getJson(label!.Links.Value!, PI);
    expect(current.body).toMatchObject({ Timestamp: "2024-01-01T00:00:09Z", Value: "v9", Good: true, Questionable: false });
  });

  it("read paths need Basic auth (401 with WWW-Authenticate), an unknown WebId is 404", async () => {
    const r = await fetch(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toMatch(/^Basic/);
    expect((await getJson(`${emu.url}/piwebapi/streams/F1DPbm9wZQ/value`, PI)).status).toBe(404);
  });

  it("point names: a one-value type's point is the container id, others container.property (the notes' reading, default)", async () => {
    for (const t of SEED_TYPES) await piPost(emu.url, "type", [t]);
    for (const c of SEED_CONTAINERS) await piPost(emu.url, "container", [c]);
    expect((await piPoints("*")).map((p) => p.Name)).toEqual([
      "FirstContainer",
      "FourthContainer",
      "SecondContainer",
      "ThirdContainer.NumberProperty1",
      "ThirdContainer.NumberProperty2",
      "ThirdContainer.StringEnum",
    ]);
  });

  it("point names under piPointNames 'property' (unverified other reading of the docs): every point is container.property", async () => {
    await fetch(`${emu.url}/_emulator/settings`, { method: "POST", body: JSON.stringify({ piPointNames: "property" }) });
    await piPost(emu.url, "type", [SEED_TYPES[0]]);
    await piPost(emu.url, "container", [SEED_CONTAINERS[0]]);
    expect((await piPoints("First*")).map((p) => p.Name)).toEqual(["FirstContainer.IntegerProperty"]);
  });
});

describe("SDS read paths and deletes (EDS and ADH)", () => {
  const profiles = [
    { name: "EDS", base: () => `${emu.url}${EDS_BASE}`, h: () => ({}), post: (mt: string, b: unknown) => edsPost(emu.url, mt, b) },
    {
      name: "ADH",
      base: () => `${emu.url}${ADH_BASE}`,
      h: () => ({ authorization: `Bearer ${token}` }),
      post: (mt: string, b: unknown) => adhPost(emu.url, token, mt, b),
    },
  ];

  for (const p of profiles) {
    it(`${p.name}: Types, Types/{id}, Streams, Streams/{id}, Data in a window, Data/Last`, async () => {
      await p.post("type", [TANK]);
      await p.post("container", [{ id: "Tank1", typeid: "Tank", name: "Tank one" }]);
      await p.post("data", [{ containerid: "Tank1", values: values(5) }]);
      const types = await getJson(`${p.base()}/Types`, p.h());
      expect(types.body.map((t: { Id: string }) => t.Id)).toEqual(["Tank"]);
      const type = await getJson(`${p.base()}/Types/tank`, p.h());
      expect(type.body.Properties.find((x: { Id: string }) => x.Id === "Time")).toMatchObject({ IsKey: true });
      const streams = await getJson(`${p.base()}/Streams`, p.h());
      expect(streams.body).toEqual([expect.objectContaining({ Id: "Tank1", TypeId: "Tank", Name: "Tank one" })]);
      expect((await getJson(`${p.base()}/Streams/Tank1`, p.h())).body.TypeId).toBe("Tank");
      const window = await getJson(`${p.base()}/Streams/Tank1/Data?startIndex=2024-01-01T00:00:01Z&endIndex=2024-01-01T00:00:03Z`, p.h());
      expect(window.body.map((e: { Time: string }) => e.Time)).toEqual([
        "2024-01-01T00:00:01Z",
        "2024-01-01T00:00:02Z",
        "2024-01-01T00:00:03Z",
      ]);
      const last = await getJson(`${p.base()}/Streams/Tank1/Data/Last`, p.h());
      expect(last.body).toEqual({ Time: "2024-01-01T00:00:04Z", Level: 4, Label: "v4" });
    });

    it(`${p.name}: DELETE a type a stream uses → 409; DELETE the stream → 204, again → 404; then the type → 204, again → 404`, async () => {
      await p.post("type", [TANK]);
      await p.post("container", [{ id: "Tank1", typeid: "Tank" }]);
      await p.post("data", [{ containerid: "Tank1", values: values(2) }]);
      const del = (path: string) => fetch(`${p.base()}/${path}`, { method: "DELETE", headers: p.h() });
      const inUse = await del("Types/Tank");
      expect(inUse.status).toBe(409);
      expect(((await inUse.json()) as { Error: string }).Error).toBe("The type is in use");
      expect((await del("Streams/tank1")).status).toBe(204);
      expect((await del("Streams/Tank1")).status).toBe(404);
      expect((await getJson(`${p.base()}/Streams/Tank1/Data/Last`, p.h())).status).toBe(404);
      expect((await del("Types/Tank")).status).toBe(204);
      expect((await del("Types/Tank")).status).toBe(404);
      expect((await getJson(`${p.base()}/Types`, p.h())).body).toEqual([]);
      // what was deleted can be created again, with another definition
      expect((await p.post("type", [{ ...TANK, properties: { Time: TANK.properties.Time, Other: { type: "integer" } } }])).status).toBe(
        202,
      );
    });
  }

  it("ADH: DELETE without a bearer token → 401, nothing deleted", async () => {
    await adhPost(emu.url, token, "type", [TANK]);
    expect((await fetch(`${emu.url}${ADH_BASE}/Types/Tank`, { method: "DELETE" })).status).toBe(401);
    expect((await getJson(`${emu.url}${ADH_BASE}/Types/Tank`, { authorization: `Bearer ${token}` })).status).toBe(200);
  });
});

describe("timestamps kept to 100 ns (7 fractional digits)", () => {
  const at = (ts: string, level: number) => [{ containerid: "Tank1", values: [{ Time: ts, Level: level }] }];

  it("SDS: digits past the 7th are dropped, so two events within 100 ns are one event (the later wins)", async () => {
    await edsPost(emu.url, "type", [TANK]);
    await edsPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await edsPost(emu.url, "data", at("2024-01-01T00:00:00.123456789Z", 1));
    await edsPost(emu.url, "data", at("2024-01-01T00:00:00.123456700Z", 2));
    const all = await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data?startIndex=2024-01-01T00:00:00Z&endIndex=2024-01-02T00:00:00Z`);
    expect(all.body).toEqual([{ Time: "2024-01-01T00:00:00.1234567Z", Level: 2 }]);
  });

  it("SDS timestamps render trimmed by default; fixed7 and asSent are switches (unverified which form SDS prints)", async () => {
    await edsPost(emu.url, "type", [TANK]);
    await edsPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await edsPost(emu.url, "data", at("2024-01-01T01:00:00.120+01:00", 1));
    const last = async () => (await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data/Last`, { "Accept-Verbosity": "verbose" })).body.Time;
    expect(await last()).toBe("2024-01-01T00:00:00.12Z");
    await fetch(`${emu.url}/_emulator/settings`, { method: "POST", body: JSON.stringify({ sdsTimestamps: "fixed7" }) });
    expect(await last()).toBe("2024-01-01T00:00:00.1200000Z");
    await fetch(`${emu.url}/_emulator/settings`, { method: "POST", body: JSON.stringify({ sdsTimestamps: "asSent" }) });
    expect(await last()).toBe("2024-01-01T01:00:00.120+01:00");
  });

  it("PI: recorded timestamps are kept to 100 ns; within 100 ns is the same time (Insert keeps both values there)", async () => {
    await piPost(emu.url, "type", [TANK]);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await piPost(emu.url, "data", at("2024-01-01T00:00:00.123456789Z", 1));
    await piPost(emu.url, "data", at("2024-01-01T00:00:00.12345671Z", 2));
    const [, level] = await piPoints("Tank1.*");
    const rec = await getJson(`${level!.Links.RecordedData}?startTime=2024-01-01T00:00:00Z&endTime=2024-01-01T00:00:01Z`, PI);
    expect(rec.body.Items.map((i: { Timestamp: string; Value: number }) => [i.Timestamp, i.Value])).toEqual([
      ["2024-01-01T00:00:00.1234567Z", 1],
      ["2024-01-01T00:00:00.1234567Z", 2],
    ]);
  });
});

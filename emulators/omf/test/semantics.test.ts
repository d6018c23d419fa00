import { describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { ADH_BASE, adhPost, EDS_BASE, edsPost, getJson, PI_AUTH, piPost, SEED_CONTAINERS, SEED_TYPES, useEmulator } from "./harness.js";

let emu: RunningOmfEmulator;
let token: string;
useEmulator((shared) => ({ emu, token } = shared));

const PI = { authorization: PI_AUTH };
const TANK = {
  id: "Tank",
  classification: "dynamic",
  type: "object",
  properties: {
    Time: { type: "string", format: "date-time", isindex: true },
    Level: { type: "number", format: "float64" },
    Count: { type: "integer", format: "int16" },
    Label: { type: "string" },
  },
};
const TANK1 = { id: "Tank1", typeid: "Tank" };

async function piSetup() {
  expect((await piPost(emu.url, "type", [TANK])).status).toBe(201);
  expect((await piPost(emu.url, "container", [TANK1])).status).toBe(201);
}

async function state() {
  return (await getJson(`${emu.url}/_emulator/state`)).body;
}

describe("ordering: type before container before data", () => {
  it("PI: data for an unknown container → 404 'Container not found.' in Messages[0]", async () => {
    const r = await piPost(emu.url, "data", [{ containerid: "Nope", values: [{ Time: "2024-01-01T00:00:00Z", Level: 1 }] }]);
    expect(r.status).toBe(404);
    expect(r.body.Messages[0]).toMatchObject({ MessageIndex: 0, Status: { Code: 404, HighestSeverity: "Error" } });
    expect(r.body.Messages[0].Events[0].EventInfo.Message).toBe("Container not found.");
  });

  it("SDS (EDS, ADH): data for an unknown container → 400 'Container is not defined'", async () => {
    const body = [{ containerid: "Nope", values: [{ Time: "2024-01-01T00:00:00Z" }] }];
    for (const r of [await edsPost(emu.url, "data", body), await adhPost(emu.url, token, "data", body)]) {
      expect(r.status).toBe(400);
      expect(r.body.Error).toBe("Container is not defined");
      expect(r.body.Parameters.MessageIndex).toBe("0");
    }
  });

  it("container before its type → PI 404, SDS 400; nothing is auto-created", async () => {
    expect((await piPost(emu.url, "container", [TANK1])).status).toBe(404);
    expect((await edsPost(emu.url, "container", [TANK1])).status).toBe(400);
    const s = await state();
    expect(s.scopes.pi.containers).toEqual({});
    expect(s.scopes.eds.containers).toEqual({});
  });
});

describe("create semantics", () => {
  it("identical re-create of type and container is idempotent (PI 200, SDS 202)", async () => {
    await piSetup();
    expect((await piPost(emu.url, "type", [TANK])).status).toBe(200);
    expect((await piPost(emu.url, "container", [TANK1])).status).toBe(200);
    // keyword and enum-value case does not make a definition different
    expect((await piPost(emu.url, "type", [{ ...TANK, classification: "Dynamic", Type: "OBJECT", type: undefined }])).status).toBe(200);
    expect((await edsPost(emu.url, "type", [TANK])).status).toBe(202);
    expect((await edsPost(emu.url, "type", [TANK])).status).toBe(202);
  });

  it("re-creating a container under another omfversion is still identical; PI 1.1 typeversion must match the type's version", async () => {
    await piSetup();
    expect((await piPost(emu.url, "container", [TANK1], { version: "1.2" })).status).toBe(200);
    expect((await piPost(emu.url, "container", [{ ...TANK1, typeversion: "1.0.0.0" }], { version: "1.1" })).status).toBe(200);
    const r = await piPost(emu.url, "container", [{ id: "Tank2", typeid: "Tank", typeversion: "2.0.0.0" }], { version: "1.1" });
    expect(r.status).toBe(404);
  });

  it("ADH read-back of a namespace nothing was written to: empty lists, 404 for ids", async () => {
    const h = { authorization: `Bearer ${token}` };
    const base = `${emu.url}/api/v1/tenants/t-0001/namespaces/Empty`;
    expect((await getJson(`${base}/Types`, h)).body).toEqual([]);
    expect((await getJson(`${base}/Streams`, h)).body).toEqual([]);
    expect((await getJson(`${base}/Streams/x`, h)).status).toBe(404);
  });

  it("PI: type redefinition with the same id → 409 with the PI message", async () => {
    await piSetup();
    const changed = { ...TANK, properties: { ...TANK.properties, Level: { type: "number", format: "float32" } } };
    const r = await piPost(emu.url, "type", [changed]);
    expect(r.status).toBe(409);
    expect(r.body.Messages[0].Events[0].EventInfo.Message).toBe(
      "A type with the supplied ID and version already exists, but it does not match the supplied type.",
    );
  });

  it("SDS: type redefinition → 400 'Redefinition of the type with the same ID is not allowed'", async () => {
    await edsPost(emu.url, "type", [TANK]);
    const changed = { ...TANK, properties: { ...TANK.properties, Extra: { type: "number" } } };
    const r = await edsPost(emu.url, "type", [changed]);
    expect(r.status).toBe(400);
    expect(r.body.Error).toBe("Redefinition of the type with the same ID is not allowed");
  });

  it("PI: container redefinition → 409; SDS → 400", async () => {
    await piSetup();
    const r = await piPost(emu.url, "container", [{ ...TANK1, description: "changed" }]);
    expect(r.status).toBe(409);
    expect(r.body.Messages[0].Events[0].EventInfo.Message).toBe(
      "A container with the supplied ID already exists, but does not match the supplied container.",
    );
    await edsPost(emu.url, "type", [TANK]);
    await edsPost(emu.url, "container", [TANK1]);
    expect((await edsPost(emu.url, "container", [{ ...TANK1, name: "other" }])).status).toBe(400);
  });

  it("PI: ids are case-insensitive (re-create with other case is the same object)", async () => {
    await piSetup();
    expect((await piPost(emu.url, "container", [{ id: "TANK1", typeid: "tank" }])).status).toBe(200);
    const r = await piPost(emu.url, "data", [{ containerid: "tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: 1 }] }]);
    expect(r.status).toBe(202);
  });

  it("PI: a container whose point names collide (case-insensitive) with another's → 409 overlaps", async () => {
    await piSetup(); // points Tank1.Level, Tank1.Count, Tank1.Label
    const simple = {
      id: "Simple",
      classification: "dynamic",
      type: "object",
      properties: { Time: { type: "string", format: "date-time", isindex: true }, V: { type: "number" } },
    };
    await piPost(emu.url, "type", [simple]);
    const r = await piPost(emu.url, "container", [{ id: "TANK1.level", typeid: "Simple" }]);
    expect(r.status).toBe(409);
    expect(r.body.Messages[0].Events[0].EventInfo.Message).toBe("The supplied container overlaps with a different existing container.");
  });

  it("PI: per-message results — good messages are applied, the overall status is the worst message", async () => {
    await piSetup();
    const r = await piPost(emu.url, "data", [
      { containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: 1 }] },
      { containerid: "Missing", values: [{ Time: "2024-01-01T00:00:00Z" }] },
      { containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:01Z", Level: 2 }] },
    ]);
    expect(r.status).toBe(404);
    expect(r.body.Messages.map((m: { Status: { Code: number } }) => m.Status.Code)).toEqual([202, 404, 202]);
    expect((await state()).scopes.pi.containers.Tank1.valueCount).toBe(2);
  });
});

describe("type validation", () => {
  const bad: [string, unknown][] = [
    ["id starting with __", { ...TANK, id: "__Tank" }],
    ["missing classification", { ...TANK, classification: undefined }],
    ["type not object", { ...TANK, type: "array" }],
    ["unknown property type", { ...TANK, properties: { ...TANK.properties, X: { type: "decimal" } } }],
    ["format not valid for type", { ...TANK, properties: { ...TANK.properties, X: { type: "integer", format: "float64" } } }],
    ["PI: two index properties", { ...TANK, properties: { ...TANK.properties, X: { type: "string", isindex: true } } }],
    [
      "PI: non date-time index on a dynamic type",
      { ...TANK, properties: { Time: { type: "integer", isindex: true }, V: { type: "number" } } },
    ],
    ["PI: float16", { ...TANK, properties: { ...TANK.properties, X: { type: "number", format: "float16" } } }],
    ["PI: reserved character in id", { ...TANK, id: "Tank*1" }],
  ];
  for (const [what, def] of bad) {
    it(`${what} → 400`, async () => {
      const r = await piPost(emu.url, "type", [def], { version: "1.2" });
      expect(r.status).toBe(400);
      expect(r.body.Messages[0].MessageIndex).toBe(0);
    });
  }

  it("SDS accepts a compound index and non date-time index; PI needs exactly one date-time index", async () => {
    const compound = {
      id: "Compound",
      classification: "dynamic",
      type: "object",
      properties: { A: { type: "integer", isindex: true }, B: { type: "string", isindex: true }, V: { type: "number" } },
    };
    expect((await edsPost(emu.url, "type", [compound])).status).toBe(202);
    expect((await piPost(emu.url, "type", [compound])).status).toBe(400);
    const t = await getJson(`${emu.url}${EDS_BASE}/Types/Compound`);
    expect(t.body.Properties.filter((p: { IsKey: boolean }) => p.IsKey).map((p: { Order: number }) => p.Order)).toEqual([0, 1]);
  });

  it("SDS ignores static types and static/link data", async () => {
    const stat = {
      id: "Site",
      classification: "static",
      type: "object",
      properties: { Name: { type: "string", isindex: true }, City: { type: "string" } },
    };
    expect((await edsPost(emu.url, "type", [stat])).status).toBe(202);
    expect((await getJson(`${emu.url}${EDS_BASE}/Types/Site`)).status).toBe(404);
    expect((await edsPost(emu.url, "data", [{ typeid: "Site", values: [{ Name: "A" }] }])).status).toBe(202);
    expect(
      (
        await edsPost(emu.url, "data", [
          { typeid: "__Link", values: [{ source: { typeid: "Site", index: "A" }, target: { containerid: "x" } }] },
        ])
      ).status,
    ).toBe(202);
  });

  it("type in use by a container cannot be deleted (PI 409); after deleting the container it can", async () => {
    await piSetup();
    expect((await piPost(emu.url, "type", [{ id: "Tank" }], { action: "delete", version: "1.2" })).status).toBe(409);
    expect((await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }], { action: "delete", version: "1.2" })).status).toBe(200);
    expect((await piPost(emu.url, "type", [{ id: "Tank" }], { action: "delete", version: "1.2" })).status).toBe(200);
    // try-remove: deleting again is still success
    expect((await piPost(emu.url, "type", [{ id: "Tank" }], { action: "delete", version: "1.2" })).status).toBe(200);
  });

  it("type update → PI 501, SDS 400 (unverified: notes say only 'not implemented' / 'immutable')", async () => {
    await piSetup();
    expect((await piPost(emu.url, "type", [TANK], { action: "update" })).status).toBe(501);
    await adhPost(emu.url, token, "type", [TANK]);
    expect((await adhPost(emu.url, token, "type", [TANK], { action: "update" })).status).toBe(400);
  });
});

describe("data values", () => {
  it("unknown property → 400; wrong JSON type → 400 (3003); out of range for int16 → 400 (3004)", async () => {
    await piSetup();
    const v = (x: object) => [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", ...x }] }];
    const unknown = await piPost(emu.url, "data", v({ Nope: 1 }));
    expect(unknown.status).toBe(400);
    const wrong = await piPost(emu.url, "data", v({ Level: "high" }));
    expect(wrong.status).toBe(400);
    expect(wrong.body.Messages[0].Events[0].EventInfo.EventCode).toBe(3003);
    const range = await piPost(emu.url, "data", v({ Count: 40000 }));
    expect(range.status).toBe(400);
    expect(range.body.Messages[0].Events[0].EventInfo.EventCode).toBe(3004);
    const badTime = await piPost(emu.url, "data", [{ containerid: "Tank1", values: [{ Time: "yesterday", Level: 1 }] }]);
    expect(badTime.status).toBe(400);
    expect((await state()).scopes.pi.containers.Tank1.valueCount).toBe(0);
  });

  it("missing properties get defaults; nullable (1.1) properties accept null, non-nullable reject it", async () => {
    await edsPost(emu.url, "type", [TANK]);
    await edsPost(emu.url, "container", [TANK1]);
    expect((await edsPost(emu.url, "data", [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z" }] }])).status).toBe(202);
    const last = await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data/last`, { "Accept-Verbosity": "verbose" });
    expect(last.body).toEqual({ Time: "2024-01-01T00:00:00Z", Level: 0, Count: 0, Label: null });
    const terse = await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data/last`);
    expect(terse.body).toEqual({ Time: "2024-01-01T00:00:00Z" });
    const nullBad = await edsPost(emu.url, "data", [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: null }] }]);
    expect(nullBad.status).toBe(400);
    const nullableType = {
      id: "N",
      classification: "dynamic",
      type: "object",
      properties: { Time: { type: "string", format: "date-time", isindex: true }, V: { type: ["number", "null"] } },
    };
    await edsPost(emu.url, "type", [nullableType]);
    await edsPost(emu.url, "container", [{ id: "N1", typeid: "N" }]);
    expect((await edsPost(emu.url, "data", [{ containerid: "N1", values: [{ Time: "2024-01-01T00:00:00Z", V: null }] }])).status).toBe(202);
  });

  it("SDS: writing the same index twice replaces (no duplicate); values are kept ordered by index", async () => {
    await edsPost(emu.url, "type", [TANK]);
    await edsPost(emu.url, "container", [TANK1]);
    const at = (t: string, level: number) => ({ Time: t, Level: level });
    await edsPost(emu.url, "data", [{ containerid: "Tank1", values: [at("2024-01-01T00:00:03Z", 3), at("2024-01-01T00:00:01Z", 1)] }]);
    await edsPost(emu.url, "data", [{ containerid: "Tank1", values: [at("2024-01-01T00:00:02Z", 2), at("2024-01-01T00:00:01.000Z", 10)] }]);
    const all = await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data?startIndex=2024-01-01T00:00:00Z&endIndex=2024-01-02T00:00:00Z`);
    expect(all.body.map((v: { Level: number }) => v.Level)).toEqual([10, 2, 3]);
    expect((await state()).scopes.eds.containers.Tank1.valueCount).toBe(3);
  });

  it("PI create with a duplicate timestamp keeps both values (unverified: OmfCreateMode default taken as Insert)", async () => {
    await piSetup();
    const v = (level: number) => [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: level }] }];
    await piPost(emu.url, "data", v(1));
    await piPost(emu.url, "data", v(2));
    expect((await state()).scopes.pi.containers.Tank1.valueCount).toBe(2);
    // update (OMF 1.2) follows OmfCreateMode by default: under Insert it adds a third value
    expect((await piPost(emu.url, "data", v(3), { action: "update", version: "1.2" })).status).toBe(202);
    const s = (await state()).scopes.pi.containers.Tank1;
    expect(s.valueCount).toBe(3);
    expect(s.values.map((x: { Level: number }) => x.Level)).toEqual([1, 2, 3]);
  });

  it("PI OmfCreateMode replace / noreplace are switchable", async () => {
    for (const [mode, expected] of [
      ["replace", 2],
      ["noreplace", 1],
    ] as const) {
      const e = await startOmfEmulator({ settings: { createMode: { pi: mode } } });
      try {
        await piPost(e.url, "type", [TANK]);
        await piPost(e.url, "container", [TANK1]);
        for (const level of [1, 2])
          await piPost(e.url, "data", [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: level }] }]);
        const s = (await getJson(`${e.url}/_emulator/state`)).body.scopes.pi.containers.Tank1;
        expect(s.valueCount).toBe(1);
        expect(s.values[0].Level).toBe(expected);
      } finally {
        await e.stop();
      }
    }
  });

  it("data update under OMF < 1.2 → 400; EDS rejects update entirely; ADH 1.2 update replaces", async () => {
    await piSetup();
    const body = [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: 1 }] }];
    expect((await piPost(emu.url, "data", body, { action: "update", version: "1.1" })).status).toBe(400);
    await edsPost(emu.url, "type", [TANK]);
    await edsPost(emu.url, "container", [TANK1]);
    const eds = await edsPost(emu.url, "data", body, { action: "update", version: "1.2" });
    expect(eds.status).toBe(400);
    expect(eds.body.Error).toMatch(/not supported/);
    await adhPost(emu.url, token, "type", [TANK]);
    await adhPost(emu.url, token, "container", [TANK1]);
    expect((await adhPost(emu.url, token, "data", body, { action: "update", version: "1.2" })).status).toBe(202);
  });

  it("data delete removes the values at the given indexes", async () => {
    await piSetup();
    const vals = ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"].map((Time, i) => ({ Time, Level: i }));
    await piPost(emu.url, "data", [{ containerid: "Tank1", values: vals }]);
    expect(
      (await piPost(emu.url, "data", [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:01Z" }] }], { action: "delete" })).status,
    ).toBe(200);
    const s = (await state()).scopes.pi.containers.Tank1;
    expect(s.values.map((v: { Level: number }) => v.Level)).toEqual([0, 2]);
  });

  it("container delete removes its points and data", async () => {
    await piSetup();
    await piPost(emu.url, "data", [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: 1 }] }]);
    await piPost(emu.url, "container", [TANK1], { action: "delete" });
    const pts = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, PI).then((r) =>
      getJson(`${r.body.Links.Points}?nameFilter=Tank1*`, PI),
    );
    expect(pts.body.Items).toEqual([]);
    expect((await piPost(emu.url, "data", [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z" }] }])).status).toBe(404);
  });

  it("PI recorded values come back ordered with PI-style timestamps", async () => {
    await piSetup();
    await piPost(emu.url, "data", [
      {
        containerid: "Tank1",
        values: [
          { Time: "2024-01-01T00:00:02.5000000Z", Level: 2 },
          { Time: "2024-01-01T00:00:01Z", Level: 1 },
        ],
      },
    ]);
    const pts = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, PI).then((r) =>
      getJson(`${r.body.Links.Points}?nameFilter=Tank1.Level`, PI),
    );
    const rec = await getJson(`${pts.body.Items[0].Links.RecordedData}?startTime=2024-01-01T00:00:00Z&endTime=2024-01-02T00:00:00Z`, PI);
    expect(rec.body.Items.map((i: { Timestamp: string; Value: number }) => [i.Timestamp, i.Value])).toEqual([
      ["2024-01-01T00:00:01Z", 1],
      ["2024-01-01T00:00:02.5Z", 2],
    ]);
  });

  it("ADH converts '/' in container ids to '\\'", async () => {
    await adhPost(emu.url, token, "type", [TANK]);
    expect((await adhPost(emu.url, token, "container", [{ id: "Plant/Tank1", typeid: "Tank" }])).status).toBe(202);
    const s = await getJson(`${emu.url}${ADH_BASE}/Streams/${encodeURIComponent("Plant\\Tank1")}`, { authorization: `Bearer ${token}` });
    expect(s.status).toBe(200);
    expect(s.body.Id).toBe("Plant\\Tank1");
  });
});

describe("PI static data and links (AF)", () => {
  const SITE = {
    id: "Site",
    classification: "static",
    type: "object",
    properties: { Name: { type: "string", isindex: true }, City: { type: "string" } },
  };
  it("static instances and links need existing types/instances (409 'static instance could not be found')", async () => {
    await piSetup();
    expect((await piPost(emu.url, "data", [{ typeid: "Site", values: [{ Name: "Plant" }] }])).status).toBe(409);
    await piPost(emu.url, "type", [SITE]);
    const link = { typeid: "__Link", values: [{ source: { typeid: "Site", index: "Plant" }, target: { containerid: "Tank1" } }] };
    const missing = await piPost(emu.url, "data", [link]);
    expect(missing.status).toBe(409);
    expect(missing.body.Messages[0].Events[0].EventInfo.Message).toBe("The specified static instance could not be found.");
    // one body mixing static data and a link (fledge style) is processed in order
    const mixed = await piPost(emu.url, "data", [{ typeid: "Site", values: [{ Name: "Plant", City: "Oslo" }] }, link]);
    expect(mixed.status).toBeLessThan(300);
    const s = (await state()).scopes.pi;
    expect(s.staticData.site).toHaveLength(1);
    expect(s.links).toHaveLength(1);
  });
});

describe("PI seed points", () => {
  it("simple types name the point after the container, complex ones container.property", async () => {
    for (const t of SEED_TYPES) await piPost(emu.url, "type", [t]);
    for (const c of SEED_CONTAINERS) await piPost(emu.url, "container", [c]);
    const s = await state();
    expect(s.scopes.pi.containers.ThirdContainer.points).toEqual([
      "ThirdContainer.NumberProperty1",
      "ThirdContainer.NumberProperty2",
      "ThirdContainer.StringEnum",
    ]);
    expect(s.scopes.pi.containers.FourthContainer.points).toEqual(["FourthContainer"]);
  });
});

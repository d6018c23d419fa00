import { beforeEach, describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { adhPost, EDS_BASE, edsPost, getJson, PI_AUTH, piPost, TANK_TYPE, useEmulator } from "./harness.js";

/** Version discovery (PI system info, EDS product information), receivers that speak only some OMF versions, keywords. */
let emu: RunningOmfEmulator;
let token: string;
useEmulator((shared) => ({ emu, token } = shared));
// After the reset useEmulator makes before each test.
beforeEach(() => {
  emu.setSettings({ piRelease: "2023 SP1", edsRelease: "2023", strict: false, sdsConflictStatus: 400 });
});

describe("EDS 2020: speaks OMF 1.0 / 1.1 only", () => {
  it("product information gives the release; omfversion 1.2 → 400 (EventCode 2007), 1.1 works with no other change", async () => {
    emu.setSettings({ edsRelease: "2020" });
    const info = await getJson(`${emu.url}/api/v1/diagnostics/productinformation`);
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ "Product Version": "1.0.0.152", "Edge Data Store": "1.0.0.152" });
    const r = await edsPost(emu.url, "type", [TANK_TYPE], { version: "1.2" });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ Error: expect.stringContaining("omfversion"), Parameters: { EventCode: "2007" } });
    expect(r.body.Error).toContain("1.0, 1.1");
    expect((await edsPost(emu.url, "type", [TANK_TYPE], { version: "1.1" })).status).toBe(202);
    expect((await edsPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }], { version: "1.1" })).status).toBe(202);
    const data = [{ containerid: "Tank1", values: [{ Time: "2024-01-01T00:00:00Z", Level: 1 }] }];
    expect((await edsPost(emu.url, "data", data, { version: "1.1" })).status).toBe(202);
    expect((await edsPost(emu.url, "data", data, { version: "1.2" })).status).toBe(400);
    expect((await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data/Last`)).body.Level).toBe(1);
  });

  it("EDS 2023 (the default) reports 1.1.x and takes 1.2; ADH is not affected by the EDS release", async () => {
    expect((await getJson(`${emu.url}/api/v1/diagnostics/productinformation`)).body["Product Version"]).toBe("1.1.1.46");
    expect((await edsPost(emu.url, "type", [TANK_TYPE], { version: "1.2" })).status).toBe(202);
    emu.setSettings({ edsRelease: "2020" });
    expect((await adhPost(emu.url, token, "type", [TANK_TYPE], { version: "1.2" })).status).toBe(202);
  });

  it("an emulator started as EDS 2020 (options.settings)", async () => {
    const e = await startOmfEmulator({ settings: { edsRelease: "2020" } });
    try {
      expect((await edsPost(e.url, "type", [TANK_TYPE], { version: "1.2" })).status).toBe(400);
    } finally {
      await e.stop();
    }
  });
});

describe("PI Web API system info", () => {
  it("GET /piwebapi/system reports the release's ProductTitle and ProductVersion", async () => {
    const h = { authorization: PI_AUTH };
    for (const [release, title, version] of [
      ["2023 SP1", "PI Web API 2023 SP1", "1.19.1.1"],
      ["2021 SP3", "PI Web API 2021 SP3", "1.17.0.22"],
      ["2019 SP1", "PI Web API 2019 SP1", "1.13.0.6518"],
      ["2019", "PI Web API 2019", "1.12.0.6346"],
    ] as const) {
      emu.setSettings({ piRelease: release });
      const r = await getJson(`${emu.url}/piwebapi/system`, h);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ ProductTitle: title, ProductVersion: version });
    }
  });

  it("PI 2019 accepts only OMF 1.0: 1.1 → 400 with MessageIndex null and EventCode 2007", async () => {
    emu.setSettings({ piRelease: "2019" });
    const r = await piPost(emu.url, "type", [TANK_TYPE], { version: "1.1" });
    expect(r.status).toBe(400);
    expect(r.body.Messages[0]).toMatchObject({ MessageIndex: null, Status: { Code: 400 } });
    expect(r.body.Messages[0].Events[0].EventInfo.EventCode).toBe(2007);
    expect((await piPost(emu.url, "type", [TANK_TYPE], { version: "1.0" })).status).toBe(201);
  });
});

describe("keywords a receiver does not know (lenient by default, strict as a switch)", () => {
  const withFuture = {
    ...TANK_TYPE,
    futureKeyword: { anything: true },
    properties: { ...TANK_TYPE.properties, Level: { ...TANK_TYPE.properties.Level, "x-vendor": "ignored", isquality: false } },
  };
  const container = { id: "Tank1", typeid: "Tank", datasource: "Meridian", extrapolation: "none", unknownThing: 1 };

  it("lenient: unknown keywords and keywords newer than omfversion (isquality, datasource, extrapolation under 1.1) are accepted", async () => {
    expect((await piPost(emu.url, "type", [withFuture], { version: "1.1" })).status).toBe(201);
    expect((await piPost(emu.url, "container", [container], { version: "1.1" })).status).toBe(201);
    expect((await edsPost(emu.url, "type", [withFuture], { version: "1.1" })).status).toBe(202);
    expect((await edsPost(emu.url, "container", [container], { version: "1.1" })).status).toBe(202);
  });

  it("strict: keywords newer than omfversion → 400 naming the keyword; unknown keywords are still ignored", async () => {
    emu.setSettings({ strict: true });
    const r = await piPost(emu.url, "type", [withFuture], { version: "1.1" });
    expect(r.status).toBe(400);
    expect(r.body.Messages[0].Events[0].EventInfo.Message).toContain("isquality");
    expect((await piPost(emu.url, "type", [{ ...TANK_TYPE, futureKeyword: 1 }], { version: "1.1" })).status).toBe(201);
    const c = await edsPost(emu.url, "container", [container], { version: "1.1" });
    expect(c.status).toBe(400);
    // under 1.2 the same type is valid, and identical to the one created above: unknown keywords are not part of it
    expect((await piPost(emu.url, "type", [withFuture], { version: "1.2" })).status).toBe(200);
  });
});

describe("re-create with another definition", () => {
  const other = { ...TANK_TYPE, properties: { ...TANK_TYPE.properties, Level: { type: "integer" } } };

  it("PI: 409 for a type and a container; SDS: 400 by default (the notes), 409 under sdsConflictStatus", async () => {
    await piPost(emu.url, "type", [TANK_TYPE]);
    expect((await piPost(emu.url, "type", [other])).status).toBe(409);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    expect((await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank", description: "changed" }])).status).toBe(409);

    await edsPost(emu.url, "type", [TANK_TYPE]);
    const sds400 = await edsPost(emu.url, "type", [other]);
    expect(sds400.status).toBe(400);
    expect(sds400.body.Error).toBe("Redefinition of the type with the same ID is not allowed");
    emu.setSettings({ sdsConflictStatus: 409 });
    expect((await edsPost(emu.url, "type", [other])).status).toBe(409);
    await adhPost(emu.url, token, "type", [TANK_TYPE]);
    await adhPost(emu.url, token, "container", [{ id: "Tank1", typeid: "Tank" }]);
    expect((await adhPost(emu.url, token, "container", [{ id: "Tank1", typeid: "Tank", description: "changed" }])).status).toBe(409);
    // identical re-create stays a success
    expect((await adhPost(emu.url, token, "type", [TANK_TYPE])).status).toBe(202);
  });
});

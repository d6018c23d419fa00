import { describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { adhPost, EDS_BASE, edsPost, getJson, PI_AUTH, piPost, TANK_TYPE, useEmulator } from "./harness.js";

/**
 * OmfCreateMode (PI Web API's duplicate-timestamp setting: Insert, Replace, NoReplace; InsertNoCompression as the AF
 * update option) and what it does to data create / update / delete. Every value a receiver would hold is kept, so
 * each test counts exactly.
 */
let emu: RunningOmfEmulator;
let token: string;
useEmulator((shared) => ({ emu, token } = shared));

const T = "2024-01-01T00:00:00Z";
const at = (level: number, time = T) => [{ containerid: "Tank1", values: [{ Time: time, Level: level }] }];

async function settings(patch: unknown) {
  const r = await fetch(`${emu.url}/_emulator/settings`, { method: "POST", body: JSON.stringify(patch) });
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: r.status, body: (await r.json()) as any };
}

async function piLevels(): Promise<{ Value: number; Substituted: boolean }[]> {
  const h = { authorization: PI_AUTH };
  const ds = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, h);
  const [p] = (await getJson(`${ds.body.Links.Points}?nameFilter=Tank1`, h)).body.Items;
  const rec = await getJson(`${p.Links.RecordedData}?startTime=2023-12-31T00:00:00Z&endTime=2024-01-02T00:00:00Z`, h);
  return rec.body.Items;
}

/** create 1, create 2 (same time), update 3 (OMF 1.2), delete one value: the levels PI holds after each step. */
async function piSequence() {
  await piPost(emu.url, "type", [TANK_TYPE]);
  await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
  const steps: number[][] = [];
  const levels = async () => (await piLevels()).map((v) => v.Value);
  expect((await piPost(emu.url, "data", at(1))).status).toBe(202);
  expect((await piPost(emu.url, "data", at(2))).status).toBe(202);
  steps.push(await levels());
  expect((await piPost(emu.url, "data", at(3), { action: "update", version: "1.2" })).status).toBe(202);
  steps.push(await levels());
  expect((await piPost(emu.url, "data", at(0), { action: "delete" })).status).toBe(200);
  steps.push(await levels());
  return steps;
}

describe("PI OmfCreateMode on create / update / delete (update follows the mode, as AVEVA documents)", () => {
  const cases = [
    [
      "insert",
      [
        [1, 2],
        [1, 2, 3],
        [1, 2],
      ],
    ],
    [
      "insertnocompression",
      [
        [1, 2],
        [1, 2, 3],
        [1, 2],
      ],
    ],
    ["replace", [[2], [3], []]],
    ["noreplace", [[1], [1], []]],
  ] as const;
  for (const [mode, expected] of cases) {
    it(`${mode}: values after create ×2 at one timestamp, update, delete → ${JSON.stringify(expected)}`, async () => {
      expect((await settings({ createMode: { pi: mode } })).status).toBe(200);
      expect(await piSequence()).toEqual(expected);
    });
  }

  it("replace marks the overwriting value Substituted in the recorded values", async () => {
    await settings({ createMode: { pi: "Replace" } });
    await piPost(emu.url, "type", [TANK_TYPE]);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await piPost(emu.url, "data", at(1, "2024-01-01T00:00:01Z"));
    await piPost(emu.url, "data", at(2, "2024-01-01T00:00:02Z"));
    await piPost(emu.url, "data", at(3, "2024-01-01T00:00:02Z"));
    expect((await piLevels()).map((v) => [v.Value, v.Substituted])).toEqual([
      [1, false],
      [3, true],
    ]);
  });

  it("noreplace: the ignored value is a Warning event in the 202 answer", async () => {
    await settings({ createMode: { pi: "noreplace" } });
    await piPost(emu.url, "type", [TANK_TYPE]);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    await piPost(emu.url, "data", at(1));
    const r = await piPost(emu.url, "data", at(2));
    expect(r.status).toBe(202);
    expect(r.body.Messages[0].Status.HighestSeverity).toBe("Warning");
  });

  it("piUpdate 'replace' (fledge's reading, unverified): update overwrites under Insert while create still keeps duplicates", async () => {
    await settings({ createMode: { pi: "insert" }, piUpdate: "replace" });
    try {
      expect(await piSequence()).toEqual([[1, 2], [1, 3], [1]]);
    } finally {
      await settings({ piUpdate: "createmode" });
    }
  });

  it("the counters and state count every value held (a redelivered batch under Insert doubles the count)", async () => {
    await settings({ createMode: { pi: "insert" } });
    await piPost(emu.url, "type", [TANK_TYPE]);
    await piPost(emu.url, "container", [{ id: "Tank1", typeid: "Tank" }]);
    const batch = [{ containerid: "Tank1", values: [0, 1, 2, 3, 4].map((i) => ({ Time: `2024-01-01T00:00:0${i}Z`, Level: i })) }];
    await piPost(emu.url, "data", batch);
    await piPost(emu.url, "data", batch);
    const s = (await getJson(`${emu.url}/_emulator/state?scope=pi`)).body;
    expect(s.scopes.pi.containers.Tank1.valueCount).toBe(10);
    expect(s.counters.byProfile.pi.valuesWritten).toBe(10);
  });
});

describe("SDS create mode (one event per index: replace by default, noreplace as a switch)", () => {
  it("EDS and ADH replace by default; noreplace keeps the first event", async () => {
    for (const post of [(mt: string, b: unknown) => edsPost(emu.url, mt, b), (mt: string, b: unknown) => adhPost(emu.url, token, mt, b)]) {
      await post("type", [TANK_TYPE]);
      await post("container", [{ id: "Tank1", typeid: "Tank" }]);
      await post("data", at(1));
      await post("data", at(2));
    }
    expect((await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data/Last`)).body.Level).toBe(2);
    await settings({ createMode: { eds: "noreplace" } });
    try {
      await edsPost(emu.url, "data", at(5));
      expect((await getJson(`${emu.url}${EDS_BASE}/Streams/Tank1/Data/Last`)).body.Level).toBe(2);
    } finally {
      await settings({ createMode: { eds: "replace" } });
    }
  });
});

describe("the settings switch", () => {
  it("GET answers the settings; POST merges; bad values are 400 naming the field, nothing changed", async () => {
    const before = (await getJson(`${emu.url}/_emulator/settings`)).body;
    expect(before.createMode).toEqual({ pi: "insert", adh: "replace", eds: "replace" });
    for (const [patch, field] of [
      [{ createMode: { pi: "sometimes" } }, "createMode.pi"],
      [{ createMode: { eds: "insert" } }, "createMode.eds"],
      [{ piRelease: "2018" }, "piRelease"],
      [{ strict: "yes" }, "strict"],
      [{ sdsConflictStatus: 500 }, "sdsConflictStatus"],
      [{ unknown: 1 }, "unknown"],
    ] as const) {
      const r = await settings(patch);
      expect(r.status, JSON.stringify(patch)).toBe(400);
      expect(r.body.field).toBe(field);
    }
    expect((await getJson(`${emu.url}/_emulator/settings`)).body).toEqual(before);
    // settings are configuration: a reset keeps them
    await settings({ createMode: { pi: "replace" } });
    await fetch(`${emu.url}/_emulator/reset`, { method: "POST" });
    expect((await getJson(`${emu.url}/_emulator/settings`)).body.createMode.pi).toBe("replace");
    expect(emu.setSettings({ createMode: { pi: "insert" } }).createMode.pi).toBe("insert");
  });

  it("options.settings sets them at start", async () => {
    const e = await startOmfEmulator({ settings: { createMode: { pi: "noreplace" }, strict: true } });
    try {
      expect(e.settings()).toMatchObject({ createMode: { pi: "noreplace", adh: "replace" }, strict: true });
    } finally {
      await e.stop();
    }
  });
});

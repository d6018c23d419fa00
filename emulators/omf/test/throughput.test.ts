import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { EDS_BASE, edsPost, getJson, omfHeaders, piPost } from "./harness.js";

describe("throughput and admin state", () => {
  let emu: RunningOmfEmulator;
  beforeAll(async () => {
    emu = await startOmfEmulator();
  });
  afterAll(async () => {
    await emu.stop();
  });

  it("ingests 100k values over HTTP (gzip, 10 containers) well above 10k values/s, ordered, no duplicates", async () => {
    const type = {
      id: "Bench",
      classification: "dynamic",
      type: "object",
      properties: { Time: { type: "string", format: "date-time", isindex: true }, V: { type: "number", format: "float64" } },
    };
    await edsPost(emu.url, "type", [type]);
    await edsPost(
      emu.url,
      "container",
      Array.from({ length: 10 }, (_, i) => ({ id: `B${i}`, typeid: "Bench" })),
    );
    const t0 = Date.UTC(2024, 0, 1);
    const requests = 50;
    const perContainer = 200; // 50 × 10 × 200 = 100k values
    const bodies: Buffer[] = [];
    for (let r = 0; r < requests; r++) {
      const msgs = Array.from({ length: 10 }, (_, c) => ({
        containerid: `B${c}`,
        values: Array.from({ length: perContainer }, (_, j) => ({
          Time: new Date(t0 + (r * perContainer + j) * 1000).toISOString(),
          V: j,
        })),
      }));
      bodies.push(gzipSync(JSON.stringify(msgs)));
    }
    const started = performance.now();
    const statuses = await Promise.all(
      bodies.map((body) =>
        fetch(`${emu.url}${EDS_BASE}/omf`, { method: "POST", headers: omfHeaders("data", { gzip: true }), body }).then((r) => r.status),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    expect(statuses.every((s) => s === 202)).toBe(true);
    const rate = 100_000 / seconds;
    console.info(`emulator-omf ingest: ${Math.round(rate)} values/s`);
    expect(rate).toBeGreaterThan(10_000);
    const state = (await getJson(`${emu.url}/_emulator/state?values=false`)).body;
    expect(state.counters.valuesWritten).toBe(100_000);
    expect(state.scopes.eds.valueCount).toBe(100_000);
    expect(state.scopes.eds.containers.B3.firstIndex).toBe("2024-01-01T00:00:00.0000000Z");
    const window = await getJson(`${emu.url}${EDS_BASE}/Streams/B3/Data?startIndex=2024-01-01T00:00:00Z&count=5`, {
      "Accept-Verbosity": "verbose",
    });
    expect(window.body.map((v: { V: number }) => v.V)).toEqual([0, 1, 2, 3, 4]);
    // resend of the same batch replaces, it does not duplicate
    await fetch(`${emu.url}${EDS_BASE}/omf`, { method: "POST", headers: omfHeaders("data", { gzip: true }), body: bodies[0] });
    expect((await getJson(`${emu.url}/_emulator/state?values=false`)).body.scopes.eds.valueCount).toBe(100_000);
  });

  it("state exposes types, containers and values with timestamps; reset clears everything", async () => {
    const type = {
      id: "S",
      classification: "dynamic",
      type: "object",
      properties: { Time: { type: "string", format: "date-time", isindex: true }, V: { type: "number" } },
    };
    await piPost(emu.url, "type", [type]);
    await piPost(emu.url, "container", [{ id: "S1", typeid: "S" }]);
    await piPost(emu.url, "data", [{ containerid: "S1", values: [{ Time: "2024-01-01T00:00:00Z", V: 1.5 }] }]);
    const s = (await getJson(`${emu.url}/_emulator/state`)).body;
    expect(s.scopes.pi.types.S).toEqual(type);
    expect(s.scopes.pi.containers.S1).toMatchObject({ typeid: "S", valueCount: 1, values: [{ Time: "2024-01-01T00:00:00Z", V: 1.5 }] });
    expect(s.counters.omfRequests).toBeGreaterThan(0);
    const onlyPi = (await getJson(`${emu.url}/_emulator/state?scope=pi&maxValues=0`)).body;
    expect(Object.keys(onlyPi.scopes)).toEqual(["pi"]);
    expect(onlyPi.scopes.pi.containers.S1.values).toEqual([]);
    expect((await fetch(`${emu.url}/_emulator/reset`, { method: "POST" })).status).toBe(200);
    const after = (await getJson(`${emu.url}/_emulator/state`)).body;
    expect(after.scopes.pi.types).toEqual({});
    expect(after.counters.omfRequests).toBe(0);
  });
});

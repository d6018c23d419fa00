import { afterEach, describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { piPost, TANK_TYPE } from "./harness.js";

/** The bench-only arrival log: values by container and index key with the time they were written, and its reset. */
let emu: RunningOmfEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

const arrivals = async () => {
  const r = await fetch(`${emu!.url}/_emulator/arrivals`);
  return { status: r.status, body: (await r.json()) as { values: number; groups: Array<[number, string, string[]]> } };
};

describe("arrivals", () => {
  it("logs each data value written, by container and index key, and DELETE empties the log and the values only", async () => {
    emu = await startOmfEmulator({ recordArrivals: true });
    await piPost(emu.url, "type", [TANK_TYPE]);
    await piPost(emu.url, "container", [
      { id: "Tank1", typeid: "Tank" },
      { id: "Tank2", typeid: "Tank" },
    ]);
    const before = Date.now();
    const data = [
      {
        containerid: "Tank1",
        values: [
          { Time: "2024-01-01T00:00:00.1234567Z", Level: 1 },
          { Time: "2024-01-01T00:00:01Z", Level: 2 },
        ],
      },
      { containerid: "Tank2", values: [{ Time: "2024-01-01T00:00:00Z", Level: 3 }] },
    ];
    expect((await piPost(emu.url, "data", data)).status).toBe(202);
    // A rejected message (unknown container) writes nothing, so it is not logged.
    expect((await piPost(emu.url, "data", [{ containerid: "Nope", values: [{ Time: "2024-01-01T00:00:00Z", Level: 9 }] }])).status).toBe(
      404,
    );
    const { body } = await arrivals();
    expect(body.values).toBe(3);
    expect(body.groups.map(([, c, keys]) => [c, keys])).toEqual([
      ["Tank1", ["2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:01.0000000Z"]],
      ["Tank2", ["2024-01-01T00:00:00.0000000Z"]],
    ]);
    for (const [at] of body.groups) expect(at).toBeGreaterThanOrEqual(before - 5);

    const cleared = await fetch(`${emu.url}/_emulator/arrivals`, { method: "DELETE" });
    expect(await cleared.json()).toEqual({ ok: true, valuesCleared: 3 });
    expect((await arrivals()).body).toEqual({ values: 0, groups: [] });
    const pi = emu.state({ scope: "pi", values: false }).scopes.pi as { containers: Record<string, { valueCount: number }> };
    expect(Object.keys(pi.containers).sort()).toEqual(["Tank1", "Tank2"]);
    expect(pi.containers.Tank1!.valueCount).toBe(0);
    // The containers still take data after the values were cleared.
    expect((await piPost(emu.url, "data", [data[1]])).status).toBe(202);
    expect((await arrivals()).body.values).toBe(1);
  });

  it("answers its clock, the one arrival times are on, for a bench in another process to measure the offset to its own", async () => {
    emu = await startOmfEmulator({ recordArrivals: true });
    // In this process the two clocks are one: the answer lies between the request and its reply.
    const sent = performance.timeOrigin + performance.now();
    const r = await fetch(`${emu.url}/_emulator/arrivals/clock`);
    const received = performance.timeOrigin + performance.now();
    const { nowMs } = (await r.json()) as { nowMs: number };
    expect(nowMs).toBeGreaterThanOrEqual(sent);
    expect(nowMs).toBeLessThanOrEqual(received);
    expect(Number.isInteger(nowMs)).toBe(false);
  });

  it("is not there unless switched on", async () => {
    emu = await startOmfEmulator();
    expect((await fetch(`${emu.url}/_emulator/arrivals/clock`)).status).toBe(404);
    expect((await fetch(`${emu.url}/_emulator/arrivals`)).status).toBe(404);
    expect((await fetch(`${emu.url}/_emulator/arrivals`, { method: "DELETE" })).status).toBe(404);
  });
});

import { describe, expect, it } from "vitest";
import type { RunningOmfEmulator } from "../src/index.js";
import { ADH_BASE, adhPost, EDS_BASE, edsPost, getJson, piPost, TANK_TYPE, useEmulator } from "./harness.js";

/**
 * Data Hub ingestion is asynchronous (notes §2.2): 202 with an Operation-Id, processing errors surface later. The
 * notes document no status path for an Operation-Id, so a failed-later message shows only through the read paths
 * (and the emulator's own `/_emulator/operations`).
 */
let emu: RunningOmfEmulator;
let token: string;
useEmulator((shared) => ({ emu, token } = shared));

const at = (level: number, s: number) => [{ containerid: "Tank1", values: [{ Time: `2024-01-01T00:00:0${s}Z`, Level: level }] }];
const auth = () => ({ authorization: `Bearer ${token}` });
const fault = (f: unknown) => fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify(f) });

async function adhSetup() {
  await adhPost(emu.url, token, "type", [TANK_TYPE]);
  await adhPost(emu.url, token, "container", [{ id: "Tank1", typeid: "Tank" }]);
}
const adhLevels = async () =>
  (
    await getJson(`${emu.url}${ADH_BASE}/Streams/Tank1/Data?startIndex=2024-01-01T00:00:00Z&endIndex=2024-01-02T00:00:00Z`, auth())
  ).body.map((e: { Level: number }) => e.Level);

describe("ADH asynchronous ingestion", () => {
  it("answers 202 with the Operation-Id as header and body; each request gets its own", async () => {
    await adhSetup();
    const a = await adhPost(emu.url, token, "data", at(1, 1));
    const b = await adhPost(emu.url, token, "data", at(2, 2));
    for (const r of [a, b]) {
      expect(r.status).toBe(202);
      expect(r.headers.get("operation-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.body).toEqual({ "Operation-Id": r.headers.get("operation-id") });
    }
    expect(a.headers.get("operation-id")).not.toBe(b.headers.get("operation-id"));
    const ops = (await getJson(`${emu.url}/_emulator/operations`)).body.operations;
    expect(ops.at(-1)).toMatchObject({ operationId: b.headers.get("operation-id"), status: "Succeeded", messageType: "data", messages: 1 });
  });

  it("asyncFailures: the message is answered 202 but never stored; only the read path (and /_emulator/operations) shows it", async () => {
    await adhSetup();
    await adhPost(emu.url, token, "data", at(1, 1));
    await fault({ asyncFailures: 1 });
    const lost = await adhPost(emu.url, token, "data", at(2, 2));
    expect(lost.status).toBe(202);
    const opId = lost.headers.get("operation-id")!;
    expect(await adhLevels()).toEqual([1]);
    const op = (await getJson(`${emu.url}/_emulator/operations/${opId}`)).body;
    expect(op).toMatchObject({ operationId: opId, httpStatus: 202, status: "Failed", reason: expect.stringContaining("not stored") });
    // the fault counted down: a resend is stored
    expect((await adhPost(emu.url, token, "data", at(2, 2))).status).toBe(202);
    expect(await adhLevels()).toEqual([1, 2]);
    const counters = (await getJson(`${emu.url}/_emulator/counters`)).body;
    expect(counters.faults.asyncFailure).toBe(1);
    expect((await getJson(`${emu.url}/_emulator/operations/00000000-0000-0000-0000-000000000000`)).status).toBe(404);
  });

  it("asyncFailures also hits type and container messages (nothing created) and EDS, never PI", async () => {
    await fault({ asyncFailures: 2 });
    expect((await adhPost(emu.url, token, "type", [TANK_TYPE])).status).toBe(202);
    expect((await getJson(`${emu.url}${ADH_BASE}/Types/Tank`, auth())).status).toBe(404);
    const pi = await piPost(emu.url, "type", [TANK_TYPE]);
    expect(pi.status).toBe(201);
    expect((await edsPost(emu.url, "type", [TANK_TYPE])).status).toBe(202);
    expect((await getJson(`${emu.url}${EDS_BASE}/Types/Tank`)).status).toBe(404);
    expect((await getJson(`${emu.url}/_emulator/faults`)).body).toEqual({});
  });

  it("asyncDelayMs: 202 at once, visible only later; an invalid message under the delay is 202 too and fails later", async () => {
    await adhSetup();
    await fault({ asyncDelayMs: 150, profile: "adh" });
    const r = await adhPost(emu.url, token, "data", at(7, 1));
    expect(r.status).toBe(202);
    expect(await adhLevels()).toEqual([]);
    const bad = await adhPost(emu.url, token, "data", [{ containerid: "Nope", values: [{ Time: "2024-01-01T00:00:00Z" }] }]);
    expect(bad.status).toBe(202);
    const pending = (await getJson(`${emu.url}/_emulator/operations/${bad.headers.get("operation-id")}`)).body;
    expect(pending.status).toBe("Pending");
    await new Promise((res) => setTimeout(res, 300));
    expect(await adhLevels()).toEqual([7]);
    const failed = (await getJson(`${emu.url}/_emulator/operations/${bad.headers.get("operation-id")}`)).body;
    expect(failed).toMatchObject({ status: "Failed", reason: "Container is not defined" });
    await fetch(`${emu.url}/_emulator/faults`, { method: "DELETE" });
    // without the delay the same invalid message is refused at once
    expect((await adhPost(emu.url, token, "data", [{ containerid: "Nope", values: [] }])).status).toBe(400);
    const ops = (await getJson(`${emu.url}/_emulator/operations`)).body.operations;
    expect(ops.at(-1)).toMatchObject({ httpStatus: 400, status: "Failed" });
  });
});

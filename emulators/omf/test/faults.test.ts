import { describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { EDS_BASE, edsPost, getJson, piPost, SEED_TYPES, useEmulator } from "./harness.js";

let emu: RunningOmfEmulator;
useEmulator((shared) => ({ emu } = shared));

const setFaults = async (body: unknown) => {
  const r = await fetch(`${emu.url}/_emulator/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
};

describe("fault switch (admin API)", () => {
  it("503 ×3 with Retry-After, then success", async () => {
    await setFaults({ status: 503, count: 3, retryAfterSeconds: 2 });
    for (let i = 0; i < 3; i++) {
      const r = await piPost(emu.url, "type", [SEED_TYPES[0]]);
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("2");
    }
    expect((await piPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(201);
    const counters = (await getJson(`${emu.url}/_emulator/counters`)).body;
    expect(counters.faults.status).toBe(3);
    expect(counters.acceptedMessages).toBe(1);
  });

  it("429 with Retry-After on the SDS profile uses the ErrorResponseBody shape", async () => {
    await setFaults({ status: 429, count: 1, retryAfterSeconds: 5 });
    const r = await edsPost(emu.url, "type", [SEED_TYPES[0]]);
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("5");
    expect(r.body.OperationId).toEqual(expect.any(String));
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
  });

  it("faults hit OMF POSTs only by default; scope 'all' also hits read-back", async () => {
    await setFaults({ status: 500 });
    expect((await getJson(`${emu.url}${EDS_BASE}/Types`)).status).toBe(200);
    await setFaults({ scope: "all" });
    expect((await getJson(`${emu.url}${EDS_BASE}/Types`)).status).toBe(500);
    await fetch(`${emu.url}/_emulator/faults`, { method: "DELETE" });
    expect((await getJson(`${emu.url}${EDS_BASE}/Types`)).status).toBe(200);
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
  });

  it("profile filter: a fault for pi does not touch eds", async () => {
    await setFaults({ status: 504, profile: "pi" });
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
    expect((await piPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(504);
  });

  it("latency delays the answer", async () => {
    // A latency far longer than a loaded machine's stalls, so "the second is not delayed" needs no tight bound.
    await setFaults({ latencyMs: 3000, latencyCount: 1 });
    const t0 = performance.now();
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2990);
    const t1 = performance.now();
    await edsPost(emu.url, "type", [SEED_TYPES[0]]);
    expect(performance.now() - t1).toBeLessThan(2000);
  }, 15_000);

  it("dropped connection is seen by fetch as a socket error, then the next request succeeds", async () => {
    await setFaults({ dropConnections: 1 });
    const err = await edsPost(emu.url, "type", [SEED_TYPES[0]]).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(String((err as Error & { cause?: { code?: string; message?: string } }).cause?.code ?? (err as Error).cause)).toMatch(
      /UND_ERR_SOCKET|ECONNRESET|other side closed/i,
    );
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
    expect((await getJson(`${emu.url}/_emulator/counters`)).body.faults.drop).toBe(1);
  });

  it("hang holds the request past the client's timeout", async () => {
    await setFaults({ hangMs: 5000, hangCount: 1 });
    const res = fetch(`${emu.url}${EDS_BASE}/omf`, {
      method: "POST",
      headers: { messagetype: "type", messageformat: "json", omfversion: "1.2" },
      body: JSON.stringify([SEED_TYPES[0]]),
      signal: AbortSignal.timeout(300),
    });
    await expect(res).rejects.toThrow(/aborted|timeout/i);
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
  });

  it("partial failure: PI answers 409 for message 0 and applies the rest", async () => {
    await setFaults({ partialFailures: 1 });
    const r = await piPost(emu.url, "type", [SEED_TYPES[0], SEED_TYPES[1]]);
    expect(r.status).toBe(409);
    expect(r.body.Messages.map((m: { Status: { Code: number } }) => m.Status.Code)).toEqual([409, 201]);
    const s = (await getJson(`${emu.url}/_emulator/state`)).body;
    expect(Object.keys(s.scopes.pi.types)).toEqual(["SecondDynamicType"]);
  });

  it("invalid fault config → 400; GET returns the current config", async () => {
    expect((await setFaults({ status: 200 })).status).toBe(400);
    expect((await setFaults({ bogus: 1 })).status).toBe(400);
    await setFaults({ status: 503, count: 2 });
    expect((await getJson(`${emu.url}/_emulator/faults`)).body).toEqual({ status: 503, count: 2 });
  });

  it("partial body: the answer's head arrives whole, its body stops short; counted as partialBody", async () => {
    await setFaults({ partialBodyBytes: 5, partialBodyCount: 1 });
    const res = await fetch(`${emu.url}${EDS_BASE}/omf`, {
      method: "POST",
      headers: { messagetype: "type", messageformat: "json", omfversion: "1.2" },
      body: JSON.stringify([SEED_TYPES[0]]),
    });
    expect(res.status).toBe(202);
    await expect(res.text()).rejects.toThrow(/terminated/i);
    // the request itself was processed: a retry finds the type already there
    const s = (await getJson(`${emu.url}/_emulator/state`)).body;
    expect(Object.keys(s.scopes.eds.types)).toEqual(["FirstDynamicType"]);
    expect(s.counters.faults.partialBody).toBe(1);
  });

  it("a path filter limits faults to matching requests", async () => {
    await setFaults({ status: 503, path: "/piwebapi" });
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
    expect((await piPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(503);
  });

  it("PUT replaces the whole switch; DELETE clears it", async () => {
    await setFaults({ status: 503, profile: "pi" });
    const put = await fetch(`${emu.url}/_emulator/faults`, { method: "PUT", body: JSON.stringify({ latencyMs: 1 }) });
    expect(await put.json()).toEqual({ latencyMs: 1 });
    expect((await fetch(`${emu.url}/_emulator/faults`, { method: "DELETE" })).status).toBe(200);
    expect((await getJson(`${emu.url}/_emulator/faults`)).body).toEqual({});
  });

  it("in process: setFault, clearFaults and state() are the admin surface without HTTP", async () => {
    emu.setFault({ status: 500, count: 1 });
    expect(emu.state().faults).toEqual({ status: 500, count: 1 });
    expect(() => emu.setFault({ status: 200 })).toThrow(/status/);
    emu.clearFaults();
    expect((await edsPost(emu.url, "type", [SEED_TYPES[0]])).status).toBe(202);
    expect(Object.keys(emu.state({ scope: "eds" }).scopes)).toEqual(["eds"]);
  });

  it("stop does not wait for a request held by hang", async () => {
    const e = await startOmfEmulator({ faults: { hangMs: 60_000 } });
    const held = edsPost(e.url, "type", [SEED_TYPES[0]]).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await e.stop();
    expect(performance.now() - t0).toBeLessThan(4000); // the hang is 60 s; 4 s leaves room for a loaded machine
    expect(await held).toBeInstanceOf(Error);
  });

  it("faults can be set at start (env OMF_EMULATOR_FAULTS → options.faults)", async () => {
    const e = await startOmfEmulator({ faults: { status: 503, count: 1, retryAfterSeconds: 1 } });
    try {
      expect((await edsPost(e.url, "type", [SEED_TYPES[0]])).status).toBe(503);
      expect((await edsPost(e.url, "type", [SEED_TYPES[0]])).status).toBe(202);
    } finally {
      await e.stop();
    }
  });
});

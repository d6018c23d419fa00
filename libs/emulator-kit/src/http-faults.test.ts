import { createServer } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FaultConfigError } from "./errors.js";
import { sendJson } from "./http.js";
import { enumField, HttpFaultSwitch, injectHttpFault, intField, parseHttpFaultConfig } from "./http-faults.js";
import { type ListeningServer, listen } from "./listen.js";

describe("HttpFaultSwitch.decide", () => {
  it("takes counted units and disarms a fault whose count reaches 0", () => {
    const f = new HttpFaultSwitch();
    f.set({ status: 503, count: 2, retryAfterSeconds: 1 });
    expect(f.decide()).toEqual({ kind: "status", latencyMs: 0, status: 503, retryAfterSeconds: 1, body: undefined });
    expect(f.decide().kind).toBe("status");
    expect(f.decide().kind).toBe("none");
    expect(f.get()).toEqual({});
    expect(f.active).toBe(false);
  });

  it("without a count a fault stays until cleared; latency adds to whatever else fires", () => {
    const f = new HttpFaultSwitch();
    f.set({ hangMs: 10, latencyMs: 5, latencyCount: 1 });
    expect(f.decide()).toEqual({ kind: "hang", latencyMs: 5, hangMs: 10 });
    expect(f.decide()).toEqual({ kind: "hang", latencyMs: 0, hangMs: 10 });
    f.clear();
    expect(f.decide()).toEqual({ kind: "none", latencyMs: 0 });
  });

  it("precedence: drop, hang, status, partial body", () => {
    const f = new HttpFaultSwitch();
    f.set({ dropConnections: 1, hangMs: 1, hangCount: 1, status: 500, count: 1, partialBodyBytes: 3, partialBodyCount: 1 });
    expect(["drop", "hang", "status", "partialBody", "none"].map(() => f.decide().kind)).toEqual([
      "drop",
      "hang",
      "status",
      "partialBody",
      "none",
    ]);
  });

  it("set merges; a path filter limits the switch to matching requests (any case) and alone arms nothing", () => {
    const f = new HttpFaultSwitch();
    f.set({ path: "/API/v1" });
    expect(f.active).toBe(false);
    f.set({ status: 500 });
    expect(f.get()).toEqual({ path: "/API/v1", status: 500 });
    expect(f.decide("/other").kind).toBe("none");
    expect(f.decide("/api/v1/things").kind).toBe("status");
  });
});

describe("parseHttpFaultConfig", () => {
  it("accepts the HTTP fields and the emulator's extra fields", () => {
    const c = parseHttpFaultConfig<{ scope?: "a" | "b"; extra?: number }>(
      { status: 429, retryAfterSeconds: 2, body: { x: 1 }, scope: "b", extra: 3 },
      { scope: enumField(["a", "b"]), extra: intField(1, 5) },
    );
    expect(c).toEqual({ status: 429, retryAfterSeconds: 2, body: { x: 1 }, scope: "b", extra: 3 });
  });

  it("names the field that is wrong, unknown or out of range", () => {
    const field = (input: unknown) => {
      try {
        parseHttpFaultConfig(input);
      } catch (err) {
        expect(err).toBeInstanceOf(FaultConfigError);
        return (err as FaultConfigError).field;
      }
      return undefined;
    };
    expect(field({ status: 200 })).toBe("status");
    expect(field({ latencyMs: -1 })).toBe("latencyMs");
    expect(field({ hangMs: 1.5 })).toBe("hangMs");
    expect(field({ bogus: 1 })).toBe("bogus");
    expect(field({ path: "api" })).toBe("path");
    expect(field([])).toBe("body");
    expect(field({ status: 503, count: 1 })).toBeUndefined();
  });
});

describe("injectHttpFault on a live server", () => {
  const faults = new HttpFaultSwitch();
  let listening: ListeningServer;
  let url: string;
  beforeAll(async () => {
    listening = await listen(
      createServer(async (req, res) => {
        const d = faults.decide(new URL(req.url ?? "/", "http://x").pathname);
        if (await injectHttpFault(d, req, res, { statusBody: (status) => ({ emulatorError: status }) })) return;
        sendJson(res, 200, { ok: true, padding: "x".repeat(100) });
      }),
    );
    url = listening.url("http");
  });
  afterAll(() => listening.close());
  beforeEach(() => faults.clear());

  it("status: the injected status with Retry-After and the emulator's error body, or the configured body", async () => {
    faults.set({ status: 503, count: 1, retryAfterSeconds: 7 });
    const r = await fetch(url);
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBe("7");
    expect(await r.json()).toEqual({ emulatorError: 503 });
    faults.set({ status: 429, count: 1, body: { custom: true } });
    expect(await (await fetch(url)).json()).toEqual({ custom: true });
    expect((await fetch(url)).status).toBe(200);
  });

  it("latency delays the answer", async () => {
    faults.set({ latencyMs: 150, latencyCount: 1 });
    const t0 = performance.now();
    expect((await fetch(url)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it("drop: the client sees the connection closed without an answer", async () => {
    faults.set({ dropConnections: 1 });
    await expect(fetch(url, { method: "POST", body: "data" })).rejects.toThrow(TypeError);
    expect((await fetch(url)).status).toBe(200);
  });

  it("hang: no answer within the client's timeout; the server's close releases a hung request at once", async () => {
    faults.set({ hangMs: 60_000, hangCount: 1 });
    await expect(fetch(url, { signal: AbortSignal.timeout(200) })).rejects.toThrow(/abort|timeout/i);
    faults.set({ hangMs: 60_000, hangCount: 1 });
    const other = await listen(
      createServer(async (req, res) => {
        if (await injectHttpFault(faults.decide(), req, res)) return;
        sendJson(res, 200, {});
      }),
    );
    const hung = fetch(other.url("http")).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await other.close();
    expect(performance.now() - t0).toBeLessThan(3000); // the hang is 60 s; 3 s leaves room for a loaded machine
    expect(await hung).toBeInstanceOf(Error);
  });

  it("partial body: headers whole, the body cut after N bytes, then the connection ends", async () => {
    faults.set({ partialBodyBytes: 10, partialBodyCount: 1 });
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(Number(r.headers.get("content-length"))).toBeGreaterThan(10);
    await expect(r.text()).rejects.toThrow(/terminated/i);
    expect(((await (await fetch(url)).json()) as { ok: boolean }).ok).toBe(true);
  });

  it("partial body of 0 bytes sends the head only", async () => {
    faults.set({ partialBodyBytes: 0, partialBodyCount: 1 });
    const r = await fetch(url);
    expect(r.status).toBe(200);
    await expect(r.arrayBuffer()).rejects.toThrow(/terminated/i);
  });
});

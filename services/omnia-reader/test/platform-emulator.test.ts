/**
 * The platform client against the Omnia emulator (HTTPS, tokens verified against the Entra emulator's keys) and the
 * Entra emulator (client secret and device code through @azure/identity): the wire as both emulators speak it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS, type RunningEntraEmulator, startEntraEmulator } from "@meridian/emulator-entra";
import { type RunningOmniaEmulator, startOmniaEmulator } from "@meridian/emulator-omnia";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DeviceCodePrompt,
  OmniaAuthError,
  OmniaBadRequestError,
  OmniaClient,
  type OmniaClientOptions,
  OmniaNotFoundError,
  OmniaThrottledError,
  OmniaUnauthorizedError,
  OmniaValidationError,
} from "../src/platform/index.js";

let entra: RunningEntraEmulator;
let omnia: RunningOmniaEmulator;
const clients: OmniaClient[] = [];

function client(extra: Partial<OmniaClientOptions> = {}): OmniaClient {
  const c = new OmniaClient({
    environment: "test",
    baseUrl: omnia.baseUrl,
    caPem: omnia.caPem,
    authorityHost: entra.url,
    authorityCaPem: entra.caPem,
    tenantId: entra.tenantId,
    auth: { mode: "clientSecret", clientId: DEFAULTS.confidentialClient.clientId, clientSecret: DEFAULTS.confidentialClient.secret },
    backoff: { initialMs: 10, maxMs: 50, multiplier: 2, jitter: 0 },
    ...extra,
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  entra = await startEntraEmulator({ deviceCodeIntervalSeconds: 1 });
  omnia = await startOmniaEmulator({ auth: { authority: entra.issuer(), caPem: entra.caPem } });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await omnia?.stop();
  await entra?.stop();
});

describe("Omnia emulator through the client (client secret token from the Entra emulator)", () => {
  it("searches with wildcards, reads metadata by id, facets", async () => {
    const c = client();
    const page = await c.searchTimeseries({ name: "JSV.*" });
    expect(page.items.length).toBeGreaterThanOrEqual(3);
    expect(page.items.every((t) => t.name.startsWith("JSV."))).toBe(true);
    const one = await c.getTimeseries(page.items[0]!.id);
    expect(one).toMatchObject({ id: page.items[0]!.id, facility: "JSV" });
    const facilities = await c.getFacilities();
    expect(facilities.map((f) => f.facility)).toEqual(expect.arrayContaining(["JSV", "SNA"]));
    const all = await c.collectTimeseries({ limit: 2 });
    expect(all.length).toBe(omnia.seededIds().length);
  });

  it("JSON and protobuf reads give the same points, times exact to the nanosecond", async () => {
    const c = client();
    const [id] = omnia.seededIds();
    const q = { startTime: "2025-12-31T12:00:00Z", endTime: "2025-12-31T13:00:00Z", limit: 100 };
    const json = await c.getDatapoints(id!, q);
    const pb = await c.getDatapoints(id!, q, { format: "protobuf" });
    expect(json.items[0]!.datapoints.length).toBeGreaterThan(0);
    const strip = (p: { timeNs: bigint; value: number; status: number }) => ({ timeNs: p.timeNs, value: p.value, status: p.status });
    expect(pb.items[0]!.datapoints.map(strip)).toEqual(json.items[0]!.datapoints.map(strip));
  });

  it("the 100 ns series keeps its sub-millisecond times through protobuf", async () => {
    const c = client();
    const hires = (await c.searchTimeseries({ name: "JSV.HIRES.*" })).items[0]!;
    const latest = await c.getLatestDatapoint(hires.id, {}, { format: "protobuf" });
    const latestJson = await c.getLatestDatapoint(hires.id);
    expect(latest?.timeNs).toBe(latestJson?.timeNs);
    expect(latest!.timeNs % 1_000_000n).not.toBe(0n);
  });

  it("pages a window with continuationToken to the end (JSON and protobuf)", async () => {
    const c = client();
    const [id] = omnia.seededIds();
    const q = { startTime: "2025-12-31T00:00:00Z", endTime: "2025-12-31T01:00:00Z", limit: 7 };
    const all = await c.collectDatapoints(id!, q);
    const pbAll = await c.collectDatapoints(id!, q, { format: "protobuf" });
    const whole = await c.getDatapoints(id!, { ...q, limit: 1000 });
    expect(all.map((p) => p.timeNs)).toEqual(whole.items[0]!.datapoints.map((p) => p.timeNs));
    expect(pbAll.map((p) => p.timeNs)).toEqual(all.map((p) => p.timeNs));
    expect(all.length).toBeGreaterThan(7);
  });

  it("aggregates with every function, by interval, in JSON and protobuf", async () => {
    const c = client();
    const [id] = omnia.seededIds();
    const q = {
      aggregateFunctions: ["avg", "min", "max", "sum", "stddev", "count", "first", "last"] as const,
      startTime: "2025-12-31T00:00:00Z",
      endTime: "2025-12-31T02:00:00Z",
      processingInterval: "1h",
    };
    const json = await c.getAggregates(id!, { ...q, aggregateFunctions: [...q.aggregateFunctions] });
    const pb = await c.getAggregates(id!, { ...q, aggregateFunctions: [...q.aggregateFunctions] }, { format: "protobuf" });
    const buckets = json.items[0]!.aggregates;
    expect(buckets.map((b) => b.time)).toEqual(["2025-12-31T00:00:00.0000000Z", "2025-12-31T01:00:00.0000000Z"]);
    expect(buckets[0]!.count).toBe(60);
    expect(buckets[0]!.min!).toBeLessThanOrEqual(buckets[0]!.avg!);
    expect(pb.items[0]!.aggregates.map((b) => [b.timeNs, b.count, b.avg])).toEqual(buckets.map((b) => [b.timeNs, b.count, b.avg]));
  });

  it("a multi-query mixes raw and aggregate items; first/latest multi", async () => {
    const c = client();
    const [a, b] = omnia.seededIds();
    const page = await c.queryDatapoints([
      { id: a!, startTime: "2025-12-31T00:00:00Z", endTime: "2025-12-31T00:10:00Z" },
      { id: b!, startTime: "2025-12-31T00:00:00Z", endTime: "2025-12-31T01:00:00Z", aggregateFunctions: ["avg", "count"] },
    ]);
    expect(page.items.map((i) => i.kind)).toEqual(["raw", "aggregates"]);
    const firsts = await c.getFirstDatapoints([{ id: a! }, { id: b! }]);
    expect(firsts.map((i) => i.id)).toEqual([a, b]);
    expect(firsts[0]!.datapoints).toHaveLength(1);
  });

  it("creates, patches, writes (sync and async), reads back, deletes a range and the series", async () => {
    const c = client();
    const name = `MERIDIAN.TEST.${Date.now()}`;
    const created = await c.createTimeseries({ name, facility: "JSV", unit: "bar", description: "client test" });
    expect(created).toMatchObject({ name, facility: "JSV" });
    const patched = await c.patchTimeseries(created.id, { description: "patched" });
    expect(patched.description).toBe("patched");
    const w = await c.writeDatapoints(created.id, [
      { time: "2026-02-01T00:00:00.0000001Z", value: 1.25, status: 192 },
      { time: "2026-02-01T00:00:01Z", value: 2.5, status: 0 },
    ]);
    expect(w.accepted).toBe(false);
    const w2 = await c.writeMultipleDatapoints(
      [{ id: created.id, datapoints: [{ time: "2026-02-01T00:00:02Z", value: 3, status: 192 }] }],
      { async: true },
    );
    expect(w2).toMatchObject({ accepted: true, httpStatus: 202 });
    const back = await c.collectDatapoints(created.id, { startTime: "2026-02-01", endTime: "2026-02-02" }, { format: "protobuf" });
    expect(back.map((p) => [p.time, p.value, p.status])).toEqual([
      ["2026-02-01T00:00:00.0000001Z", 1.25, 192],
      ["2026-02-01T00:00:01.0000000Z", 2.5, 0],
      ["2026-02-01T00:00:02.0000000Z", 3, 192],
    ]);
    await c.deleteDatapoints(created.id, { startTime: "2026-02-01T00:00:00Z", endTime: "2026-02-01T00:00:02Z" });
    expect((await c.collectDatapoints(created.id, { startTime: "2026-02-01", endTime: "2026-02-02" })).map((p) => p.value)).toEqual([3]);
    const history = await c.getHistory(created.id);
    expect(history.length).toBeGreaterThanOrEqual(1);
    await c.deleteTimeseries(created.id);
    await expect(c.getTimeseries(created.id)).rejects.toBeInstanceOf(OmniaNotFoundError);
  });

  it("the platform's 400 message comes through (unknown facility)", async () => {
    const err = await client()
      .createTimeseries({ name: "X", facility: "NOPE-NOT-A-FACILITY" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaBadRequestError);
    expect(err).not.toBeInstanceOf(OmniaValidationError);
    expect((err as OmniaBadRequestError).platformMessage).toBe("Facility not found.");
    expect((err as OmniaBadRequestError).traceId).toBeTruthy();
  });

  it("streaming subscriptions and destination", async () => {
    const c = client();
    const [id] = omnia.seededIds();
    await c.setStreamingDestination("Endpoint=sb://hub.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s;EntityPath=e");
    await c.createStreamingSubscriptions([id!]);
    expect((await c.listStreamingSubscriptions()).map((s) => s.id)).toContain(id);
    await c.deleteStreamingSubscription(id!);
    expect((await c.listStreamingSubscriptions()).map((s) => s.id)).not.toContain(id);
  });

  it("a 429 with Retry-After is waited out and retried; when it lasts, OmniaThrottledError", async () => {
    const [id] = omnia.seededIds();
    const waits: number[] = [];
    omnia.setFault({ status: 429, count: 1, retryAfterSeconds: 1 });
    try {
      await client({ onRetry: (e) => waits.push(e.delayMs) }).getLatestDatapoint(id!);
      expect(waits).toEqual([1000]);
      omnia.setFault({ status: 429, count: 5, retryAfterSeconds: 0 });
      await expect(client({ maxAttempts: 2 }).getLatestDatapoint(id!)).rejects.toBeInstanceOf(OmniaThrottledError);
    } finally {
      omnia.clearFaults();
    }
  });

  it("a token for another resource is refused: 401, one fresh token, then OmniaUnauthorizedError", async () => {
    const err = await client({ resourceId: "141369bd-3dca-4b55-825b-56ad4a69b1fc" })
      .getTimeseries(omnia.seededIds()[0]!)
      .catch((e: unknown) => e);
    // The prod resource is registered in the Entra emulator, so a token comes, but the emulator's API wants the test one.
    expect(err).toBeInstanceOf(OmniaUnauthorizedError);
    expect((err as OmniaUnauthorizedError).status).toBe(401);
  });

  it("a wrong client secret is OmniaAuthError, and nothing reaches Omnia", async () => {
    const err = await client({ auth: { mode: "clientSecret", clientId: DEFAULTS.confidentialClient.clientId, clientSecret: "wrong" } })
      .listTimeseries()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaAuthError);
    expect((err as Error).message).toMatch(/AADSTS7000215/);
    expect((err as Error).message).not.toContain("wrong");
  });
});

describe("client certificate", () => {
  const certClientId = "5d0e2a7c-3b1f-4c6e-8a9d-7f2b1c4e6a80";
  let dir: string;
  let pem: string;

  beforeAll(() => {
    // An RSA key: MSAL signs its client assertion with RS256/PS256.
    dir = mkdtempSync(join(tmpdir(), "omnia-client-cert-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-subj",
        "/CN=omnia-reader",
      ],
      {
        cwd: dir,
        stdio: "ignore",
      },
    );
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    pem = `${readFileSync(join(dir, "key.pem"), "utf8")}${cert}`;
    writeFileSync(join(dir, "both.pem"), pem);
    entra.registerApplication({
      clientId: certClientId,
      certificates: [cert],
      grants: { "32f2a909-8a98-4eb8-b22d-1208d9350cb0": { roles: ["Timeseries.Read"] } },
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a PEM file (certificatePath) and PEM text (certificatePem) both get a token Omnia accepts", async () => {
    const [id] = omnia.seededIds();
    const byPath = client({ auth: { mode: "clientCertificate", clientId: certClientId, certificatePath: join(dir, "both.pem") } });
    expect((await byPath.getTimeseries(id!)).id).toBe(id);
    const byPem = client({ auth: { mode: "clientCertificate", clientId: certClientId, certificatePem: pem } });
    expect((await byPem.getTimeseries(id!)).id).toBe(id);
  });
});

describe("device code (the public client of the environment)", () => {
  it("hands the prompt to the callback without blocking; the read completes once the user approves", async () => {
    const prompts: DeviceCodePrompt[] = [];
    const c = client({
      auth: { mode: "deviceCode" },
      onDeviceCode: (p) => {
        prompts.push(p);
        // The user signs in elsewhere, later.
        setTimeout(() => entra.approveDeviceCode(p.userCode), 200);
      },
    });
    const read = c.getLatestDatapoint(omnia.seededIds()[0]!);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    // Other work goes on while the sign-in is pending (a blocked event loop would never see the 200 ms approval).
    expect(Date.now() - t0).toBeLessThan(5000);
    const point = await read;
    expect(point?.status).toBeTypeOf("number");
    expect(prompts).toHaveLength(1);
    expect(prompts[0]!.verificationUri).toMatch(/^https:\/\//);
    expect(prompts[0]!.message).toContain(prompts[0]!.userCode);
  });
});

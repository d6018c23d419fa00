/**
 * The admin surface over HTTP (state, faults per listener and operation, vault secrets, ingest as a device, token
 * lifetime, reset) and the control plane's edges the SDK does not show: the query-string quirk, errors on plain HTTP.
 */
import type * as common from "oci-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OciEmulator } from "../src/index.js";
import {
  createStructuredTwin,
  dataToken,
  emuFetch,
  m5CustomModel,
  m5Payload,
  ords,
  postDevice,
  sdkClient,
  startEmulator,
} from "./harness.js";

let emu: OciEmulator;
let client: ReturnType<typeof sdkClient>;
let f: ReturnType<typeof emuFetch>;

beforeAll(async () => {
  emu = await startEmulator({ adminPort: 0 });
  client = sdkClient(emu, { retry: "none" });
  f = emuFetch(emu);
});
afterAll(async () => {
  client?.close();
  await emu?.stop();
});

const admin = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${emu.adminUrl}/_emulator/${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

async function ociError(p: Promise<unknown>): Promise<common.OciError> {
  try {
    await p;
  } catch (err) {
    return err as common.OciError;
  }
  throw new Error("expected the call to fail");
}

describe("admin surface", () => {
  it("answers health and state on the admin port and on the control listener", async () => {
    expect((await admin("GET", "health")).body).toEqual({ ok: true });
    const s = await (await f(`${emu.controlUrl}/_emulator/state`)).json();
    expect(s).toMatchObject({ domain: { id: emu.domain.id }, scope: emu.scope });
  });

  it("injects 429 with Retry-After and 500 on the control plane for the chosen operation only", async () => {
    expect((await admin("POST", "faults", { status: 429, count: 1, retryAfterSeconds: 7, operation: "GetIotDomainGroup" })).status).toBe(
      200,
    );
    // Another operation passes untouched.
    expect((await client.getIotDomain({ iotDomainId: emu.domain.id })).iotDomain.id).toBe(emu.domain.id);
    const e = await ociError(client.getIotDomainGroup({ iotDomainGroupId: emu.domain.groupId }));
    expect([e.statusCode, e.serviceCode]).toEqual([429, "TooManyRequests"]);
    // Settings merge: the operation filter stays until the faults are cleared.
    await admin("DELETE", "faults");
    await admin("POST", "faults", { status: 500, count: 1 });
    const e5 = await ociError(client.getIotDomain({ iotDomainId: emu.domain.id }));
    expect([e5.statusCode, e5.serviceCode]).toEqual([500, "InternalServerError"]);
    expect((await client.getIotDomain({ iotDomainId: emu.domain.id })).iotDomain.id).toBe(emu.domain.id);
    await admin("DELETE", "faults");
  });

  it("sends an injected 429's Retry-After on the wire; control-plane faults come after the signature check", async () => {
    emu.setFault({ target: "data", status: 429, count: 1, retryAfterSeconds: 3, operation: "token" });
    const res = await f(`${emu.identityUrl}/oauth2/v1/token`, { method: "POST", body: "" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("3");
    emu.setFault({ status: 429, count: 1 });
    const unsigned = await f(`${emu.controlUrl}/20250531/iotDomains/${emu.domain.id}`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { code: string }).code).toBe("NotAuthenticated");
    const e = await ociError(client.getIotDomain({ iotDomainId: emu.domain.id }));
    expect(e.statusCode).toBe(429);
    emu.clearFaults();
  });

  it("injects faults on the data API (a data set or the token endpoint) and on device ingest", async () => {
    const twin = await createStructuredTwin(emu, sdkClient(emu), { key: "faults", model: m5CustomModel, custom: true });
    emu.setFault({ target: "data", status: 503, count: 1, operation: "token" });
    expect((await dataToken(emu)).status).toBe(503);
    const token = (await dataToken(emu)).body.access_token as string;
    emu.setFault({ target: "data", status: 500, count: 1, operation: "rawData" });
    expect((await ords(emu, token, "historizedData")).status).toBe(200);
    expect((await ords(emu, token, "rawData")).status).toBe(500);
    expect((await ords(emu, token, "rawData")).status).toBe(200);
    emu.setFault({ target: "device", status: 429, count: 1, retryAfterSeconds: 1 });
    expect((await postDevice(emu, twin.externalKey, twin.secret, m5Payload)).status).toBe(429);
    expect((await postDevice(emu, twin.externalKey, twin.secret, m5Payload)).status).toBe(202);
    expect(((await admin("GET", "faults")).body.faults as Record<string, unknown>).device).toEqual({});
  });

  it("refuses an unknown fault setting naming it", async () => {
    const r = await admin("POST", "faults", { status: 409, colour: "red" });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe("colour");
  });

  it("adds vault secrets and ingests as a device; sets the token lifetime", async () => {
    const c = sdkClient(emu);
    const i = await c.createDigitalTwinInstance({
      createDigitalTwinInstanceDetails: { iotDomainId: emu.domain.id, externalKey: "admin-ext", authId: "ocid1.vaultsecret.oc1..admin" },
    });
    c.close();
    expect((await postDevice(emu, "admin-ext", "pw", { a: 1 })).status).toBe(401);
    expect((await admin("POST", "vault-secrets", { authId: "ocid1.vaultsecret.oc1..admin", plaintext: "pw" })).status).toBe(200);
    expect((await postDevice(emu, "admin-ext", "pw", { a: 1 })).status).toBe(202);
    const r = await admin("POST", "ingest", { externalKey: "admin-ext", payload: { b: 2 }, endpoint: "x/y" });
    expect(r.body).toMatchObject({ outcome: "raw", instanceId: i.digitalTwinInstance.id });
    expect((await admin("POST", "ingest", { externalKey: "nobody", payload: {} })).status).toBe(404);
    expect((await admin("PUT", "token-lifetime", { seconds: 120 })).body).toEqual({ tokenLifetimeSeconds: 120 });
    expect((await dataToken(emu)).body.expires_in).toBe(120);
    await admin("PUT", "token-lifetime", { seconds: 3600 });
  });

  it("resets resources and data, keeping the domain, API key and vault secrets", async () => {
    const before = (await admin("GET", "state")).body;
    expect((before.counts as { instances: { active: number } }).instances.active).toBeGreaterThan(0);
    expect((await admin("POST", "reset")).body).toEqual({ reset: true });
    const after = (await admin("GET", "state")).body;
    expect(after.counts).toMatchObject({ models: { active: 0, deleted: 0 }, instances: { active: 0, deleted: 0 }, rawData: 0 });
    expect(after.vaultSecrets).toContain("ocid1.vaultsecret.oc1..admin");
    expect((await client.getIotDomain({ iotDomainId: emu.domain.id })).iotDomain.id).toBe(emu.domain.id);
  });
});

describe("control plane edges", () => {
  it("reads the SDK's unencoded query values literally: a '+' in a displayName is a plus, not a space", async () => {
    const c = sdkClient(emu);
    await c.createDigitalTwinInstance({
      createDigitalTwinInstanceDetails: { iotDomainId: emu.domain.id, displayName: "a+b", externalKey: "plus-ext" },
    });
    const r = await c.listDigitalTwinInstances({ iotDomainId: emu.domain.id, displayName: "a+b" });
    expect(r.digitalTwinInstanceCollection.items.map((i) => i.displayName)).toEqual(["a+b"]);
    c.close();
  });

  it("answers unknown paths 404 NotFound and wrong methods 405, always JSON with opc-request-id", async () => {
    const c = sdkClient(emu);
    // A signed request through the SDK's own signer is not needed for routing errors: they come before the signature.
    const r = await f(`${emu.controlUrl}/20250531/nothingHere`, { headers: { "opc-request-id": "CALLER1" } });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { code: string }).code).toBe("NotFound");
    expect(r.headers.get("opc-request-id")).toMatch(/^CALLER1\//);
    const m = await f(`${emu.controlUrl}/20250531/digitalTwinModels`, { method: "PATCH" });
    expect(m.status).toBe(405);
    expect(((await m.json()) as { code: string }).code).toBe("MethodNotAllowed");
    c.close();
  });

  it("runs on plain http with tls: false (the SDK accepts http endpoints)", async () => {
    const plain = await startEmulator({ tls: false });
    try {
      expect(plain.controlUrl.startsWith("http://")).toBe(true);
      expect(plain.caPem).toBeUndefined();
      const c = sdkClient(plain, { retry: "none" });
      expect((await c.getIotDomain({ iotDomainId: plain.domain.id })).iotDomain.deviceHost).toBe(plain.domain.deviceHost);
      c.close();
    } finally {
      await plain.stop();
    }
  });
});

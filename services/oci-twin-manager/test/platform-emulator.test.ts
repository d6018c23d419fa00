/**
 * The platform client against the OCI emulator over TLS: the control plane signed with the emulator's API key through
 * the SDK, the identity token and ORDS, and device ingest, each through this package's own client.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type OciEmulator, startOciEmulator } from "@meridian/emulator-oci";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createDataApiClient,
  createDeviceEndpointClient,
  createDigitalTwinsClient,
  type DataApiClient,
  type DeviceEndpointClient,
  type DigitalTwinsClient,
  type IotDomain,
  type JsonObject,
  listAll,
  type OciClientOptions,
  OciConflictError,
  OciInvalidArgumentError,
  OciNotAuthenticatedError,
  OciNotFoundError,
  OciUnavailableError,
} from "../src/platform/index.js";
import { M5_PAYLOAD, m5ModelDefault } from "./m5.js";

const AUTH_ID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.platformtest";
const SECRET = "platform-test-device-secret";

let emu: OciEmulator;
let options: OciClientOptions;
let twins: DigitalTwinsClient;
let domain: IotDomain;
let data: DataApiClient;
let device: DeviceEndpointClient;

function requests(): Record<string, number> {
  return emu.state().requests as Record<string, number>;
}

function count(prefix: string): number {
  return Object.entries(requests())
    .filter(([k]) => k.toLowerCase().startsWith(prefix.toLowerCase()))
    .reduce((n, [, v]) => n + v, 0);
}

beforeAll(async () => {
  emu = await startOciEmulator({ tls: true, seed: "platform-test" });
  emu.addVaultSecret(AUTH_ID, SECRET);
  options = {
    auth: { kind: "api_key_inline", ...emu.apiKey },
    endpoint: emu.controlUrl,
    dataUrl: emu.dataUrl,
    deviceUrl: emu.deviceUrl,
    identityUrl: emu.identityUrl,
    ...(emu.caPem ? { caPem: emu.caPem } : {}),
    retry: { maxAttempts: 3, maxDelayMs: 100 },
  };
  twins = createDigitalTwinsClient(options);
  domain = await twins.getIotDomain(emu.domain.id);
  data = createDataApiClient(domain, emu.dataAccess, options);
  device = createDeviceEndpointClient(domain, options);
});

afterAll(async () => {
  await twins?.close?.();
  await data?.close?.();
  await device?.close?.();
  await emu?.stop();
});

beforeEach(() => {
  emu.clearFaults();
});

/** A structured twin (model, default adapter, instance) as the twin manager creates one. */
async function createTwin(key: string) {
  const specUri = `dtmi:com:meridian:platformtest:${key};1`;
  const tags = { freeformTags: { "meridian-twin": key } };
  const model = await twins.createModel(
    { iotDomainId: domain.id, spec: { ...m5ModelDefault(), "@id": specUri }, displayName: specUri, description: `model of ${key}` },
    { retryToken: `mt-${key}-model`, ...tags },
  );
  const adapter = await twins.createAdapter(
    { iotDomainId: domain.id, digitalTwinModelSpecUri: specUri, displayName: `${key}-adapter` },
    { retryToken: `mt-${key}-adapter`, ...tags },
  );
  const instance = await twins.createInstance(
    { iotDomainId: domain.id, displayName: `${key}-device`, externalKey: `${key}-ext`, authId: AUTH_ID, digitalTwinAdapterId: adapter.id },
    { retryToken: `mt-${key}-instance`, ...tags },
  );
  return { specUri, model, adapter, instance };
}

describe("control plane", () => {
  it("reads the domain and its group with the short ids the emulator reports", () => {
    expect(domain).toMatchObject({
      id: emu.domain.id,
      iotDomainGroupId: emu.domain.groupId,
      deviceHost: emu.domain.deviceHost,
      dataHost: emu.domain.dataHost,
      dbAllowedIdentityDomainHost: emu.domain.identityHost,
      domainShortId: emu.domain.domainShortId,
      groupShortId: emu.domain.groupShortId,
    });
  });

  it("creates, gets, lists and deletes a model, adapter and instance", async () => {
    const { specUri, model, adapter, instance } = await createTwin("crud");
    expect(model).toMatchObject({ specUri, lifecycleState: "ACTIVE", freeformTags: { "meridian-twin": "crud" } });
    expect(model.timeCreated).toBeInstanceOf(Date);
    expect(adapter).toMatchObject({ digitalTwinModelId: model.id, digitalTwinModelSpecUri: specUri, lifecycleState: "ACTIVE" });
    expect(instance).toMatchObject({
      externalKey: "crud-ext",
      authId: AUTH_ID,
      digitalTwinAdapterId: adapter.id,
      lifecycleState: "ACTIVE",
    });

    expect(await twins.getModel(model.id)).toMatchObject({ id: model.id, specUri });
    expect((await twins.getModelSpec(model.id))["@id"]).toBe(specUri);
    const gotAdapter = await twins.getAdapter(adapter.id);
    expect(gotAdapter.inboundEnvelope).toBeDefined();
    expect(await twins.getInstance(instance.id)).toMatchObject({ id: instance.id, displayName: "crud-device" });

    const models = await twins.listModels(domain.id, { specUriStartsWith: specUri, lifecycleState: "ACTIVE" });
    expect(models.items.map((m) => m.id)).toEqual([model.id]);
    const byName = await twins.listInstances(domain.id, { displayName: "crud-device", lifecycleState: "ACTIVE" });
    expect(byName.items.map((i) => i.id)).toEqual([instance.id]);
    expect((await twins.listAdapters(domain.id, { digitalTwinModelId: model.id })).items.map((a) => a.id)).toEqual([adapter.id]);

    await twins.deleteInstance(instance.id);
    await twins.waitFor("instance", instance.id, "DELETED", 5000);
    await twins.deleteAdapter(adapter.id);
    await twins.deleteModel(model.id);
    await twins.waitFor("model", model.id, "DELETED", 5000);
    const active = await twins.listInstances(domain.id, { displayName: "crud-device", lifecycleState: "ACTIVE" });
    expect(active.items).toEqual([]);
  });

  it("gives the same resource for a create repeated with the same retry token", async () => {
    const first = await createTwin("retrytoken");
    const again = await createTwin("retrytoken");
    expect(again.model.id).toBe(first.model.id);
    expect(again.adapter.id).toBe(first.adapter.id);
    expect(again.instance.id).toBe(first.instance.id);
  });

  it("pages with nextPage; listAll reads every page", async () => {
    for (const k of ["page-a", "page-b", "page-c"]) {
      await twins.createInstance({ iotDomainId: domain.id, displayName: `paged-${k}`, externalKey: `paged-${k}` });
    }
    const first = await twins.listInstances(domain.id, { limit: 1, lifecycleState: "ACTIVE" });
    expect(first.items).toHaveLength(1);
    expect(first.nextPage).toBeTruthy();
    const all = await listAll((page) => twins.listInstances(domain.id, { limit: 1, lifecycleState: "ACTIVE", ...(page ? { page } : {}) }));
    expect(all.map((i) => i.displayName)).toEqual(expect.arrayContaining(["paged-page-a", "paged-page-b", "paged-page-c"]));
    expect(new Set(all.map((i) => i.id)).size).toBe(all.length);
  });

  it("maps an unknown OCID to OciNotFoundError naming it", async () => {
    const unknown = "ocid1.iotdigitaltwininstance.oc1.eu-frankfurt-1.doesnotexist";
    const err = await twins.getInstance(unknown).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciNotFoundError);
    expect(err).toMatchObject({ resource: unknown, status: 404, code: "NotAuthorizedOrNotFound" });
    expect((err as OciNotFoundError).requestId).toBeTruthy();
  });

  it("signs with an OCI config file and profile (api_key) as the CLI writes them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "oci-config-"));
    writeFileSync(join(dir, "key.pem"), emu.apiKey.privateKeyPem);
    const k = emu.apiKey;
    writeFileSync(
      join(dir, "config"),
      `[DEFAULT]\nregion=${emu.domain.region}\n\n[MERIDIAN]\nuser=${k.user}\nfingerprint=${k.fingerprint}\ntenancy=${k.tenancy}\nkey_file=${join(dir, "key.pem")}\n`,
    );
    const fromFile = createDigitalTwinsClient({
      ...options,
      auth: { kind: "api_key", configFile: join(dir, "config"), profile: "MERIDIAN" },
    });
    try {
      expect((await fromFile.getIotDomain(emu.domain.id)).id).toBe(emu.domain.id);
    } finally {
      await fromFile.close?.();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("maps a key the emulator does not know to OciNotAuthenticatedError", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const wrong = createDigitalTwinsClient({ ...options, auth: { kind: "api_key_inline", ...emu.apiKey, privateKeyPem: other } });
    try {
      const err = await wrong.getIotDomain(emu.domain.id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciNotAuthenticatedError);
      expect(err).toMatchObject({ status: 401, code: "NotAuthenticated" });
    } finally {
      await wrong.close?.();
    }
  });

  it("maps a 400 naming a field to OciInvalidArgumentError on that field", async () => {
    const spec = m5ModelDefault();
    spec["@id"] = "dtmi:com:meridian:platformtest:bad;1";
    (spec.contents as JsonObject[])[2]!.schema = "dobule";
    const err = await twins.createModel({ iotDomainId: domain.id, spec }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciInvalidArgumentError);
    expect(err).toMatchObject({ status: 400, field: "spec.contents[2].schema" });
  });

  it("retries a 409 IncorrectState (as the SDK does) and succeeds", async () => {
    const { instance } = await createTwin("incorrectstate");
    const before = count("GetDigitalTwinInstance 409");
    emu.setFault({ status: 409, count: 2, operation: "GetDigitalTwinInstance" });
    const got = await twins.getInstance(instance.id);
    expect(got.id).toBe(instance.id);
    expect(count("GetDigitalTwinInstance 409") - before).toBe(2);
  });

  it("ends with a retryable OciConflictError when IncorrectState outlasts retry.maxAttempts", async () => {
    const { instance } = await createTwin("incorrectstate2");
    emu.setFault({ status: 409, count: 5, operation: "GetDigitalTwinInstance" });
    const err = await twins.getInstance(instance.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciConflictError);
    expect(err).toMatchObject({ code: "IncorrectState", retryable: true });
  });

  it("maps a 500 that outlasts the retries to OciUnavailableError", async () => {
    emu.setFault({ status: 500, count: 5, operation: "GetIotDomain" });
    const err = await twins.getIotDomain(domain.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciUnavailableError);
  });
});

describe("device endpoint and data API", () => {
  it("finds in ORDS what the device client posted: raw row with content, historized rows", async () => {
    const { instance } = await createTwin("ingest");
    await device.post({ externalKey: "ingest-ext", secret: SECRET }, "iot/v1/telemetry", { ...M5_PAYLOAD, time: Date.now() * 1000 });

    const raw = await data.query("rawData", { digitalTwinInstanceId: instance.id, orderBy: { id: "asc" }, limit: 10 });
    expect(raw.items).toHaveLength(1);
    expect(raw.items[0]).toMatchObject({ digital_twin_instance_id: instance.id, endpoint: "iot/v1/telemetry" });
    const rawRow = await data.get("rawData", raw.items[0]!.id as number);
    const content = typeof rawRow.content === "string" ? JSON.parse(rawRow.content) : rawRow.content;
    expect(content).toMatchObject(M5_PAYLOAD);

    const historized = await data.query("historizedData", {
      digitalTwinInstanceId: instance.id,
      filter: [{ id: { $gt: 0 } }],
      orderBy: { id: "asc" },
      limit: 500,
    });
    expect(historized.items.map((r) => r.content_path).sort()).toEqual(["humidity", "pressure", "qmp_temperature", "sht_temperature"]);
    expect(historized.hasMore).toBe(false);

    const paged = await data.query("historizedData", { digitalTwinInstanceId: instance.id, orderBy: { id: "asc" }, limit: 3 });
    expect(paged).toMatchObject({ limit: 3, offset: 0, count: 3, hasMore: true });
    const rest = await data.query("historizedData", { digitalTwinInstanceId: instance.id, orderBy: { id: "asc" }, limit: 3, offset: 3 });
    expect(rest.items).toHaveLength(1);
  });

  it("refuses a wrong device secret with OciNotAuthenticatedError", async () => {
    await createTwin("badsecret");
    await expect(device.post({ externalKey: "badsecret-ext", secret: "wrong" }, "iot/v1/telemetry", M5_PAYLOAD)).rejects.toBeInstanceOf(
      OciNotAuthenticatedError,
    );
  });

  it("renews an expired token once ORDS refuses it", async () => {
    const fresh = createDataApiClient(domain, emu.dataAccess, options);
    try {
      await fresh.query("rawData", { limit: 1 });
      const tokensBefore = count("token 200");
      // The emulator's clock passes the token's expiry; the client still holds it as fresh, so ORDS answers 401.
      emu.setClockOffset(2 * 3600_000);
      const page = await fresh.query("rawData", { limit: 1 });
      expect(page.limit).toBe(1);
      expect(count("token 200") - tokensBefore).toBe(1);
      expect(count("rawData 401")).toBeGreaterThanOrEqual(1);
    } finally {
      emu.setClockOffset(0);
      await fresh.close?.();
    }
  });

  it("refuses wrong data-access credentials with OciNotAuthenticatedError", async () => {
    const wrong = createDataApiClient(domain, { ...emu.dataAccess, password: "not-the-password" }, options);
    try {
      const err = await wrong.query("rawData", {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciNotAuthenticatedError);
      expect((err as Error).message).not.toContain("not-the-password");
    } finally {
      await wrong.close?.();
    }
  });
});

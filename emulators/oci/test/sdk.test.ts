/**
 * The unmodified OCI TypeScript SDK (oci-iot, oci-common) against the emulator's control plane over TLS: CRUD with
 * paging, specs, content after an ingest, signatures, retries of injected faults, retry tokens and conflicts.
 */
import { generateKeyPairSync } from "node:crypto";
import type * as common from "oci-common";
import type * as iot from "oci-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OciEmulator } from "../src/index.js";
import { createStructuredTwin, m5CustomModel, m5DefaultModel, m5Payload, postDevice, sdkClient, startEmulator } from "./harness.js";

let emu: OciEmulator;
let client: iot.IotClient;
let noRetry: iot.IotClient;

beforeAll(async () => {
  emu = await startEmulator();
  client = sdkClient(emu);
  noRetry = sdkClient(emu, { retry: "none" });
});
afterAll(async () => {
  client?.close();
  noRetry?.close();
  await emu?.stop();
});

async function ociError(p: Promise<unknown>): Promise<common.OciError> {
  try {
    await p;
  } catch (err) {
    return err as common.OciError;
  }
  throw new Error("expected the call to fail");
}

const model = (specUri: string, extra: Record<string, unknown> = {}) => ({
  createDigitalTwinModelDetails: { iotDomainId: emu.domain.id, spec: { ...m5DefaultModel, "@id": specUri }, ...extra },
});

describe("OCI SDK against the emulator", () => {
  it("creates, gets, lists with paging (limit 2 over 5), updates and deletes models; the spec is separate", async () => {
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) {
      const r = await client.createDigitalTwinModel(
        model(`dtmi:com:example:paging:m${n};1`, { freeformTags: { "meridian-twin": `t${n}` } }),
      );
      expect(r.digitalTwinModel.lifecycleState).toBe("ACTIVE");
      expect(r.digitalTwinModel.specUri).toBe(`dtmi:com:example:paging:m${n};1`);
      expect(r.digitalTwinModel.displayName).toBe("M5 environment");
      expect(r.etag).toBeTruthy();
      expect((r.digitalTwinModel as unknown as Record<string, unknown>).spec).toBeUndefined();
      ids.push(r.digitalTwinModel.id);
    }
    const got = await client.getDigitalTwinModel({ digitalTwinModelId: ids[0]! });
    expect(got.digitalTwinModel.freeformTags).toEqual({ "meridian-twin": "t1" });
    expect(String(got.digitalTwinModel.timeCreated)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const spec = await client.getDigitalTwinModelSpec({ digitalTwinModelId: ids[2]! });
    expect((spec.value as Record<string, unknown>)["@id"]).toBe("dtmi:com:example:paging:m3;1");

    const seen: string[] = [];
    let page: string | undefined;
    let pages = 0;
    do {
      const r = await client.listDigitalTwinModels({
        iotDomainId: emu.domain.id,
        specUriStartsWith: "dtmi:com:example:paging:",
        lifecycleState: "ACTIVE" as iot.models.LifecycleState,
        sortBy: iot_sortBy("timeCreated"),
        sortOrder: "ASC" as never,
        limit: 2,
        page,
      });
      expect(r.digitalTwinModelCollection.items.length).toBeLessThanOrEqual(2);
      seen.push(...r.digitalTwinModelCollection.items.map((m) => m.id));
      page = r.opcNextPage;
      pages++;
    } while (page);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);

    const updated = await client.updateDigitalTwinModel({
      digitalTwinModelId: ids[1]!,
      updateDigitalTwinModelDetails: { displayName: "renamed" },
      ifMatch: (await client.getDigitalTwinModel({ digitalTwinModelId: ids[1]! })).etag,
    });
    expect(updated.digitalTwinModel.displayName).toBe("renamed");
    const stale = await ociError(
      noRetry.updateDigitalTwinModel({
        digitalTwinModelId: ids[1]!,
        updateDigitalTwinModelDetails: { displayName: "x" },
        ifMatch: got.etag,
      }),
    );
    expect([stale.statusCode, stale.serviceCode]).toEqual([412, "NoEtagMatch"]);

    await client.deleteDigitalTwinModel({ digitalTwinModelId: ids[4]! });
    const deleted = await client.getDigitalTwinModel({ digitalTwinModelId: ids[4]! });
    expect(deleted.digitalTwinModel.lifecycleState).toBe("DELETED");
    const listedDeleted = await client.listDigitalTwinModels({
      iotDomainId: emu.domain.id,
      lifecycleState: "DELETED" as iot.models.LifecycleState,
    });
    expect(listedDeleted.digitalTwinModelCollection.items.map((m) => m.id)).toEqual([ids[4]]);
  });

  it("creates, gets, lists with paging, updates and deletes adapters (default adapter synthesised) and instances", async () => {
    const specUri = "dtmi:com:example:crud:m5;1";
    const m = await client.createDigitalTwinModel(model(specUri));
    const adapters: iot.models.DigitalTwinAdapter[] = [];
    for (let n = 1; n <= 5; n++) {
      const a = await client.createDigitalTwinAdapter({
        createDigitalTwinAdapterDetails: { iotDomainId: emu.domain.id, displayName: `crud-adapter-${n}`, digitalTwinModelSpecUri: specUri },
      });
      adapters.push(a.digitalTwinAdapter);
    }
    const a1 = adapters[0]!;
    expect(a1.digitalTwinModelId).toBe(m.digitalTwinModel.id);
    expect(a1.inboundEnvelope?.envelopeMapping?.timeObserved).toBe("$.time");
    expect(a1.inboundRoutes?.[0]?.condition).toBe("*");

    const listedAdapters: string[] = [];
    let page: string | undefined;
    do {
      const r = await client.listDigitalTwinAdapters({
        iotDomainId: emu.domain.id,
        digitalTwinModelId: m.digitalTwinModel.id,
        limit: 2,
        page,
      });
      listedAdapters.push(...r.digitalTwinAdapterCollection.items.map((a) => a.id));
      page = r.opcNextPage;
    } while (page);
    // Default order: timeCreated, newest first.
    expect(listedAdapters).toEqual(adapters.map((a) => a.id).reverse());

    const instances: iot.models.DigitalTwinInstance[] = [];
    for (let n = 1; n <= 5; n++) {
      const i = await client.createDigitalTwinInstance({
        createDigitalTwinInstanceDetails: {
          iotDomainId: emu.domain.id,
          displayName: `crud-device-${n}`,
          digitalTwinAdapterId: adapters[n - 1]!.id,
          externalKey: `crud-ext-${n}`,
          authId: "ocid1.vaultsecret.oc1.eu-frankfurt-1.crud",
        },
      });
      expect(i.digitalTwinInstance.digitalTwinModelSpecUri).toBe(specUri);
      expect(i.digitalTwinInstance.connectivityType).toBe("DIRECT");
      instances.push(i.digitalTwinInstance);
    }
    const byName = await client.listDigitalTwinInstances({
      iotDomainId: emu.domain.id,
      displayName: "crud-device-3",
      lifecycleState: "ACTIVE" as iot.models.LifecycleState,
    });
    expect(byName.digitalTwinInstanceCollection.items.map((i) => i.id)).toEqual([instances[2]!.id]);
    const paged: string[] = [];
    let pages = 0;
    page = undefined;
    do {
      const r = await client.listDigitalTwinInstances({ iotDomainId: emu.domain.id, digitalTwinModelSpecUri: specUri, limit: 2, page });
      paged.push(...r.digitalTwinInstanceCollection.items.map((i) => i.id));
      page = r.opcNextPage;
      pages++;
    } while (page);
    expect(pages).toBe(3);
    expect(new Set(paged)).toEqual(new Set(instances.map((i) => i.id)));

    const u = await client.updateDigitalTwinInstance({
      digitalTwinInstanceId: instances[0]!.id,
      updateDigitalTwinInstanceDetails: { description: "updated" },
    });
    expect(u.digitalTwinInstance.description).toBe("updated");
    const ua = await client.updateDigitalTwinAdapter({
      digitalTwinAdapterId: a1.id,
      updateDigitalTwinAdapterDetails: { displayName: "renamed" },
    });
    expect(ua.digitalTwinAdapter.displayName).toBe("renamed");

    await client.deleteDigitalTwinInstance({ digitalTwinInstanceId: instances[0]!.id });
    expect((await client.getDigitalTwinInstance({ digitalTwinInstanceId: instances[0]!.id })).digitalTwinInstance.lifecycleState).toBe(
      "DELETED",
    );
    await client.deleteDigitalTwinAdapter({ digitalTwinAdapterId: a1.id });
    expect((await client.getDigitalTwinAdapter({ digitalTwinAdapterId: a1.id })).digitalTwinAdapter.lifecycleState).toBe("DELETED");
  });

  it("reads an instance's content after a device message (the snapshot, count included)", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "content", model: m5CustomModel, custom: true });
    const before = await client.getDigitalTwinInstanceContent({ digitalTwinInstanceId: twin.instance.id });
    expect(before.value).toEqual({});
    expect((await postDevice(emu, twin.externalKey, twin.secret, m5Payload)).status).toBe(202);
    const after = await client.getDigitalTwinInstanceContent({ digitalTwinInstanceId: twin.instance.id });
    expect(after.value).toEqual(m5Payload);
  });

  it("answers 404 NotAuthorizedOrNotFound for an unknown OCID and for the content of a twin without a model", async () => {
    const e = await ociError(
      noRetry.getDigitalTwinInstance({ digitalTwinInstanceId: "ocid1.iotdigitaltwininstance.oc1.eu-frankfurt-1.nope" }),
    );
    expect([e.statusCode, e.serviceCode]).toEqual([404, "NotAuthorizedOrNotFound"]);
    expect(e.opcRequestId).toBeTruthy();
    const i = await client.createDigitalTwinInstance({
      createDigitalTwinInstanceDetails: { iotDomainId: emu.domain.id, displayName: "unstructured" },
    });
    expect(i.digitalTwinInstance.externalKey).toMatch(/^[a-z2-7]{26}$/);
    const c = await ociError(noRetry.getDigitalTwinInstanceContent({ digitalTwinInstanceId: i.digitalTwinInstance.id }));
    expect([c.statusCode, c.serviceCode]).toEqual([404, "NotAuthorizedOrNotFound"]);
  });

  it("refuses a signature made with another key and an unknown keyId: 401 NotAuthenticated", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const wrongSig = sdkClient(emu, { retry: "none", key: { ...emu.apiKey, privateKeyPem: other } });
    const e1 = await ociError(wrongSig.getIotDomain({ iotDomainId: emu.domain.id }));
    expect([e1.statusCode, e1.serviceCode]).toEqual([401, "NotAuthenticated"]);
    const unknown = sdkClient(emu, { retry: "none", key: { ...emu.apiKey, user: "ocid1.user.oc1..someoneelse" } });
    const e2 = await ociError(unknown.getIotDomain({ iotDomainId: emu.domain.id }));
    expect([e2.statusCode, e2.serviceCode]).toEqual([401, "NotAuthenticated"]);
    wrongSig.close();
    unknown.close();
  });

  it("reads the domain and its group as the manage-dt discovery flow does", async () => {
    const d = await client.getIotDomain({ iotDomainId: emu.domain.id });
    expect(d.iotDomain.deviceHost).toBe(emu.domain.deviceHost);
    expect(d.iotDomain.deviceHost?.split(".")[0]).toBe(emu.domain.domainShortId);
    expect(d.iotDomain.dbAllowedIdentityDomainHost).toBe(emu.domain.identityHost);
    const g = await client.getIotDomainGroup({ iotDomainGroupId: d.iotDomain.iotDomainGroupId });
    expect(g.iotDomainGroup.dataHost?.split(".")[0]).toBe(emu.domain.groupShortId);
  });

  it("retries a 409 IncorrectState injected for 2 requests with the SDK's default retry, then succeeds", async () => {
    emu.setFault({ status: 409, count: 2, operation: "GetIotDomain" });
    const t0 = Date.now();
    const d = await client.getIotDomain({ iotDomainId: emu.domain.id });
    expect(d.iotDomain.id).toBe(emu.domain.id);
    const requests = emu.state().requests as Record<string, number>;
    expect(requests["GetIotDomain 409"]).toBe(2);
    expect(Date.now() - t0).toBeLessThan(25_000);
    emu.clearFaults();
  });

  it("returns the first resource for a create repeated with the same opcRetryToken; another body is 409 InvalidatedRetryToken", async () => {
    const req = { ...model("dtmi:com:example:retry:m5;1"), opcRetryToken: "meridian-retry-token-1" };
    const first = await client.createDigitalTwinModel(req);
    const again = await client.createDigitalTwinModel(req);
    expect(again.digitalTwinModel.id).toBe(first.digitalTwinModel.id);
    const other = await ociError(
      noRetry.createDigitalTwinModel({ ...model("dtmi:com:example:retry:other;1"), opcRetryToken: "meridian-retry-token-1" }),
    );
    expect([other.statusCode, other.serviceCode]).toEqual([409, "InvalidatedRetryToken"]);
  });

  it("refuses deleting a model in use by an ACTIVE adapter, and a duplicate ACTIVE specUri or externalKey: 409 Conflict", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "inuse", model: m5DefaultModel, custom: false });
    const e = await ociError(noRetry.deleteDigitalTwinModel({ digitalTwinModelId: twin.model.id }));
    expect([e.statusCode, e.serviceCode]).toEqual([409, "Conflict"]);
    const ea = await ociError(noRetry.deleteDigitalTwinAdapter({ digitalTwinAdapterId: twin.adapter.id }));
    expect([ea.statusCode, ea.serviceCode]).toEqual([409, "Conflict"]);
    const dup = await ociError(noRetry.createDigitalTwinModel(model(twin.model.specUri)));
    expect([dup.statusCode, dup.serviceCode]).toEqual([409, "Conflict"]);
    const dupKey = await ociError(
      noRetry.createDigitalTwinInstance({
        createDigitalTwinInstanceDetails: { iotDomainId: emu.domain.id, externalKey: twin.externalKey },
      }),
    );
    expect([dupKey.statusCode, dupKey.serviceCode]).toEqual([409, "Conflict"]);
    // In the order manage-dt deletes, every step succeeds.
    await client.deleteDigitalTwinInstance({ digitalTwinInstanceId: twin.instance.id });
    await client.deleteDigitalTwinAdapter({ digitalTwinAdapterId: twin.adapter.id });
    await client.deleteDigitalTwinModel({ digitalTwinModelId: twin.model.id });
  });

  it("answers 400 InvalidParameter naming the field for a bad DTDL spec and an adapter route to an unknown content", async () => {
    const bad = await ociError(
      noRetry.createDigitalTwinModel({
        createDigitalTwinModelDetails: { iotDomainId: emu.domain.id, spec: { ...m5DefaultModel, "@id": "not-a-dtmi" } },
      }),
    );
    expect([bad.statusCode, bad.serviceCode]).toEqual([400, "InvalidParameter"]);
    expect(bad.message).toContain("@id");
    const specUri = "dtmi:com:example:badroute:m5;1";
    await client.createDigitalTwinModel(model(specUri));
    const badRoute = await ociError(
      noRetry.createDigitalTwinAdapter({
        createDigitalTwinAdapterDetails: {
          iotDomainId: emu.domain.id,
          digitalTwinModelSpecUri: specUri,
          inboundEnvelope: { referenceEndpoint: "iot/v1/telemetry" },
          inboundRoutes: [{ condition: "*", payloadMapping: { "$.nosuch": "$.x" } }],
        },
      }),
    );
    expect([badRoute.statusCode, badRoute.serviceCode]).toEqual([400, "InvalidParameter"]);
    expect(badRoute.message).toContain("nosuch");
    const missing = await ociError(noRetry.listDigitalTwinModels({ iotDomainId: "" }));
    expect(missing.statusCode).toBe(400);
  });
});

function iot_sortBy(v: string) {
  return v as iot.requests.ListDigitalTwinModelsRequest.SortBy;
}

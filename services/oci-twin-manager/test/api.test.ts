/**
 * OciTwinManagerService's edges against the OCI emulator and nats-server: bad input named by field, unknown twins and
 * OCIDs, data access without or with wrong credentials, an expired data token, device secrets, sources, paging.
 */
import { toJsonString } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { OciTwinManagerService, TwinDataSet, TwinSchema } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { expectCode, TEST_KEYS, testTransport, until } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { TWINS_BUCKET } from "../src/pipeline/store.js";
import {
  api,
  customAdapterTwin,
  DEVICE_SECRET,
  defaultAdapterTwin,
  managerForFile,
  specUri,
  startManager,
  unstructuredTwin,
} from "./harness.js";
import { M5_ROUTES, m5ModelDefault } from "./m5.js";

const fx = managerForFile();

const byKey = (key: string) => ({ ref: { case: "key" as const, value: key } });

/** The OCI resources created since `before`, by the emulator's state (nothing may be made for a refused request). */
async function resourceCount(): Promise<number> {
  const s = (await fx.world.emulator.state()) as unknown as Record<string, unknown>;
  const count = (x: unknown) => (Array.isArray(x) ? x.length : x && typeof x === "object" ? Object.keys(x).length : 0);
  return count(s["models"]) + count(s["adapters"]) + count(s["instances"]);
}

describe("bad input is refused before OCI is called, naming what is wrong", () => {
  it("an invalid DTDL model: not an Interface, and duplicate content names", async () => {
    const before = await resourceCount();
    const spec = { ...m5ModelDefault(), "@type": "Thing" };
    ((spec as Record<string, unknown>)["contents"] as unknown[]).push({ "@type": "Telemetry", name: "humidity", schema: "double" });
    const err = await expectCode(
      fx.client.createTwin({ twin: defaultAdapterTwin("bad-dtdl", specUri("bad-dtdl"), { model: { specUri: specUri("bad"), spec } }) }),
      Code.InvalidArgument,
    );
    expect(err).toContain("twin.model.spec.@type");
    expect(err).toContain('twin.model.spec.contents[5].name: "humidity" is also the name of contents[2]');
    expect(await resourceCount()).toBe(before);
  });

  it("an adapter route mapping a content the model does not have names the route and the content", async () => {
    const routes = structuredClone(M5_ROUTES);
    (routes[0]!["payloadMapping"] as Record<string, string>)["$.temperature"] = "$.temp";
    const uri = specUri("bad-route");
    const twin = customAdapterTwin("bad-route", uri);
    twin.adapter = { ...twin.adapter, inboundRoutes: routes };
    const err = await expectCode(fx.client.createTwin({ twin }), Code.InvalidArgument);
    expect(err).toContain('twin.adapter.inbound_routes[0].payloadMapping["$.temperature"]');
    expect(err).toContain('route 0 maps content "temperature"');
    await expectCode(fx.client.getTwin({ twin: byKey("bad-route") }), Code.NotFound);
  });

  it("keys, OCIDs, limits and missing fields", async () => {
    expect(await expectCode(fx.client.createTwin({ twin: unstructuredTwin("Not_A_Key") }), Code.InvalidArgument)).toContain("twin.key");
    expect(await expectCode(fx.client.createTwin({}), Code.InvalidArgument)).toContain("twin: is required");
    expect(
      await expectCode(fx.client.createTwin({ twin: unstructuredTwin("bad-domain", { iotDomainId: "my-domain" }) }), Code.InvalidArgument),
    ).toContain("twin.iot_domain_id");
    expect(await expectCode(fx.client.getTwin({}), Code.InvalidArgument)).toContain("twin: is required");
    expect(
      await expectCode(fx.client.getTwin({ twin: { ref: { case: "instanceId", value: "instance-1" } } }), Code.InvalidArgument),
    ).toContain("twin.instance_id");
    expect(await expectCode(fx.client.listTwins({ pageSize: 5000 }), Code.InvalidArgument)).toContain("page_size");
    expect(await expectCode(fx.client.listTwins({ pageToken: "???" }), Code.InvalidArgument)).toContain("page_token");
    expect(
      await expectCode(fx.client.queryTwinData({ twin: byKey("x"), dataSet: TwinDataSet.RAW, lastMinutes: 50_000 }), Code.InvalidArgument),
    ).toContain("last_minutes");
    expect(await expectCode(fx.client.queryTwinData({ twin: byKey("x") }), Code.InvalidArgument)).toContain("data_set");
    expect(
      await expectCode(fx.client.sendTwinData({ twin: byKey("x"), endpoint: "../admin", payload: { a: 1 } }), Code.InvalidArgument),
    ).toContain("endpoint");
    const big = { blob: "x".repeat(300 * 1024) };
    expect(await expectCode(fx.client.sendTwinData({ twin: byKey("x"), payload: big }), Code.InvalidArgument)).toContain("payload");
    expect(
      await expectCode(fx.client.setTwinDeviceSecret({ twin: byKey("x"), deviceSecret: "s".repeat(5000) }), Code.InvalidArgument),
    ).toContain("device_secret");
  });
});

describe("unknown twins and OCIDs", () => {
  it("an unknown key or instance OCID is not_found; an unknown model OCID is OCI's not_found", async () => {
    expect(await expectCode(fx.client.getTwin({ twin: byKey("nobody") }), Code.NotFound)).toContain('"nobody"');
    await expectCode(fx.client.deleteTwin({ twin: byKey("nobody") }), Code.NotFound);
    const unknown = `ocid1.iotdigitaltwininstance.oc1.eu-frankfurt-1.${"a".repeat(20)}`;
    expect(await expectCode(fx.client.getTwin({ twin: { ref: { case: "instanceId", value: unknown } } }), Code.NotFound)).toContain(
      unknown,
    );
    const model = `ocid1.iotdigitaltwinmodel.oc1.eu-frankfurt-1.${"b".repeat(20)}`;
    await expectCode(fx.client.getDigitalTwinModel({ id: model }), Code.NotFound);
    await expectCode(
      fx.client.listDigitalTwinInstances({ iotDomainId: `ocid1.iotdomain.oc1.eu-frankfurt-1.${"c".repeat(20)}` }),
      Code.NotFound,
    );
  });
});

describe("data", () => {
  it("QueryTwinData without OCI_DATA_* credentials is invalid_argument naming the settings", async () => {
    const s = await startManager(fx.world, {
      INSTANCE_ID: "no-data",
      OCI_DATA_CLIENT_ID: undefined,
      OCI_DATA_CLIENT_SECRET: undefined,
      OCI_DATA_USERNAME: undefined,
      OCI_DATA_PASSWORD: undefined,
    });
    try {
      const c = api(s.service.url);
      await c.createTwin({ twin: unstructuredTwin("no-data") });
      const err = await expectCode(c.queryTwinData({ twin: byKey("no-data"), dataSet: TwinDataSet.RAW }), Code.InvalidArgument);
      expect(err).toContain("OCI_DATA_CLIENT_ID");
      await c.deleteTwin({ twin: byKey("no-data") });
    } finally {
      await s.stop();
    }
  });

  it("a wrong OCI_DATA_CLIENT_SECRET is unauthenticated, naming the identity domain's refusal", async () => {
    const s = await startManager(fx.world, { INSTANCE_ID: "bad-data", OCI_DATA_CLIENT_SECRET: "not-the-secret" });
    try {
      const c = api(s.service.url);
      await c.createTwin({ twin: unstructuredTwin("bad-data") });
      const err = await expectCode(c.queryTwinData({ twin: byKey("bad-data"), dataSet: TwinDataSet.RAW }), Code.Unauthenticated);
      expect(err).toMatch(/token|identity|client/i);
      await c.deleteTwin({ twin: byKey("bad-data") });
    } finally {
      await s.stop();
    }
  });

  it("an expired data token (the emulator's clock moved past it) is renewed once: the query still answers", async () => {
    await fx.client.createTwin({ twin: unstructuredTwin("expiry", { deviceSecret: DEVICE_SECRET }) });
    await fx.client.sendTwinData({ twin: byKey("expiry"), payload: { n: 1 } });
    await until(
      async () => (await fx.client.queryTwinData({ twin: byKey("expiry"), dataSet: TwinDataSet.RAW, lastMinutes: 10 })).rows.length === 1,
    );
    // Two hours on: the token the service holds has expired for ORDS, and rows are an hour and more old.
    const requests = () => (fx.world.emulator.state() as unknown as { requests: Record<string, number> }).requests;
    const before = requests();
    fx.world.emulator.setClockOffset(2 * 3600_000);
    try {
      const r = await fx.client.queryTwinData({ twin: byKey("expiry"), dataSet: TwinDataSet.RAW, lastMinutes: 180 });
      expect(r.rows).toHaveLength(1);
      // ORDS refused the old token once, and a new one was asked for.
      const after = requests();
      expect((after["rawData 401"] ?? 0) - (before["rawData 401"] ?? 0)).toBe(1);
      expect((after["token 200"] ?? 0) - (before["token 200"] ?? 0)).toBe(1);
    } finally {
      fx.world.emulator.setClockOffset(0);
    }
    await fx.client.deleteTwin({ twin: byKey("expiry") });
  });

  it("SendTwinData needs the twin's device secret (failed_precondition), and a wrong one is OCI's unauthenticated", async () => {
    await fx.client.createTwin({ twin: unstructuredTwin("secretless") });
    const err = await expectCode(fx.client.sendTwinData({ twin: byKey("secretless"), payload: { a: 1 } }), Code.FailedPrecondition);
    expect(err).toContain("SetTwinDeviceSecret");
    const set = await fx.client.setTwinDeviceSecret({ twin: byKey("secretless"), deviceSecret: "wrong" });
    expect(set.twin?.deviceSecretSet).toBe(true);
    await expectCode(fx.client.sendTwinData({ twin: byKey("secretless"), payload: { a: 1 } }), Code.Unauthenticated);
    await fx.client.setTwinDeviceSecret({ twin: byKey("secretless"), deviceSecret: DEVICE_SECRET });
    await fx.client.sendTwinData({ twin: byKey("secretless"), payload: { a: 1 } });
    const cleared = await fx.client.setTwinDeviceSecret({ twin: byKey("secretless"), deviceSecret: "" });
    expect(cleared.twin?.deviceSecretSet).toBe(false);
    await fx.client.deleteTwin({ twin: byKey("secretless") });
  });

  it("the device secret is write-only: never returned, not in KV in the clear", async () => {
    await fx.client.createTwin({ twin: unstructuredTwin("sealed", { deviceSecret: "a-very-particular-secret" }) });
    const jsm = fx.svc.bus.jsm();
    const info = await jsm.streams.info(`KV_${TWINS_BUCKET}`);
    let text = "";
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      try {
        text += Buffer.from((await jsm.streams.getMessage(`KV_${TWINS_BUCKET}`, { seq })).data).toString("utf8");
      } catch {
        // deleted
      }
    }
    expect(text).toContain('"sealed"');
    expect(text).not.toContain("a-very-particular-secret");
    const shown = toJsonString(TwinSchema, (await fx.client.getTwin({ twin: byKey("sealed") })).twin!);
    expect(shown).not.toContain("a-very-particular-secret");
    await fx.client.deleteTwin({ twin: byKey("sealed") });
  });
});

describe("sources, lists and roles", () => {
  it("SetTwinSource stores the source on the twin; all false stops it", async () => {
    await fx.client.createTwin({ twin: unstructuredTwin("sourced") });
    const on = await fx.client.setTwinSource({ twin: byKey("sourced"), source: { historized: true, raw: true, pollIntervalMs: 1000 } });
    expect(on.twin?.source).toMatchObject({ historized: true, raw: true, rejected: false, pollIntervalMs: 1000 });
    expect((await fx.svc.store.get("sourced"))?.source).toEqual({ historized: true, raw: true, rejected: false, pollIntervalMs: 1000 });
    await expectCode(fx.client.setTwinSource({ twin: byKey("sourced"), source: { raw: true, pollIntervalMs: 50 } }), Code.InvalidArgument);
    const off = await fx.client.setTwinSource({ twin: byKey("sourced"), source: {} });
    expect(off.twin?.source).toBeUndefined();
    expect((await fx.svc.store.get("sourced"))?.source).toBeUndefined();
    await fx.client.deleteTwin({ twin: byKey("sourced") });
  });

  it("ListTwins pages by key", async () => {
    for (const k of ["page-a", "page-b", "page-c"]) await fx.client.createTwin({ twin: unstructuredTwin(k) });
    const first = await fx.client.listTwins({ pageSize: 2 });
    expect(first.twins.map((t) => t.key)).toEqual(["page-a", "page-b"]);
    const second = await fx.client.listTwins({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.twins.map((t) => t.key)).toEqual(["page-c"]);
    expect(second.nextPageToken).toBe("");
    for (const k of ["page-a", "page-b", "page-c"]) await fx.client.deleteTwin({ twin: byKey(k) });
  });

  it("OCI_MAX_TWINS bounds the twins (resource_exhausted)", async () => {
    // The twins other tests left share the bucket: the bound is one more than those.
    const existing = (await fx.client.listTwins({ pageSize: 1000 })).twins.length;
    const s = await startManager(fx.world, { INSTANCE_ID: "max", OCI_MAX_TWINS: String(existing + 1) });
    try {
      const c = api(s.service.url);
      await c.createTwin({ twin: unstructuredTwin("max-a") });
      await expectCode(c.createTwin({ twin: unstructuredTwin("max-b") }), Code.ResourceExhausted);
      await c.deleteTwin({ twin: byKey("max-a") });
    } finally {
      await s.stop();
    }
  });

  it("a reader may read but not create, delete or post", async () => {
    const reader = createClient(OciTwinManagerService, testTransport(fx.svc.service.url, { credential: TEST_KEYS["platform:read"] }));
    await reader.listTwins({});
    await expectCode(reader.createTwin({ twin: unstructuredTwin("by-reader") }), Code.PermissionDenied);
    await expectCode(reader.deleteTwin({ twin: byKey("by-reader") }), Code.PermissionDenied);
    await expectCode(reader.sendTwinData({ twin: byKey("by-reader"), payload: { a: 1 } }), Code.PermissionDenied);
  });
});

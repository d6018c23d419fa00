/**
 * manage-dt's flows through the service's API against the OCI emulator and nats-server: create (unstructured, default
 * adapter, custom adapter), create again, data posted as the device, query of the last minutes, delete; twins with the
 * same display name; a create interrupted between OCI and KV; the declared file across a restart.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { consumerBacklog, routeBucket, routeConsumerName } from "@meridian/bus";
import { LifecycleState, TwinDataSet, TwinKind } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { expectCode, until } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import {
  activeIds,
  api,
  customAdapterTwin,
  DEVICE_SECRET,
  defaultAdapterTwin,
  managerForFile,
  specUri,
  startManager,
  unstructuredTwin,
} from "./harness.js";
import { M5_PAYLOAD, m5ModelDefault } from "./m5.js";

const fx = managerForFile();

/** Rows of one data set of the twin, of the last minutes, once there are at least `min`. */
async function rows(key: string, dataSet: TwinDataSet, min: number, extra: { includeContent?: boolean; lastMinutes?: number } = {}) {
  let got: Array<Record<string, unknown>> = [];
  await until(async () => {
    const r = await fx.client.queryTwinData({ twin: { ref: { case: "key", value: key } }, dataSet, lastMinutes: 10, ...extra });
    got = r.rows as Array<Record<string, unknown>>;
    return got.length >= min;
  });
  return got;
}

const byKey = (key: string) => ({ ref: { case: "key" as const, value: key } });

describe("manage-dt create / query / delete", () => {
  it("unstructured: an instance alone; again → the same instance, created=false; raw data with content; delete leaves nothing ACTIVE", async () => {
    const spec = unstructuredTwin("plain", { deviceSecret: DEVICE_SECRET });
    const first = await fx.client.createTwin({ twin: spec });
    expect(first.created).toBe(true);
    const t = first.twin!;
    expect(t.kind).toBe(TwinKind.UNSTRUCTURED);
    expect(t.instance?.lifecycleState).toBe(LifecycleState.ACTIVE);
    expect(t.instance?.description).toBe("plain-01 - Unstructured Telemetry");
    expect(t.instance?.externalKey).toBe("plain-device");
    expect(t.adapter).toBeUndefined();
    expect(t.model).toBeUndefined();
    expect(t.deviceSecretSet).toBe(true);

    const again = await fx.client.createTwin({ twin: spec });
    expect(again.created).toBe(false);
    expect(again.twin?.instance?.id).toBe(t.instance?.id);

    await fx.client.sendTwinData({ twin: byKey("plain"), payload: { hello: "world", n: 1 } });
    const raw = await rows("plain", TwinDataSet.RAW, 1, { includeContent: true });
    expect(raw[0]?.["digital_twin_instance_id"]).toBe(t.instance?.id);
    expect(raw[0]?.["endpoint"]).toBe("iot/v1/telemetry");
    expect(raw[0]?.["content"]).toEqual({ hello: "world", n: 1 });
    // An instance without a model has no content (OCI's 404).
    await expectCode(fx.client.getTwinContent({ twin: byKey("plain") }), Code.NotFound);

    const del = await fx.client.deleteTwin({ twin: byKey("plain") });
    expect(del.deletedIds).toEqual([t.instance?.id]);
    expect((await activeIds(fx.client)).instances).not.toContain(t.instance?.id);
    await expectCode(fx.client.getTwin({ twin: byKey("plain") }), Code.NotFound);
  });

  it("default adapter: model (display name = spec URI), adapter, instance; content and historized rows after a device post; delete in order", async () => {
    const uri = specUri("m5-dflt");
    const spec = defaultAdapterTwin("m5-dflt", uri, { deviceSecret: DEVICE_SECRET });
    const { twin: t, created } = await fx.client.createTwin({ twin: spec });
    expect(created).toBe(true);
    expect(t?.kind).toBe(TwinKind.DEFAULT_ADAPTER);
    expect(t?.model?.specUri).toBe(uri);
    expect(t?.model?.displayName).toBe(uri);
    expect(t?.adapter?.digitalTwinModelId).toBe(t?.model?.id);
    expect(t?.adapter?.displayName).toBe("m5-dflt-adapter");
    expect(t?.adapter?.description).toBe(`Default Adapter for ${uri}`);
    expect(t?.instance?.digitalTwinAdapterId).toBe(t?.adapter?.id);
    expect(t?.instance?.description).toBe("m5-dflt-01 - Structured Telemetry with default Adapter");

    const model = await fx.client.getDigitalTwinModel({ id: t!.model!.id });
    expect(model.model?.spec?.["@id"]).toBe(uri);

    const again = await fx.client.createTwin({ twin: spec });
    expect(again.created).toBe(false);
    expect([again.twin?.instance?.id, again.twin?.adapter?.id, again.twin?.model?.id]).toEqual([
      t?.instance?.id,
      t?.adapter?.id,
      t?.model?.id,
    ]);

    await fx.client.sendTwinData({ twin: byKey("m5-dflt"), payload: M5_PAYLOAD });
    let content: Record<string, unknown> = {};
    await until(async () => {
      content = ((await fx.client.getTwinContent({ twin: byKey("m5-dflt") })).content ?? {}) as Record<string, unknown>;
      return content["humidity"] !== undefined;
    });
    expect(content).toMatchObject({ humidity: 56.1, pressure: 1012.2, sht_temperature: 23.8, qmp_temperature: 24.4 });
    // Four historized contents; count is not historized.
    const hist = await rows("m5-dflt", TwinDataSet.HISTORIZED, 4);
    expect(hist.map((r) => r["content_path"]).sort()).toEqual(["humidity", "pressure", "qmp_temperature", "sht_temperature"]);
    expect(hist.every((r) => r["digital_twin_instance_id"] === t?.instance?.id)).toBe(true);
    const only = await fx.client.queryTwinData({
      twin: byKey("m5-dflt"),
      dataSet: TwinDataSet.HISTORIZED,
      lastMinutes: 10,
      contentPaths: ["humidity"],
    });
    expect(only.rows.map((r) => r["content_path"])).toEqual(["humidity"]);

    // A payload the default adapter maps to nothing is rejected.
    await fx.client.sendTwinData({ twin: byKey("m5-dflt"), payload: { colour: "red" } });
    const rejected = await rows("m5-dflt", TwinDataSet.REJECTED, 1);
    expect(rejected[0]?.["reason_message"]).toEqual(expect.any(String));

    const del = await fx.client.deleteTwin({ twin: byKey("m5-dflt") });
    expect(del.deletedIds).toEqual([t?.instance?.id, t?.adapter?.id, t?.model?.id]);
    expect(del.kept).toEqual({});
    const active = await activeIds(fx.client);
    expect(active.instances).not.toContain(t?.instance?.id);
    expect(active.adapters).not.toContain(t?.adapter?.id);
    expect(active.models).not.toContain(t?.model?.id);
  });

  it("custom adapter: the envelope and routes as given; a device post is normalised by route 1", async () => {
    const uri = specUri("m5-cstm");
    const { twin: t } = await fx.client.createTwin({ twin: customAdapterTwin("m5-cstm", uri, { deviceSecret: DEVICE_SECRET }) });
    expect(t?.kind).toBe(TwinKind.CUSTOM_ADAPTER);
    expect(t?.adapter?.inboundRoutes.map((r) => r["description"])).toEqual(["Environment data", "Default condition"]);
    expect(t?.adapter?.inboundEnvelope?.["referenceEndpoint"]).toBe("iot/v1/telemetry");
    expect(t?.instance?.description).toBe("m5-cstm-01 - Structured Telemetry with custom Adapter");

    await fx.client.sendTwinData({ twin: byKey("m5-cstm"), payload: { ...M5_PAYLOAD, time: Date.now() * 1000 } });
    const hist = await rows("m5-cstm", TwinDataSet.HISTORIZED, 4);
    expect(hist.map((r) => r["content_path"]).sort()).toEqual(["humidity", "pressure", "qmp_temperature", "sht_temperature"]);
    const raw = await rows("m5-cstm", TwinDataSet.RAW, 1, { includeContent: true });
    expect(raw[0]?.["content"]).toMatchObject(M5_PAYLOAD);

    const del = await fx.client.deleteTwin({ twin: byKey("m5-cstm") });
    expect(del.deletedIds).toEqual([t?.instance?.id, t?.adapter?.id, t?.model?.id]);
  });
});

describe("time of the data", () => {
  it("last_minutes filters by the time observed; snapshot rows are the latest values however old", async () => {
    const uri = specUri("old-data");
    await fx.client.createTwin({ twin: customAdapterTwin("old-data", uri, { deviceSecret: DEVICE_SECRET }) });
    // Observed two hours ago (the custom envelope reads `time`, epoch microseconds).
    await fx.client.sendTwinData({ twin: byKey("old-data"), payload: { ...M5_PAYLOAD, time: (Date.now() - 2 * 3600_000) * 1000 } });
    const older = await rows("old-data", TwinDataSet.HISTORIZED, 4, { lastMinutes: 180 });
    expect(older).toHaveLength(4);
    const recent = await fx.client.queryTwinData({ twin: byKey("old-data"), dataSet: TwinDataSet.HISTORIZED });
    expect(recent.rows).toEqual([]);
    const snapshot = await fx.client.queryTwinData({ twin: byKey("old-data"), dataSet: TwinDataSet.SNAPSHOT });
    expect(snapshot.rows.map((r) => r["content_path"])).toEqual(expect.arrayContaining(["humidity", "pressure"]));
    await fx.client.deleteTwin({ twin: byKey("old-data") });
  });
});

describe("identity by key, never by display name", () => {
  it("two twins with the same display name are never confused: get, data and delete each reach their own", async () => {
    const a = await fx.client.createTwin({ twin: unstructuredTwin("same-a", { displayName: "same name", deviceSecret: DEVICE_SECRET }) });
    const b = await fx.client.createTwin({ twin: unstructuredTwin("same-b", { displayName: "same name", deviceSecret: DEVICE_SECRET }) });
    expect(a.twin?.instance?.id).not.toBe(b.twin?.instance?.id);
    expect((await fx.client.getTwin({ twin: byKey("same-b") })).twin?.instance?.id).toBe(b.twin?.instance?.id);
    expect((await fx.client.getTwin({ twin: { ref: { case: "instanceId", value: a.twin!.instance!.id } } })).twin?.key).toBe("same-a");

    await fx.client.sendTwinData({ twin: byKey("same-b"), payload: { who: "b" } });
    const raw = await rows("same-b", TwinDataSet.RAW, 1, { includeContent: true });
    expect(raw.every((r) => r["digital_twin_instance_id"] === b.twin?.instance?.id)).toBe(true);
    const ofA = await fx.client.queryTwinData({ twin: byKey("same-a"), dataSet: TwinDataSet.RAW, lastMinutes: 10 });
    expect(ofA.rows).toEqual([]);

    await fx.client.deleteTwin({ twin: byKey("same-a") });
    const active = await activeIds(fx.client);
    expect(active.instances).not.toContain(a.twin?.instance?.id);
    expect(active.instances).toContain(b.twin?.instance?.id);
    expect((await fx.client.getTwin({ twin: byKey("same-b") })).twin?.instance?.lifecycleState).toBe(LifecycleState.ACTIVE);
    await fx.client.deleteTwin({ twin: byKey("same-b") });
  });

  it("a create interrupted after OCI made the resources (KV record lost) gives the same resources again", async () => {
    const uri = specUri("crash");
    const spec = defaultAdapterTwin("crash", uri);
    const first = (await fx.client.createTwin({ twin: spec })).twin!;
    await fx.svc.store.delete("crash");
    const second = await fx.client.createTwin({ twin: spec });
    expect(second.created).toBe(true);
    expect([second.twin?.instance?.id, second.twin?.adapter?.id, second.twin?.model?.id]).toEqual([
      first.instance?.id,
      first.adapter?.id,
      first.model?.id,
    ]);
    const active = await activeIds(fx.client);
    expect(active.models.filter((id) => id === first.model?.id)).toHaveLength(1);
    await fx.client.deleteTwin({ twin: byKey("crash") });
  });

  it("a twin deleted and created again under the same key gets new resources (not the deleted ones)", async () => {
    const spec = unstructuredTwin("again");
    const first = (await fx.client.createTwin({ twin: spec })).twin!;
    await fx.client.deleteTwin({ twin: byKey("again") });
    const second = (await fx.client.createTwin({ twin: spec })).twin!;
    expect(second.instance?.id).not.toBe(first.instance?.id);
    expect(second.instance?.lifecycleState).toBe(LifecycleState.ACTIVE);
    await fx.client.deleteTwin({ twin: byKey("again") });
  });

  it("a key reused with another description is already_exists naming what differs", async () => {
    await fx.client.createTwin({ twin: unstructuredTwin("taken") });
    const err = await expectCode(
      fx.client.createTwin({ twin: unstructuredTwin("taken", { displayName: "another name" }) }),
      Code.AlreadyExists,
    );
    expect(err).toContain("display_name");
    await fx.client.deleteTwin({ twin: byKey("taken") });
  });

  it("a twin whose instance OCI no longer has is shown with error and lifecycle DELETED", async () => {
    const { twin } = await fx.client.createTwin({ twin: unstructuredTwin("gone") });
    // Deleted behind Meridian's back, through the control plane.
    await fx.svc.client.deleteInstance(twin!.instance!.id);
    const shown = (await fx.client.getTwin({ twin: byKey("gone") })).twin!;
    expect(shown.error).toContain(twin!.instance!.id);
    expect(shown.instance?.lifecycleState).toBe(LifecycleState.DELETED);
    await fx.client.deleteTwin({ twin: byKey("gone") });
  });
});

describe("models shared or found in the domain", () => {
  it("a model Meridian did not create is reused when its spec is equal, and kept at delete", async () => {
    const uri = specUri("foreign");
    const raw = fx.svc.client;
    const foreign = await raw.createModel({ iotDomainId: fx.world.emulator.domain.id, spec: { ...m5ModelDefault(), "@id": uri } });
    const { twin } = await fx.client.createTwin({ twin: defaultAdapterTwin("uses-foreign", uri) });
    expect(twin?.model?.id).toBe(foreign.id);
    const del = await fx.client.deleteTwin({ twin: byKey("uses-foreign") });
    expect(del.deletedIds).toEqual([twin?.instance?.id, twin?.adapter?.id]);
    expect(del.kept[foreign.id]).toContain("not created by Meridian");
    expect((await activeIds(fx.client)).models).toContain(foreign.id);
  });

  it("a model with the same spec URI and another spec is already_exists naming the model", async () => {
    const uri = specUri("clash");
    const raw = fx.svc.client;
    const spec = m5ModelDefault();
    (spec["contents"] as unknown[]).pop();
    const other = await raw.createModel({ iotDomainId: fx.world.emulator.domain.id, spec: { ...spec, "@id": uri } });
    const err = await expectCode(fx.client.createTwin({ twin: defaultAdapterTwin("clash", uri) }), Code.AlreadyExists);
    expect(err).toContain(other.id);
    await expectCode(fx.client.getTwin({ twin: byKey("clash") }), Code.NotFound);
  });

  it("a model two twins use is kept while the other still uses it (reported in kept), deleted with the last", async () => {
    const uri = specUri("shared");
    const a = (await fx.client.createTwin({ twin: defaultAdapterTwin("shared-a", uri) })).twin!;
    const b = (await fx.client.createTwin({ twin: defaultAdapterTwin("shared-b", uri) })).twin!;
    expect(b.model?.id).toBe(a.model?.id);
    expect(b.adapter?.id).not.toBe(a.adapter?.id);
    const delA = await fx.client.deleteTwin({ twin: byKey("shared-a") });
    expect(delA.deletedIds).toEqual([a.instance?.id, a.adapter?.id]);
    expect(delA.kept[a.model!.id]).toContain("shared-b");
    const delB = await fx.client.deleteTwin({ twin: byKey("shared-b") });
    expect(delB.deletedIds).toEqual([b.instance?.id, b.adapter?.id, b.model?.id]);
  });
});

describe("OCI_TWINS_FILE", () => {
  it("is reconciled at start, and again after a restart without duplicates", async () => {
    const uri = specUri("declared");
    const file = join(fx.world.dir, "twins.json");
    const twins = [
      defaultAdapterTwin("declared-m5", uri),
      { key: "declared-plain", display_name: "declared-plain-01", external_key: "declared-plain-device", source: { raw: true } },
    ];
    writeFileSync(file, JSON.stringify({ twins }));
    const before = await activeIds(fx.client);
    let ids: string[] = [];
    for (let run = 0; run < 2; run++) {
      const s = await startManager(fx.world, { OCI_TWINS_FILE: file, INSTANCE_ID: `declared-${run}` });
      try {
        const c = api(s.service.url);
        await until(
          async () =>
            (await c.listTwins({})).twins.some((t) => t.key === "declared-m5") &&
            (await c.listTwins({})).twins.some((t) => t.key === "declared-plain"),
        );
        const m5 = (await c.getTwin({ twin: byKey("declared-m5") })).twin!;
        const plain = (await c.getTwin({ twin: byKey("declared-plain") })).twin!;
        expect(plain.source?.raw).toBe(true);
        const now = [m5.instance!.id, m5.adapter!.id, m5.model!.id, plain.instance!.id];
        if (run === 0) ids = now;
        else expect(now).toEqual(ids);
      } finally {
        await s.stop();
      }
    }
    const after = await activeIds(fx.client);
    expect(after.instances.length - before.instances.length).toBe(2);
    expect(after.adapters.length - before.adapters.length).toBe(1);
    expect(after.models.length - before.models.length).toBe(1);
    await fx.client.deleteTwin({ twin: byKey("declared-m5") });
    await fx.client.deleteTwin({ twin: byKey("declared-plain") });
  });
});

describe("the service's pipelines", () => {
  it("a twin's source puts its historized rows on the bus; a route into OCI posts the bus's telemetry as the twin's device", async () => {
    const uri = specUri("piped");
    const created = await fx.client.createTwin({
      twin: defaultAdapterTwin("piped", uri, { deviceSecret: DEVICE_SECRET, source: { historized: true, pollIntervalMs: 200 } }),
    });
    const t = created.twin!;
    const ac = new AbortController();
    const events: TelemetryEvent[] = [];
    void (async () => {
      for await (const e of fx.svc.bus.subscribe(
        { platform: Platform.OCI_IOT, connection: fx.world.emulator.domain.id, device: t.instance!.externalKey },
        { signal: ac.signal },
      ))
        events.push(e);
    })().catch(() => {});
    try {
      await fx.client.sendTwinData({ twin: byKey("piped"), payload: M5_PAYLOAD });
      await until(() => events.length >= 1, { timeoutMs: 15_000, what: "the twin's observation on the bus" });
      const names = events[0]!.points.map((p) => p.name).sort();
      expect(names).toEqual(["humidity", "pressure", "qmp_temperature", "sht_temperature"]);
    } finally {
      ac.abort();
    }

    // Telemetry of device "piped" (the twin key, by the route's default template) into the domain's twin.
    const routeId = "into-oci";
    await routeBucket(fx.svc.bus).put(
      routeId,
      create(RouteSchema, {
        id: routeId,
        source: { platform: Platform.API, connection: "plant" },
        sink: { platform: Platform.OCI_IOT, target: "default" },
      }),
    );
    await until(async () => (await consumerBacklog(fx.svc.bus, routeConsumerName(routeId, Platform.OCI_IOT))) !== undefined, {
      timeoutMs: 10_000,
      what: "the route's consumer",
    });
    await fx.svc.bus.publishEvents([
      create(TelemetryEventSchema, {
        id: "route-event-1",
        source: { platform: Platform.API, connection: "plant", device: "piped" },
        observedTime: timestampFromMs(Date.now()),
        points: [{ name: "humidity", value: { case: "doubleValue", value: 12.5 } }],
      }),
    ]);
    await until(async () => (await fx.client.getTwinContent({ twin: byKey("piped") })).content?.["humidity"] === 12.5, {
      timeoutMs: 15_000,
      what: "the routed value in the twin's content",
    });
    await routeBucket(fx.svc.bus).delete(routeId);
    await fx.client.deleteTwin({ twin: byKey("piped") });
  });
});

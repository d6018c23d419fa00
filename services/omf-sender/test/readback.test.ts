import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog } from "@meridian/bus";
import { DefinitionKind, EndpointKind, OmfAction, OmfMessageType } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { SEED_CONTAINERS, SEED_POINTS, SEED_TYPES, seedData } from "@meridian/fixtures/omf-seed";
import { type Gateway, gatewayConfig, startGateway } from "@meridian/gateway";
import { captureLogger, codeOf, json, type RecordingServer, startForTest, startRecordingServer, testTransport } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import { apiClient, getJson, logger, type NatsServerHandle, startEmulator, startNatsServer, startSender, until } from "./harness.js";

/**
 * Read-back (ListPoints, ReadValues, ListTypes, ListContainers), what omf-sender created and its clean-up
 * (ListDefinitions, DeleteDefinitions), the OMF version probe and the endpoint settings of issue 13, through the API
 * against the OMF emulator.
 */
const LAB = { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1", OMF_LINGER_MS: "50", OMF_ACK_WAIT_MS: "3000" };
const EDS_BASE = "/api/v1/tenants/default/namespaces/default";

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let api: ReturnType<typeof apiClient>;
const logs = captureLogger({ service: "omf-sender" });

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  sender = await startSender(nats, LAB, {}, logs.logger);
  api = apiClient(sender);
});
afterAll(async () => {
  await sender?.stop();
  await emu?.stop();
  await nats?.stop();
});

const send = (endpointId: string, messageType: OmfMessageType, body: unknown, action = OmfAction.CREATE) =>
  api.sendOmf({ messageType, action, body: JSON.stringify(body), endpointIds: [endpointId] });

/** program.py's sequence: types, containers, data; every result ok. */
async function sendSeed(endpointId: string, iteration = 1) {
  const data = seedData(iteration);
  for (const [type, body] of [
    [OmfMessageType.TYPE, SEED_TYPES],
    [OmfMessageType.CONTAINER, SEED_CONTAINERS],
    [OmfMessageType.DATA, data],
  ] as const) {
    const r = await send(endpointId, type, body);
    expect(r.results[0], JSON.stringify(r.results[0])).toMatchObject({ ok: true });
  }
  return data;
}

describe("PI Web API read-back (data server by name → points → values)", () => {
  beforeAll(async () => {
    await api.createEndpoint({
      endpoint: {
        id: "pi",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: "meridian",
        dataServerName: "MERIDIAN-PI",
        omfVersion: "1.1",
      },
    });
  });

  it("ListPoints finds the seed's points by name filter, and ReadValues reads the last value sent to each (test.py)", async () => {
    const data = await sendSeed("pi");
    const all = await api.listPoints({ endpointId: "pi", nameFilter: "*Container*" });
    expect(all.points.map((p) => p.name).sort()).toEqual([...SEED_POINTS].sort());
    const third = await api.listPoints({ endpointId: "pi", nameFilter: "ThirdContainer*" });
    expect(third.points.map((p) => p.name).sort()).toEqual(SEED_POINTS.filter((n) => n.startsWith("ThirdContainer")).sort());
    const first = await api.readValues({ endpointId: "pi", point: "FirstContainer", last: true });
    expect(first.noData).toBe(false);
    expect(JSON.parse(first.values[0]!.valueJson)).toBe((data[0]!.values[0] as { IntegerProperty: number }).IntegerProperty);
    const n1 = await api.readValues({ endpointId: "pi", point: "ThirdContainer.NumberProperty1", last: true });
    expect(JSON.parse(n1.values[0]!.valueJson)).toBeCloseTo((data[2]!.values[0] as { NumberProperty1: number }).NumberProperty1, 6);
  });

  it("ReadValues in a window returns what was recorded there, oldest first, and stops at max_count", async () => {
    const base = Date.UTC(2026, 0, 1, 0, 0, 0);
    const values = Array.from({ length: 5 }, (_, i) => ({ Timestamp: new Date(base + i * 1000).toISOString(), IntegerProperty: i }));
    expect((await send("pi", OmfMessageType.DATA, [{ containerid: "SecondContainer", values }])).results[0]?.ok).toBe(true);
    const window = {
      endpointId: "pi",
      point: "SecondContainer",
      startTime: timestampFromDate(new Date(base + 1000)),
      endTime: timestampFromDate(new Date(base + 3000)),
    };
    const r = await api.readValues(window);
    expect(r.values.map((v) => JSON.parse(v.valueJson))).toEqual([1, 2, 3]);
    expect(r.truncated).toBe(false);
    const capped = await api.readValues({ ...window, maxCount: 2 });
    expect(capped.values.map((v) => JSON.parse(v.valueJson))).toEqual([1, 2]);
    expect(capped.truncated).toBe(true);
  });

  it("a point created and never written reads as no_data (PI's `Pt Created`), an unknown one is not_found", async () => {
    await send("pi", OmfMessageType.CONTAINER, [{ id: "EmptyContainer", typeid: "FirstDynamicType" }]);
    const empty = await api.readValues({ endpointId: "pi", point: "EmptyContainer", last: true });
    expect(empty).toMatchObject({ noData: true, values: [] });
    const missing = await codeOf(api.readValues({ endpointId: "pi", point: "NoSuchPoint", last: true }));
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.message).toContain("NoSuchPoint");
  });

  it("a data server name PI does not know is the endpoint's answer, not_found, naming it", async () => {
    await api.createEndpoint({
      endpoint: {
        id: "pi-other",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: "meridian",
        dataServerName: "NOT-THERE",
        omfVersion: "1.2",
      },
    });
    const f = await codeOf(api.listPoints({ endpointId: "pi-other" }));
    expect(f.code).toBe(Code.NotFound);
    expect(f.message).toContain("NOT-THERE");
  });

  it("ListTypes / ListContainers on PI are failed_precondition pointing at ListPoints and ListDefinitions", async () => {
    for (const call of [api.listTypes({ endpointId: "pi" }), api.listContainers({ endpointId: "pi" })]) {
      const f = await codeOf(call);
      expect(f.code).toBe(Code.FailedPrecondition);
      expect(f.message).toContain("ListDefinitions");
    }
  });

  it("SendOmf reports a 409 to a create as already_exists, ok (as the seed takes it); other endpoints' results are unchanged", async () => {
    const changed = { ...SEED_TYPES[0], properties: { ...SEED_TYPES[0].properties, Extra: { type: "integer" } } };
    const r = await send("pi", OmfMessageType.TYPE, [changed]);
    expect(r.results[0]).toMatchObject({ ok: true, alreadyExists: true, httpStatus: 409 });
    const again = await send("pi", OmfMessageType.TYPE, [SEED_TYPES[0]]);
    expect(again.results[0]).toMatchObject({ ok: true, alreadyExists: false });
  });
});

describe("Edge Data Store: read-back and the OMF version asked of the endpoint", () => {
  it("EDS 2020 (OMF 1.0/1.1 only) works with no version set: omf-sender asks, speaks 1.1, and says so in the status", async () => {
    emu.setSettings({ edsRelease: "2020" });
    try {
      await api.createEndpoint({ endpoint: { id: "eds-2020", kind: EndpointKind.EDS, url: emu.url } });
      const data = await sendSeed("eds-2020");
      const status = (await api.getEndpointStatus({ id: "eds-2020" })).status!;
      expect(status).toMatchObject({ omfVersion: "1.1", omfVersionSource: "probed" });
      const last = await api.readValues({ endpointId: "eds-2020", point: "FirstContainer", last: true });
      expect(JSON.parse(last.values[0]!.valueJson)).toMatchObject({
        IntegerProperty: (data[0]!.values[0] as { IntegerProperty: number }).IntegerProperty,
      });
    } finally {
      emu.setSettings({ edsRelease: "2023" });
    }
  });

  it("EDS 2023 without a version: 1.2", async () => {
    await api.createEndpoint({ endpoint: { id: "eds", kind: EndpointKind.EDS, url: emu.url } });
    await send("eds", OmfMessageType.TYPE, SEED_TYPES);
    expect((await api.getEndpointStatus({ id: "eds" })).status).toMatchObject({ omfVersion: "1.2", omfVersionSource: "probed" });
  });

  it("ListTypes, ListContainers and ListPoints read the SDS types and streams, filtered and paged", async () => {
    await sendSeed("eds");
    const types = await api.listTypes({ endpointId: "eds", idFilter: "*DynamicType" });
    expect(types.types.map((t) => t.id).sort()).toEqual(SEED_TYPES.map((t) => t.id).sort());
    expect(JSON.parse(types.types[0]!.json)).toHaveProperty("Properties");
    const containers = await api.listContainers({ endpointId: "eds", idFilter: "*Container" });
    expect(containers.containers.map((c) => [c.id, c.typeId]).sort()).toEqual(SEED_CONTAINERS.map((c) => [c.id, c.typeid]).sort());
    const page1 = await api.listPoints({ endpointId: "eds", nameFilter: "*Container", pageSize: 3 });
    expect(page1.points).toHaveLength(3);
    expect(page1.nextPageToken).not.toBe("");
    const page2 = await api.listPoints({ endpointId: "eds", nameFilter: "*Container", pageSize: 3, pageToken: page1.nextPageToken });
    expect([...page1.points, ...page2.points].map((p) => p.name).sort()).toEqual(SEED_CONTAINERS.map((c) => c.id).sort());
  });

  it("ReadValues: the last event carries every value sent (test.py's comparison), and a window its events with their index", async () => {
    const base = Date.UTC(2026, 1, 1);
    const values = Array.from({ length: 4 }, (_, i) => ({ Timestamp: new Date(base + i * 1000).toISOString(), IntegerProperty: 10 + i }));
    await send("eds", OmfMessageType.DATA, [{ containerid: "SecondContainer", values }]);
    const r = await api.readValues({
      endpointId: "eds",
      point: "SecondContainer",
      startTime: timestampFromDate(new Date(base)),
      endTime: timestampFromDate(new Date(base + 2000)),
    });
    expect(r.values.map((v) => JSON.parse(v.valueJson).IntegerProperty)).toEqual([10, 11, 12]);
    expect(Date.parse(r.values[0]!.timestamp)).toBe(base);
    const data = await sendSeed("eds", 3);
    const third = await api.readValues({ endpointId: "eds", point: "ThirdContainer", last: true });
    const sent = data[2]!.values[0] as Record<string, unknown>;
    const got = JSON.parse(third.values[0]!.valueJson) as Record<string, unknown>;
    for (const k of ["NumberProperty1", "NumberProperty2", "StringEnum"]) expect(got[k], k).toEqual(sent[k]);
    expect((await codeOf(api.readValues({ endpointId: "eds", point: "NoSuchStream", last: true }))).code).toBe(Code.NotFound);
  });
});

describe("limits on every input", () => {
  it("bad paging, filters, windows and ids are invalid_argument naming the field", async () => {
    const cases: Array<[Promise<unknown>, string]> = [
      [api.listPoints({ endpointId: "" }), "endpoint_id"],
      [api.listPoints({ endpointId: "eds", pageSize: 1001 }), "page_size"],
      [api.listPoints({ endpointId: "eds", pageToken: "x" }), "page_token"],
      [api.listPoints({ endpointId: "eds", nameFilter: "a".repeat(257) }), "name_filter"],
      [api.listTypes({ endpointId: "eds", idFilter: "a\u0000" }), "id_filter"],
      [api.listContainers({ endpointId: "eds", pageSize: -1 }), "page_size"],
      [api.readValues({ endpointId: "eds" }), "point"],
      [api.readValues({ endpointId: "eds", point: "p".repeat(1001) }), "point"],
      [api.readValues({ endpointId: "eds", point: "p", maxCount: 10_001 }), "max_count"],
      [api.readValues({ endpointId: "eds", point: "p", last: true, startTime: timestampFromDate(new Date()) }), "last"],
      [
        api.readValues({
          endpointId: "eds",
          point: "p",
          startTime: timestampFromDate(new Date(2000)),
          endTime: timestampFromDate(new Date(1000)),
        }),
        "end_time",
      ],
      [api.listDefinitions({ endpointId: "eds", routeId: "Not A Route" }), "route_id"],
      [api.deleteDefinitions({ endpointId: "eds", maxDefinitions: 10_001 }), "max_definitions"],
    ];
    for (const [call, field] of cases) {
      const f = await codeOf(call);
      expect(f.code, field).toBe(Code.InvalidArgument);
      expect(f.message, field).toContain(field);
    }
    for (const call of [api.listPoints({ endpointId: "nope" }), api.deleteDefinitions({ endpointId: "nope" })])
      expect((await codeOf(call)).code).toBe(Code.NotFound);
  });
});

describe("definitions omf-sender created, and their clean-up", () => {
  it("SendOmf's creates are listed; DeleteDefinitions (dry run first) deletes containers, then types, and the endpoint has none left", async () => {
    await api.createEndpoint({ endpoint: { id: "eds-clean", kind: EndpointKind.EDS, url: emu.url, omfVersion: "1.2" } });
    // Other endpoints (eds) share the emulator's EDS namespace: give this one its own ids.
    const types = SEED_TYPES.map((t) => ({ ...t, id: `Clean${t.id}` }));
    const containers = SEED_CONTAINERS.map((c) => ({ id: `Clean${c.id}`, typeid: `Clean${c.typeid}` }));
    await send("eds-clean", OmfMessageType.TYPE, types);
    await send("eds-clean", OmfMessageType.CONTAINER, containers);
    const listed = await api.listDefinitions({ endpointId: "eds-clean" });
    expect(listed.definitions.map((d) => [d.kind, d.id, d.typeId])).toEqual([
      ...types.map((t) => [DefinitionKind.TYPE, t.id, ""]).sort(),
      ...containers.map((c) => [DefinitionKind.CONTAINER, c.id, c.typeid]).sort(),
    ]);
    const paged = await api.listDefinitions({ endpointId: "eds-clean", pageSize: 4 });
    expect(paged.definitions).toHaveLength(4);
    expect(paged.nextPageToken).toBe("4");

    const dry = await api.deleteDefinitions({ endpointId: "eds-clean", dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, deleted: 0, failed: 0, remaining: 0 });
    expect(dry.results.map((r) => r.outcome)).toEqual(Array(7).fill("would_delete"));
    // Containers come first: a type in use cannot go before them.
    expect(dry.results.slice(0, 4).every((r) => r.kind === DefinitionKind.CONTAINER)).toBe(true);
    expect((await getJson(`${emu.url}${EDS_BASE}/Streams/CleanFirstContainer`)).status).toBe(200);

    // One container is gone already (deleted behind omf-sender's back): its 404 counts as gone, as the seed's clean-up.
    const behindItsBack = await fetch(`${emu.url}${EDS_BASE}/omf`, {
      method: "POST",
      headers: { messagetype: "container", messageformat: "JSON", omfversion: "1.2", action: "delete", "content-type": "application/json" },
      body: JSON.stringify([containers[0]]),
    });
    expect(behindItsBack.status).toBeLessThan(300);
    expect((await getJson(`${emu.url}${EDS_BASE}/Streams/CleanFirstContainer`)).status).toBe(404);
    const done = await api.deleteDefinitions({ endpointId: "eds-clean", maxDefinitions: 5 });
    expect(done).toMatchObject({ dryRun: false, deleted: 5, failed: 0, remaining: 2 });
    const rest = await api.deleteDefinitions({ endpointId: "eds-clean" });
    expect(rest).toMatchObject({ deleted: 2, failed: 0, remaining: 0 });
    for (const c of containers) expect((await getJson(`${emu.url}${EDS_BASE}/Streams/${c.id}`)).status, c.id).toBe(404);
    for (const t of types) expect((await getJson(`${emu.url}${EDS_BASE}/Types/${t.id}`)).status, t.id).toBe(404);
    expect((await api.listDefinitions({ endpointId: "eds-clean" })).definitions).toEqual([]);
  });

  describe("a route's clean-up", () => {
    let gw: Gateway;
    let bus: Bus;
    beforeAll(async () => {
      gw = await startForTest(startGateway, gatewayConfig, { NATS_URL: nats.url }, {}, logger);
      bus = Bus.connect({ servers: nats.url, name: "readback-test", logger });
      await bus.ready;
      await api.createEndpoint({ endpoint: { id: "eds-routes", kind: EndpointKind.EDS, url: emu.url, omfVersion: "1.2" } });
    });
    afterAll(async () => {
      await gw?.stop();
      await bus?.close();
    });

    const publish = async (connection: string, device: string, i: number) =>
      bus.publishEvents([
        create(TelemetryEventSchema, {
          id: `${connection}:${device}:${i}`,
          source: { platform: Platform.API, connection, device },
          observedTime: timestampFromDate(new Date(Date.UTC(2026, 2, 1) + i * 1000)),
          points: [{ name: "level", value: { case: "doubleValue", value: i } }],
        }),
      ]);

    it("deletes the containers one route created and keeps the type another route's container still uses", async () => {
      const routes = createClient(RouteService, testTransport(gw.service.url));
      for (const [id, connection] of [
        ["clean-a", "line-a"],
        ["clean-b", "line-b"],
      ] as const) {
        await routes.createRoute({
          route: { id, source: { connection }, sink: { platform: Platform.OMF, target: "eds-routes" }, options: { lingerMs: "50" } },
        });
        await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 10_000, what: `consumer of ${id}` });
      }
      await publish("line-a", "d1", 1);
      await publish("line-a", "d2", 2);
      await until(async () => (await api.listDefinitions({ endpointId: "eds-routes", routeId: "clean-a" })).definitions.length >= 3, {
        timeoutMs: 15_000,
        what: "route a's type and two containers",
      });
      await publish("line-b", "d1", 3);
      await until(
        async () =>
          (await api.listDefinitions({ endpointId: "eds-routes" })).definitions.filter((d) => d.kind === DefinitionKind.CONTAINER).length >=
          3,
        { timeoutMs: 15_000, what: "route b's container" },
      );
      const a = (await api.listDefinitions({ endpointId: "eds-routes", routeId: "clean-a" })).definitions;
      expect(a.every((d) => d.routeId === "clean-a")).toBe(true);
      const aContainers = a.filter((d) => d.kind === DefinitionKind.CONTAINER).map((d) => d.id);
      expect(aContainers).toHaveLength(2);
      const type = a.find((d) => d.kind === DefinitionKind.TYPE)!.id;

      // Route b's container uses the type route a created first: it stays, and says why.
      const r = await api.deleteDefinitions({ endpointId: "eds-routes", routeId: "clean-a" });
      expect(r).toMatchObject({ deleted: 2, failed: 0, remaining: 0 });
      expect(r.results.find((x) => x.id === type)?.outcome).toBe("in_use");
      for (const id of aContainers) expect((await getJson(`${emu.url}${EDS_BASE}/Streams/${encodeURIComponent(id)}`)).status).toBe(404);
      expect((await getJson(`${emu.url}${EDS_BASE}/Types/${encodeURIComponent(type)}`)).status).toBe(200);
      const left = (await api.listDefinitions({ endpointId: "eds-routes" })).definitions;
      expect(left.filter((d) => d.kind === DefinitionKind.CONTAINER).map((d) => d.routeId)).toEqual(["clean-b"]);
    });
  });
});

describe("endpoint settings: Accept-Verbosity, producer token, TLS verification off", () => {
  let rec: RecordingServer;
  beforeAll(async () => {
    rec = await startRecordingServer(() => json(202, { "Operation-Id": "x" }));
  });
  afterAll(async () => rec?.close());

  it("accept_verbosity and producer_token are stored, returned and sent with every OMF message (Accept-Verbosity to PI only)", async () => {
    const created = await api.createEndpoint({
      endpoint: {
        id: "pi-headers",
        kind: EndpointKind.PI,
        url: `${rec.url}/piwebapi`,
        allowHttp: true,
        username: "u",
        secret: "p",
        omfVersion: "1.1",
        acceptVerbosity: "parameters, inner events",
        producerToken: "meridian-0001",
      },
    });
    expect(created.endpoint).toMatchObject({ acceptVerbosity: "parameters, inner events", producerToken: "meridian-0001" });
    expect((await api.getEndpoint({ id: "pi-headers" })).endpoint).toMatchObject({ producerToken: "meridian-0001" });
    await send("pi-headers", OmfMessageType.TYPE, [SEED_TYPES[0]]);
    const post = rec.requests.find((r) => r.method === "POST")!;
    expect(post.headers["producertoken"]).toBe("meridian-0001");
    expect(post.headers["accept-verbosity"]).toBe("parameters, inner events");
    // Data Hub and EDS do not document the header: it is not sent there; the producer token is (OMF 1.1).
    await api.createEndpoint({
      endpoint: {
        id: "eds-headers",
        kind: EndpointKind.EDS,
        url: rec.url,
        omfVersion: "1.1",
        acceptVerbosity: "verbose",
        producerToken: "t-1",
      },
    });
    await send("eds-headers", OmfMessageType.TYPE, [SEED_TYPES[0]]);
    const eds = rec.requests.filter((r) => r.method === "POST").at(-1)!;
    expect(eds.path).toBe(`${EDS_BASE}/omf`);
    expect(eds.headers["accept-verbosity"]).toBeUndefined();
    expect(eds.headers["producertoken"]).toBe("t-1");
  });

  it("bad values are invalid_argument naming the field", async () => {
    for (const [extra, field] of [
      [{ acceptVerbosity: "verbose\r\nX-Evil: 1" }, "endpoint.accept_verbosity"],
      [{ acceptVerbosity: "v".repeat(101) }, "endpoint.accept_verbosity"],
      [{ producerToken: "has space" }, "endpoint.producer_token"],
      [{ producerToken: "t".repeat(257) }, "endpoint.producer_token"],
    ] as const) {
      const f = await codeOf(api.createEndpoint({ endpoint: { id: "eds-bad", kind: EndpointKind.EDS, url: rec.url, ...extra } }));
      expect(f.code, field).toBe(Code.InvalidArgument);
      expect(f.message, field).toContain(field);
    }
  });

  it("TLS verification off: a warning in GetEndpointStatus and in the log", async () => {
    await api.createEndpoint({
      endpoint: {
        id: "pi-notls",
        kind: EndpointKind.PI,
        url: "https://127.0.0.1:1/piwebapi",
        username: "u",
        secret: "p",
        insecureSkipTlsVerify: true,
        omfVersion: "1.2",
      },
    });
    const status = (await api.getEndpointStatus({ id: "pi-notls" })).status!;
    expect(status.warnings.join(" ")).toContain("TLS verification is off");
    await until(
      async () => logs.lines.some((l) => l.level === 40 && l.endpoint === "pi-notls" && /TLS verification is off/.test(String(l.msg))),
      {
        timeoutMs: 5_000,
        what: "the warning in the log",
      },
    );
    const secure = (await api.getEndpointStatus({ id: "eds" })).status!;
    expect(secure.warnings).toEqual([]);
  });
});

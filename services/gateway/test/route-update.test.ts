import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Bus, consumerBacklog, STREAMS, telemetrySelection } from "@meridian/bus";
import { type Route, type RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService, type UpdateRouteRequestSchema } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type RunningOmfEmulator, startOmfEmulator } from "@meridian/emulator-omf";
import { type OmfSender, omfSenderConfig, startOmfSender } from "@meridian/omf-sender";
import {
  codeOf,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  TEST_KEYS,
  testCredential,
  testLogger,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

/**
 * UpdateRoute over Connect (HTTP/1.1 JSON, as the console calls it) against a real sink: omf-sender writing to the
 * OMF emulator's EDS endpoint. What reaches the emulator is what the route delivered. (omf-sender and the emulator
 * are workspace packages this test imports without listing them in package.json: omf-sender's own tests depend on the
 * gateway, and turbo refuses a cycle in the build graph.)
 */
let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let gw: Gateway;
let bus: Bus;

const client = <S extends typeof RouteService | typeof TelemetryService>(service: S, key: string = TEST_KEYS.admin) =>
  createClient(service, createConnectTransport({ baseUrl: gw.service.url, httpVersion: "1.1", interceptors: [testCredential(key)] }));
let routes: ReturnType<typeof createClient<typeof RouteService>>;
let telemetry: ReturnType<typeof createClient<typeof TelemetryService>>;

const BASE = Date.UTC(2026, 5, 1);
let seq = 0;

/** Events of one device, each at its own second (EDS indexes values by time) with `n` = its number. */
function events(connection: string, device: string, count: number): TelemetryEvent[] {
  return Array.from({ length: count }, (_, i) =>
    create(TelemetryEventSchema, {
      id: `${connection}:${device}:${i}`,
      source: { platform: Platform.API, connection, device },
      observedTime: timestampFromDate(new Date(BASE + ++seq * 1000)),
      points: [{ name: "n", value: { case: "intValue", value: BigInt(i) } }],
    }),
  );
}

type Container = { id: string; typeid: string; valueCount: number };
function eds() {
  // biome-ignore lint/suspicious/noExplicitAny: the emulator's state document
  return emu.state({ scope: "eds", values: false }).scopes["eds"] as any;
}
function container(connection: string, device: string): Container | undefined {
  return Object.values(eds().containers as Record<string, Container>).find((c) => c.id.startsWith(`api.${connection}.${device}`));
}
const valuesWritten = () => emu.state({ values: false }).counters.byProfile.eds.valuesWritten;

const omfRoute = (id: string, connection: string, options: Record<string, string> = {}) => ({
  id,
  displayName: `route ${id}`,
  source: { platform: Platform.API, connection },
  sink: { platform: Platform.OMF, target: "eds" },
  options: { lingerMs: "50", ...options },
});

type RouteInit = Omit<MessageInitShape<typeof RouteSchema>, "$typeName">;

/** The route as read, with changes: what a client sends to UpdateRoute. */
function edited(route: Route, changes: RouteInit = {}): MessageInitShape<typeof UpdateRouteRequestSchema> {
  const { $typeName: _, ...read } = route;
  return { route: { ...read, ...changes }, revision: route.revision };
}

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startOmfEmulator();
  const endpoints = join(mkdtempSync(join(tmpdir(), "route-update-")), "endpoints.json");
  writeFileSync(endpoints, JSON.stringify([{ id: "eds", kind: "eds", url: emu.url }]));
  sender = await startForTest(
    startOmfSender,
    omfSenderConfig,
    {
      NATS_URL: nats.url,
      OMF_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
      OMF_ENDPOINTS_FILE: endpoints,
      OMF_ACK_WAIT_MS: "3000",
      OMF_LINGER_MS: "50",
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
      OMF_ALLOWED_HOSTS: "127.0.0.1",
    },
    { redeliveryBackoff: { initialMs: 200, maxMs: 1_000, multiplier: 2, jitter: 0.2 } },
  );
  gw = await startForTest(startGateway, gatewayConfig, { NATS_URL: nats.url });
  bus = Bus.connect({ servers: nats.url, name: "route-update-test", logger: testLogger() });
  await bus.ready;
  routes = client(RouteService);
  telemetry = client(TelemetryService);
});
afterAll(async () => {
  await gw?.stop();
  await sender?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

async function consumerFilter(id: string): Promise<string> {
  return (await bus.jsm().consumers.info(STREAMS.telemetry, `omf-${id}`)).config.filter_subject ?? "";
}

describe("UpdateRoute", { timeout: 60_000 }, () => {
  it("a new source applies to what is stored after the edit; the old source's backlog from before is still delivered, nothing twice", async () => {
    const created = (await routes.createRoute({ route: omfRoute("upd", "old-line") })).route!;
    expect(created.revision).toBe(1n);
    await until(async () => (await consumerBacklog(bus, "omf-upd")) !== undefined, { what: "the route's consumer" });
    const written = valuesWritten();

    // The endpoint is down: what is accepted now is held on the bus, some of it delivered and not acknowledged.
    emu.setFault({ status: 503, scope: "omf" });
    await telemetry.publish({ events: events("old-line", "before", 5) });
    await telemetry.publish({ events: events("new-line", "before", 3) });
    await until(async () => emu.state({ values: false }).counters.faults.status > 0, { what: "a send refused" });

    const { route } = await routes.updateRoute(edited(created, { source: { platform: Platform.API, connection: "new-line", device: "" } }));
    expect(route?.revision).toBe(2n);
    expect(route?.source?.connection).toBe("new-line");
    expect(route?.sourceChange?.previousSource?.connection).toBe("old-line");
    const cut = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;
    expect(route?.sourceChange?.lastSequence).toBe(BigInt(cut));

    await telemetry.publish({ events: events("old-line", "after", 4) });
    await telemetry.publish({ events: events("new-line", "after", 6) });
    emu.clearFaults();

    await until(() => container("old-line", "before")?.valueCount === 5 && container("new-line", "after")?.valueCount === 6, {
      timeoutMs: 20_000,
      what: "the old source's backlog and the new source's later events at the endpoint",
    });
    // The new source's events from before the edit and the old source's from after it are not the route's.
    expect(container("new-line", "before")).toBeUndefined();
    expect(container("old-line", "after")).toBeUndefined();
    // Past the change, the consumer is the new source's, from the first sequence after it; the gateway clears the change.
    await until(async () => (await routes.getRoute({ id: "upd" })).route?.sourceChange === undefined, {
      timeoutMs: 15_000,
      what: "the source change cleared",
    });
    const info = await bus.jsm().consumers.info(STREAMS.telemetry, "omf-upd");
    expect(info.config.filter_subject).toBe(telemetrySelection({ platform: Platform.API, connection: "new-line" }).subject);
    expect(info.config.opt_start_seq).toBe(cut + 1);
    await telemetry.publish({ events: events("new-line", "later", 2) });
    await until(() => container("new-line", "later")?.valueCount === 2, { what: "events after the change is done" });
    // Each accepted event of the route written once: 5 + 6 + 2.
    expect(valuesWritten() - written).toBe(13);
    const got = (await routes.getRoute({ id: "upd" })).route!;
    expect(got.revision).toBe(2n);
    expect(got.displayName).toBe("route upd");
  });

  it("a change of the sink's options restarts it with them, at its position", async () => {
    const created = (await routes.createRoute({ route: omfRoute("opts", "opt-line") })).route!;
    await until(async () => (await consumerBacklog(bus, "omf-opts")) !== undefined, { what: "the route's consumer" });
    await telemetry.publish({ events: events("opt-line", "a", 1) });
    await until(() => container("opt-line", "a")?.valueCount === 1, { what: "the first event" });
    const typeOf = (c: Container | undefined) => eds().types[c!.typeid];
    expect(typeOf(container("opt-line", "a")).properties.n.format).toBe("int64");

    const { route } = await routes.updateRoute(edited(created, { options: { lingerMs: "50", intFormat: "int32" } }));
    expect(route?.options).toEqual({ lingerMs: "50", intFormat: "int32" });
    expect(route?.sourceChange).toBeUndefined();
    await until(() => sender.pipelines.list().some((p) => p.route.id === "opts" && p.route.options["intFormat"] === "int32"), {
      what: "the sink restarted with the new options",
    });
    await telemetry.publish({ events: events("opt-line", "b", 1) });
    await until(() => container("opt-line", "b")?.valueCount === 1, { what: "an event after the change" });
    expect(typeOf(container("opt-line", "b")).properties.n.format).toBe("int32");
    // Only the options changed: the consumer kept its filter.
    expect(await consumerFilter("opts")).toBe(telemetrySelection(route?.source).subject);
  });

  it("an edit based on an older read is aborted and writes nothing", async () => {
    const first = (await routes.createRoute({ route: omfRoute("stale", "stale-line") })).route!;
    const theirs = (await routes.updateRoute(edited(first, { displayName: "renamed by someone else" }))).route!;
    expect(theirs.revision).toBe(2n);
    const err = await codeOf(routes.updateRoute(edited(first, { source: { platform: Platform.API, connection: "mine", device: "" } })));
    expect(err.code).toBe(Code.Aborted);
    expect(err.message).toContain("was changed since revision 1 (it is at revision 2)");
    const now = (await routes.getRoute({ id: "stale" })).route!;
    expect(now.source?.connection).toBe("stale-line");
    expect(now.displayName).toBe("renamed by someone else");
    expect(now.revision).toBe(2n);
  });

  it("bad input is invalid_argument naming each field; the route stays as it was", async () => {
    const route = (await routes.createRoute({ route: omfRoute("bad", "bad-line") })).route!;
    const cases: Array<[MessageInitShape<typeof UpdateRouteRequestSchema>, string[]]> = [
      [{ ...edited(route, {}), revision: 0n }, ["revision"]],
      [edited(route, { source: { platform: Platform.API, connection: "x".repeat(257), device: "" } }), ["route.source.connection"]],
      [
        edited(route, { displayName: "n".repeat(300), options: { "bad key": "1" } }),
        ["route.display_name", 'route.options: key "bad key"'],
      ],
      [edited(route, { options: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) }), ["route.options"]],
      [edited(route, { sink: { platform: Platform.OMF, target: "pi" } }), ["route.sink"]],
      [edited(route, { startTime: timestampFromDate(new Date()) }), ["route.start_time"]],
      [edited(route, { source: undefined }), ["route.source"]],
    ];
    for (const [req, fields] of cases) {
      const err = await codeOf(routes.updateRoute(req));
      expect(err.code, fields.join()).toBe(Code.InvalidArgument);
      for (const f of fields) expect(err.message).toContain(f.includes(":") ? f : `${f}:`);
    }
    expect((await codeOf(routes.updateRoute(edited(route, { id: "missing" })))).code).toBe(Code.NotFound);
    expect((await routes.getRoute({ id: "bad" })).route).toMatchObject({ revision: 1n, displayName: "route bad" });
  });

  it("a caller without routes:admin is refused (permission_denied), and nothing changes", async () => {
    const route = (await routes.createRoute({ route: omfRoute("roles", "roles-line") })).route!;
    const reader = client(RouteService, TEST_KEYS["routes:read"]);
    const read = (await reader.getRoute({ id: "roles" })).route!;
    const err = await codeOf(reader.updateRoute(edited(read, { disabled: true })));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toContain("routes:admin");
    expect((await routes.getRoute({ id: "roles" })).route).toMatchObject({ revision: route.revision, disabled: false });
  });

  it("a draining route cannot be changed; a second source change waits for the first to be delivered", async () => {
    const route = (await routes.createRoute({ route: omfRoute("twice", "twice-a") })).route!;
    // Disabled: the sink does not run, so the first change stays pending.
    const off = (await routes.updateRoute(edited(route, { disabled: true }))).route!;
    const changed = (await routes.updateRoute(edited(off, { source: { platform: Platform.API, connection: "twice-b", device: "" } })))
      .route!;
    expect(changed.sourceChange).toBeDefined();
    const err = await codeOf(
      routes.updateRoute(edited(changed, { source: { platform: Platform.API, connection: "twice-c", device: "" } })),
    );
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("previous source change is still being delivered");
    // Other fields are not held up; enabled, the sink catches up and the change clears.
    const on = (await routes.updateRoute(edited(changed, { disabled: false, displayName: "back on" }))).route!;
    expect(on.revision).toBe(4n);
    await until(async () => (await routes.getRoute({ id: "twice" })).route?.sourceChange === undefined, {
      timeoutMs: 15_000,
      what: "the change delivered",
    });
    const latest = (await routes.getRoute({ id: "twice" })).route!;
    const third = (await routes.updateRoute(edited(latest, { source: { platform: Platform.API, connection: "twice-c", device: "" } })))
      .route!;
    expect(third.revision).toBe(5n);

    await telemetry.publish({ events: events("twice-c", "d", 2) });
    await until(async () => ((await consumerBacklog(bus, "omf-twice"))?.ackPending ?? 1) === 0, { what: "delivered" });
    emu.setFault({ status: 503, scope: "omf" });
    await telemetry.publish({ events: events("twice-c", "held", 1) });
    await until(async () => ((await consumerBacklog(bus, "omf-twice"))?.ackPending ?? 0) > 0, { what: "a message held" });
    expect((await routes.deleteRoute({ id: "twice" })).route?.state).toBe(RouteState.DRAINING);
    const drainErr = await codeOf(routes.updateRoute(edited(third, { displayName: "x" })));
    expect(drainErr.code).toBe(Code.FailedPrecondition);
    emu.clearFaults();
  });
});

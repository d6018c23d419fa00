/**
 * The deployments' NATS permissions (deploy/compose/nats-users.conf, copied to Kubernetes) against a real
 * nats-server, through libs/bus as each service uses it: what a service needs works, what belongs to another service
 * is refused.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { CommandResponseSchema, CommandSchema, WritablePropertyUpdateSchema } from "@meridian/contracts/meridian/command/v1/command_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { ServiceStatusSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { connect, nanos } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bus, STREAMS } from "../src/bus.js";
import { consumerBacklog, DurableConsumer, deleteConsumer } from "../src/consumer.js";
import { DeadLetters } from "../src/dead-letters.js";
import { BusPermissionError } from "../src/errors.js";
import { jsonCodec, KvBucket } from "../src/kv.js";
import { routeBucket, serviceStatusBucket } from "../src/mesh.js";
import { telemetryFilterSubject } from "../src/subjects.js";

const USERS_CONF = join(import.meta.dirname, "..", "..", "..", "deploy", "compose", "nats-users.conf");
const PASSWORDS = {
  gateway: "test-gateway-password",
  "omf-sender": "test-omf-sender-password",
  "idigi-listener": "test-idigi-listener-password",
  "omnia-reader": "test-omnia-reader-password",
  "iotc-bridge": "test-iotc-bridge-password",
  "oci-twin-manager": "test-oci-twin-manager-password",
} as const;
type Service = keyof typeof PASSWORDS;

/** The services' own buckets, as in services/omf-sender and services/idigi-listener (tests/deploy checks the names). */
const OMF_ENDPOINTS = "omf_endpoints";
const OMF_STATE = "omf_state";
const IDIGI_SESSIONS = "idigi_sessions";
const OMNIA_CURSORS = "omnia_cursors";
const IOTC_DEVICES = "iotc_devices";
const OCI_TWINS = "oci_twins";
const OCI_CURSORS = "oci_cursors";

function event(platform: Platform, device: string): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${device}-${Math.random()}`,
    source: { platform, connection: "perm", device },
    observedTime: timestampNow(),
    points: [{ name: "v", value: { case: "doubleValue", value: 1 } }],
  });
}

describe("NATS permissions of the deployments, through libs/bus", () => {
  let nats: NatsServerHandle;
  const buses = {} as Record<Service, Bus>;
  const gatewayLogs = captureLogger();
  const omfLogs = captureLogger();

  const connectAs = (service: Service, logger = testLogger()) =>
    Bus.connect({ servers: nats.url, name: service, user: service, pass: PASSWORDS[service], logger });

  beforeAll(async () => {
    nats = await startNatsServer({
      config: readFileSync(USERS_CONF, "utf8"),
      env: {
        NATS_GATEWAY_PASSWORD: PASSWORDS.gateway,
        NATS_OMF_SENDER_PASSWORD: PASSWORDS["omf-sender"],
        NATS_IDIGI_LISTENER_PASSWORD: PASSWORDS["idigi-listener"],
        NATS_OMNIA_READER_PASSWORD: PASSWORDS["omnia-reader"],
        NATS_IOTC_BRIDGE_PASSWORD: PASSWORDS["iotc-bridge"],
        NATS_OCI_TWIN_MANAGER_PASSWORD: PASSWORDS["oci-twin-manager"],
      },
    });
    buses.gateway = connectAs("gateway", gatewayLogs.logger);
    await buses.gateway.ready;
    // Declared with a longer telemetry age than the gateway's: omf-sender may not change the stream's settings.
    buses["omf-sender"] = Bus.connect({
      servers: nats.url,
      name: "omf-sender",
      user: "omf-sender",
      pass: PASSWORDS["omf-sender"],
      logger: omfLogs.logger,
      streams: { telemetryMaxAgeMs: 99 * 3600_000 },
    });
    buses["idigi-listener"] = connectAs("idigi-listener");
    buses["omnia-reader"] = connectAs("omnia-reader");
    buses["iotc-bridge"] = connectAs("iotc-bridge");
    buses["oci-twin-manager"] = connectAs("oci-twin-manager");
    await Promise.all(Object.values(buses).map((b) => b.ready));
  });
  afterAll(async () => {
    await Promise.all(Object.values(buses).map((b) => b?.close()));
    await nats?.stop();
  });

  it("lets in no client without a user, nor one with a wrong password", async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
    await expect(connect({ servers: nats.url, user: "gateway", pass: "wrong", reconnect: false })).rejects.toMatchObject({
      code: "AUTHORIZATION_VIOLATION",
    });
  });

  it("the gateway owns the streams' settings; another service's differing settings are refused and logged, the stream keeps its own", async () => {
    const info = await buses.gateway.jsm().streams.info(STREAMS.telemetry);
    expect(info.config.max_age).toBe(nanos(72 * 3600_000));
    expect(buses["omf-sender"].connected).toBe(true);
    expect(omfLogs.lines.some((l) => l.stream === STREAMS.telemetry && String(l.msg).includes("may not change them"))).toBe(true);
    expect(nats.output()).toContain('Violation - User "omf-sender", Subject "$JS.API.STREAM.UPDATE.TELEMETRY"');
  });

  it("only the gateway writes routes: omf-sender and idigi-listener are refused, omf-sender reads them", async () => {
    const route = create(RouteSchema, { id: "r1", source: { platform: Platform.IDIGI }, sink: { platform: Platform.OMF, target: "pi" } });
    await routeBucket(buses.gateway).put("r1", route);
    await expect(routeBucket(buses["omf-sender"]).put("r1", create(RouteSchema, { ...route, disabled: true }))).rejects.toBeInstanceOf(
      BusPermissionError,
    );
    await expect(routeBucket(buses["omf-sender"]).delete("r1")).rejects.toBeInstanceOf(BusPermissionError);
    await expect(routeBucket(buses["idigi-listener"]).put("forged", route)).rejects.toBeInstanceOf(BusPermissionError);
    expect((await routeBucket(buses["omf-sender"]).get("r1"))?.disabled).toBe(false);

    const ac = new AbortController();
    const seen: string[] = [];
    for await (const { key } of routeBucket(buses["omf-sender"]).watch(ac.signal)) {
      seen.push(key);
      ac.abort();
    }
    expect(seen).toEqual(["r1"]);
  });

  it("the sink's consumers: omf-sender declares and reads its own, the gateway reads and purges one, idigi-listener neither", async () => {
    const declare = (bus: Bus) =>
      new DurableConsumer(bus, {
        durable: "omf-r1",
        filterSubject: telemetryFilterSubject({ platform: Platform.IDIGI }),
        logger: testLogger(),
      });
    await declare(buses["omf-sender"]).declare();
    expect(await consumerBacklog(buses.gateway, "omf-r1")).toMatchObject({ pending: 0 });
    await expect(deleteConsumer(buses["idigi-listener"], "omf-r1")).rejects.toThrow(/permission/i);
    expect(await deleteConsumer(buses.gateway, "omf-r1")).toMatchObject({ pending: 0 });
    expect(await consumerBacklog(buses["omf-sender"], "omf-r1")).toBeUndefined();
  });

  it("only omf-sender writes its endpoint and state buckets: idigi-listener and the gateway are refused", async () => {
    await new KvBucket(buses["omf-sender"], OMF_ENDPOINTS, jsonCodec()).put("pi", { url: "https://pi.example" });
    await new KvBucket(buses["omf-sender"], OMF_STATE, jsonCodec()).put("k", { known: true });
    for (const other of ["idigi-listener", "gateway"] as const) {
      await expect(new KvBucket(buses[other], OMF_ENDPOINTS, jsonCodec()).put("pi", { url: "https://evil.example" })).rejects.toThrow();
      await expect(new KvBucket(buses[other], OMF_STATE, jsonCodec()).put("k", {})).rejects.toThrow();
    }
    expect(await new KvBucket(buses["omf-sender"], OMF_ENDPOINTS, jsonCodec()).get("pi")).toEqual({ url: "https://pi.example" });
  });

  it("omnia-reader publishes Omnia telemetry only, owns its cursors, reads routes and declares its own route consumers", async () => {
    const omnia = buses["omnia-reader"];
    expect(await omnia.publishEvents([event(Platform.OMNIA, "series-1")])).toMatchObject({ stored: 1 });
    await expect(omnia.publishEvents([event(Platform.IDIGI, "d1")])).rejects.toBeInstanceOf(BusPermissionError);
    await new KvBucket(omnia, OMNIA_CURSORS, jsonCodec()).put("r.s", { cursorNs: "1" });
    for (const other of ["idigi-listener", "omf-sender"] as const)
      await expect(new KvBucket(buses[other], OMNIA_CURSORS, jsonCodec()).put("r.s", { cursorNs: "0" })).rejects.toThrow();
    await expect(routeBucket(omnia).put("forged", create(RouteSchema, { id: "forged" }))).rejects.toBeInstanceOf(BusPermissionError);
    await new DurableConsumer(omnia, {
      durable: "omnia-r9",
      filterSubject: telemetryFilterSubject({ platform: Platform.API }),
      logger: testLogger(),
    }).declare();
    expect(await deleteConsumer(omnia, "omnia-r9")).toMatchObject({ pending: 0 });
  });

  it("oci-twin-manager publishes OCI telemetry only, owns its twin and cursor buckets, reads routes and declares its own route consumers", async () => {
    const oci = buses["oci-twin-manager"];
    expect(await oci.publishEvents([event(Platform.OCI_IOT, "twin-1")])).toMatchObject({ stored: 1 });
    await expect(oci.publishEvents([event(Platform.OMNIA, "series-1")])).rejects.toBeInstanceOf(BusPermissionError);
    await new KvBucket(oci, OCI_TWINS, jsonCodec()).put("twin-1", { instanceId: "ocid1.iotdigitaltwininstance.oc1..x" });
    await new KvBucket(oci, OCI_CURSORS, jsonCodec()).put("twin-1.historizedData", { lastId: 1 });
    for (const other of ["omnia-reader", "iotc-bridge"] as const) {
      await expect(new KvBucket(buses[other], OCI_TWINS, jsonCodec()).put("twin-1", {})).rejects.toThrow();
      await expect(new KvBucket(buses[other], OCI_CURSORS, jsonCodec()).put("twin-1.historizedData", {})).rejects.toThrow();
    }
    await expect(new KvBucket(oci, OMNIA_CURSORS, jsonCodec()).put("r.s", {})).rejects.toThrow();
    await expect(routeBucket(oci).put("forged", create(RouteSchema, { id: "forged" }))).rejects.toBeInstanceOf(BusPermissionError);
    await new DurableConsumer(oci, {
      durable: "oci-r9",
      filterSubject: telemetryFilterSubject({ platform: Platform.API }),
      logger: testLogger(),
    }).declare();
    expect(await deleteConsumer(oci, "oci-r9")).toMatchObject({ pending: 0 });
  });

  it("only idigi-listener writes its session bucket; it reads the routes and cannot change them", async () => {
    await new KvBucket(buses["idigi-listener"], IDIGI_SESSIONS, jsonCodec()).put("m1", { state: "open" });
    const routes = routeBucket(buses["idigi-listener"]);
    await routeBucket(buses.gateway).put("idigi-readable", create(RouteSchema, { id: "idigi-readable" }));
    expect((await routes.get("idigi-readable"))?.id).toBe("idigi-readable");
    expect(await routes.keys()).toContain("idigi-readable");
    await expect(routes.put("forged", create(RouteSchema, { id: "forged" }))).rejects.toBeInstanceOf(BusPermissionError);
    await expect(new KvBucket(buses["omf-sender"], IDIGI_SESSIONS, jsonCodec()).put("m1", {})).rejects.toThrow();
  });

  it("each source publishes only its own platform's telemetry: forged subjects are refused", async () => {
    expect(await buses["idigi-listener"].publishEvents([event(Platform.IDIGI, "d1")])).toMatchObject({ stored: 1 });
    expect(await buses.gateway.publishEvents([event(Platform.API, "d1")])).toMatchObject({ stored: 1 });

    await expect(buses["idigi-listener"].publishEvents([event(Platform.OMNIA, "d1")])).rejects.toBeInstanceOf(BusPermissionError);
    await expect(buses["idigi-listener"].publishEvents([event(Platform.API, "d1")])).rejects.toBeInstanceOf(BusPermissionError);
    await expect(buses["omf-sender"].publishEvents([event(Platform.OMF, "d1")])).rejects.toBeInstanceOf(BusPermissionError);
    expect(nats.output()).toContain('Violation - User "idigi-listener", Subject "telemetry.v1.omnia.perm.d1"');
  });

  it("a source's dead letters go to its own subject only", async () => {
    const letter = (consumer: string) => ({ consumer, data: new Uint8Array([1]), reason: "test" });
    expect((await buses["idigi-listener"].publishDeadLetter(letter("idigi-listener"))).seq).toBeGreaterThan(0);
    await expect(buses["idigi-listener"].publishDeadLetter(letter("omf-r1"))).rejects.toBeInstanceOf(BusPermissionError);
    await expect(buses.gateway.publishDeadLetter(letter("gateway"))).rejects.toBeInstanceOf(BusPermissionError);
    expect(nats.output()).toContain('Violation - User "gateway", Subject "deadletter.v1.gateway"');
    // The refusal is logged by the bus with what was refused.
    await until(() => gatewayLogs.lines.some((l) => l.subject === "deadletter.v1.gateway" && l.level === 50), { timeoutMs: 5000 });
  });

  it("the gateway reads, replays (on any platform's subject) and purges dead letters and records replays; a sink reads none", async () => {
    const original = { subject: "telemetry.v1.idigi.perm.dlq", sequence: 7, deliveries: 3 };
    const { seq } = await buses["omf-sender"].publishDeadLetter({
      consumer: "omf-dlq-perm",
      data: new Uint8Array([1, 2, 3]),
      reason: "refused",
      original,
    });
    const letters = new DeadLetters(buses.gateway);
    const page = await letters.page({ consumer: "omf-dlq-perm", limit: 10, maxScanned: 100 });
    expect(page.letters.map((l) => l.sequence)).toEqual([seq]);
    const letter = (await letters.get(seq))!;
    expect(letter.reason).toBe("refused");
    const replayed = await letters.replay(letter, "omf-dlq-perm");
    expect(replayed).toMatchObject({ subject: original.subject, duplicate: false });
    const records = new KvBucket(buses.gateway, "deadletter_replays", jsonCodec());
    await records.put(String(seq), { replayed: replayed.seq });
    expect(await records.get(String(seq))).toEqual({ replayed: replayed.seq });
    await expect(new KvBucket(buses["omf-sender"], "deadletter_replays", jsonCodec()).put(String(seq), {})).rejects.toThrow();
    await expect(new DeadLetters(buses["omf-sender"]).get(seq)).rejects.toThrow();
    await expect(new DeadLetters(buses["omf-sender"]).purge()).rejects.toThrow();
    expect(await letters.delete(seq)).toBe(true);
    expect(await letters.purge("omf-dlq-perm")).toBe(0);
  });

  it("each service writes only its own status report; the gateway reads them all", async () => {
    const status = (b: Bus) => serviceStatusBucket(b);
    await status(buses["omf-sender"]).put("omf-sender.a", create(ServiceStatusSchema, { service: "omf-sender", instance: "a" }));
    await expect(
      status(buses["omf-sender"]).put("gateway.a", create(ServiceStatusSchema, { service: "gateway", instance: "a" })),
    ).rejects.toBeInstanceOf(BusPermissionError);
    await expect(
      status(buses["idigi-listener"]).put("omf-sender.a", create(ServiceStatusSchema, { service: "idigi-listener", instance: "a" })),
    ).rejects.toBeInstanceOf(BusPermissionError);
    expect((await status(buses.gateway).entries()).map(([k]) => k)).toContain("omf-sender.a");
  });

  it("no service reads another's replies: a subscription outside its own inbox is refused", async () => {
    const nc = buses["idigi-listener"].connection();
    for (const subject of ["_INBOX.omf-sender.>", "_INBOX.>", "telemetry.v1.>", ">"]) {
      const sub = nc.subscribe(subject);
      const ended = (async () => {
        for await (const _ of sub) {
          // nothing may arrive
        }
      })();
      await expect(ended, subject).rejects.toMatchObject({ code: "PERMISSIONS_VIOLATION" });
    }
  });

  it("idigi-listener's WatchEvents reads iDigi telemetry and nothing else", async () => {
    const bus = buses["idigi-listener"];
    const since = new Date(Date.now() - 1000);
    await bus.publishEvents([event(Platform.IDIGI, "watched")]);
    const ac = new AbortController();
    let device: string | undefined;
    for await (const e of bus.subscribe(
      { platform: Platform.IDIGI, connection: "perm", device: "watched" },
      { signal: ac.signal, startTime: since },
    )) {
      device = e.source?.device;
      ac.abort();
    }
    expect(device).toBe("watched");

    // Any other platform's: the consumer is never created, so nothing is read (nats.js keeps trying; the bus closes it).
    await buses.gateway.publishEvents([event(Platform.API, "not-for-idigi")]);
    const read: string[] = [];
    void (async () => {
      for await (const e of bus.subscribe({ platform: Platform.API }, { startTime: since })) read.push(e.id);
    })().catch(() => {});
    await until(() => nats.output().includes('Violation - User "idigi-listener", Subject "$JS.API.CONSUMER.CREATE.TELEMETRY.'), {
      timeoutMs: 5000,
    });
    expect(nats.output()).toMatch(/User "idigi-listener", Subject "\$JS\.API\.CONSUMER\.CREATE\.TELEMETRY\.\w+\.telemetry\.v1\.api\./);
    await new Promise((r) => setTimeout(r, 500));
    expect(read).toEqual([]);
  });
  it("iotc-bridge stores IoT Central's commands and writable-property changes, watches them, answers command responses and owns its device bucket", async () => {
    const iotc = buses["iotc-bridge"];
    const target = { platform: Platform.IOT_CENTRAL, connection: "app-1", device: "dev-1" };
    const since = new Date(Date.now() - 1000);
    const command = create(CommandSchema, { requestId: "r1", target, name: "reboot", receivedTime: timestampNow() });
    expect(await iotc.publishCommand(command)).toMatchObject({ duplicate: false });
    expect(
      await iotc.publishWritablePropertyUpdate(create(WritablePropertyUpdateSchema, { target, name: "fan", version: 2n })),
    ).toMatchObject({
      duplicate: false,
    });
    const ac = new AbortController();
    const watched: string[] = [];
    for await (const c of iotc.watchCommands(
      { platform: Platform.IOT_CENTRAL, connection: "app-1" },
      { signal: ac.signal, startTime: since },
    )) {
      watched.push(c.requestId);
      ac.abort();
    }
    expect(watched).toEqual(["r1"]);

    // A response travels over core NATS to whichever instance holds the command; the holder answers the responder's inbox.
    const held = new AbortController();
    const responses = iotc.commandResponses(Platform.IOT_CENTRAL, "app-1", held.signal);
    const holder = (async () => {
      for await (const r of responses) {
        r.answer(true);
        held.abort();
        return r.response.requestId;
      }
    })();
    const sent = await iotc.respondToCommand(
      Platform.IOT_CENTRAL,
      "app-1",
      create(CommandResponseSchema, { requestId: "r1", status: 200 }),
    );
    expect(await holder).toBe("r1");
    expect(sent.delivered).toBe(true);

    // No other service stores commands for IoT Central, nor writes the bridge's buckets.
    await expect(buses["omnia-reader"].publishCommand(create(CommandSchema, { ...command, requestId: "forged" }))).rejects.toBeInstanceOf(
      BusPermissionError,
    );
    await new KvBucket(iotc, IOTC_DEVICES, jsonCodec()).put("app-1.dev-1", { assignedHub: "hub" });
    await expect(new KvBucket(buses["omf-sender"], IOTC_DEVICES, jsonCodec()).put("app-1.dev-1", {})).rejects.toThrow();
    expect(await iotc.publishEvents([event(Platform.IOT_CENTRAL, "d1")]).catch((e) => e)).toBeInstanceOf(BusPermissionError);
  });
});

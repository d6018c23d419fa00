import { randomBytes } from "node:crypto";
import * as https from "node:https";
import * as tls from "node:tls";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { Command, WritablePropertyUpdate } from "@meridian/contracts/meridian/command/v1/command_pb";
import { AckOption, IdigiListenerService, PayloadFormat } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { IotcBridgeService, WritablePropertyAck } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { expectCode, TEST_KEYS, testCredential, until } from "@meridian/testing";
import { Network, type StartedNetwork, type StartedTestContainer, Wait } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, containerLogs, docker, NATS_USERS, serviceImage, startNats, startService, untilUp } from "./harness.js";

/**
 * Secrets of this run: the emulator's enrollment-group key (given to the bridge through the gateway), its application
 * API token, the bridge's credentials key. The last test reads every container's log for them.
 */
const GROUP_KEY = randomBytes(64).toString("base64");
const API_TOKEN = `SharedAccessSignature sr=system-test&sig=${randomBytes(32).toString("base64url")}&skn=operator&se=4102444800`;
const IOTC_CREDENTIALS_KEY = randomBytes(32).toString("base64");
const ID_SCOPE = "0ne00SYS001";
const APPLICATION = "plant-system";
const MODEL_ID = "dtmi:meridian:system:idigi;1";
const ROUTE = "idigi-to-iotc";
const API_VERSION = "2022-07-31";
/** Where the emulator writes its CA, and where the bridge reads it (IOTC_CA_FILE). */
const EMULATOR_CA_DIR = "/tmp/iotc-ca";
const BRIDGE_CA_FILE = "/tmp/iotc-emulator-ca.pem";

interface EmulatorDevice {
  deviceId: string;
  modelId?: string;
  registrations: number;
  connects: number;
  connected: boolean;
}
interface EmulatorTelemetry {
  deviceId: string;
  messageId?: string;
  json?: unknown;
}

/**
 * Starts containers together; each assigns itself as it starts, and all have settled before a failure is thrown, so
 * that afterAll stops every one that did start.
 */
async function together(...starts: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(starts)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * iDigi emulator → idigi-listener → NATS → iotc-bridge → IoT Central emulator (DPS, IoT Hub over MQTT/TLS), and back
 * from the emulator's application API (commands, writable properties) to callers of the gateway; every container built
 * from this repository, set up only through the gateway and observed through the emulators' own surfaces.
 */
describe("system: iDigi → NATS → IoT Central through the gateway", () => {
  let network: StartedNetwork;
  let nats: StartedTestContainer;
  let idigiEmulator: StartedTestContainer;
  let iotcEmulator: StartedTestContainer;
  let idigiListener: StartedTestContainer;
  let iotcBridge: StartedTestContainer;
  let gateway: StartedTestContainer;
  let emulatorCa = "";
  let monitorId = "";
  let emitted = 0;
  /** What the gateway's telemetry Subscribe saw of the iDigi devices, by event id. */
  const seen = new Map<string, TelemetryEvent>();
  const watching = new AbortController();
  let subscription: Promise<void> = Promise.resolve();

  const clients = () => {
    const transport = createConnectTransport({ interceptors: [testCredential()], baseUrl: baseUrl(gateway), httpVersion: "1.1" });
    return {
      iotc: createClient(IotcBridgeService, transport),
      idigi: createClient(IdigiListenerService, transport),
      routes: createClient(RouteService, transport),
      telemetry: createClient(TelemetryService, transport),
    };
  };

  /**
   * An HTTPS call to the IoT Central emulator from the host, trusting only its CA. The mapped port may be on an address
   * the certificate does not name (a remote Docker host): the chain is checked, the name as the one it has (localhost).
   */
  function emulatorCall(method: string, path: string, body?: unknown, auth = true): Promise<{ status: number; json: unknown }> {
    const url = new URL(path, `https://${iotcEmulator.getHost()}:${iotcEmulator.getMappedPort(8443)}`);
    if (path.startsWith("/api/")) url.searchParams.set("api-version", API_VERSION);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          ca: emulatorCa,
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity("localhost", cert),
          headers: {
            ...(auth ? { authorization: API_TOKEN } : {}),
            ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: unknown = text;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {}
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  async function emulatorJson<T>(method: string, path: string, body?: unknown, expected = 200): Promise<T> {
    const res = await emulatorCall(method, path, body);
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.json)}`).toBe(expected);
    return res.json as T;
  }

  const emulatorDevices = async () => (await emulatorJson<{ devices: EmulatorDevice[] }>("GET", "/_emulator/state")).devices;
  const emulatorTelemetry = () => emulatorJson<EmulatorTelemetry[]>("GET", "/_emulator/telemetry");

  /** The telemetry message ids the emulator holds for the iDigi devices (the bus event ids), in arrival order. */
  async function idigiMessageIds(): Promise<string[]> {
    const prefix = `${monitorId}-`;
    return (await emulatorTelemetry()).filter((m) => m.deviceId.startsWith(prefix)).map((m) => m.messageId ?? "");
  }

  async function emit(count: number): Promise<void> {
    const res = await fetch(`${baseUrl(idigiEmulator)}/_emulator/emit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ monitorId: Number(monitorId), topic: "DataPoint", count }),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    emitted += count;
  }

  /**
   * Every iDigi event the gateway saw is one telemetry message in IoT Central, carrying the event id as its message id,
   * and no message id arrives twice.
   */
  async function expectExactlyEmitted(what: string): Promise<void> {
    await untilUp(`${emitted} events seen on the bus (${what})`, async () => seen.size >= emitted, 60_000);
    await untilUp(
      `${emitted} telemetry messages in IoT Central (${what})`,
      async () => (await idigiMessageIds()).length >= emitted,
      90_000,
    );
    // Linger: a duplicate would arrive right behind.
    await new Promise((r) => setTimeout(r, 2000));
    const ids = await idigiMessageIds();
    expect(seen.size, what).toBe(emitted);
    expect(new Set(ids), what).toEqual(new Set(seen.keys()));
    expect(ids.length, `${what}: message ids sent twice: ${ids.filter((id, i) => ids.indexOf(id) !== i).join(", ")}`).toBe(emitted);
  }

  /** The IoT Central device each iDigi device became (the bridge's devices with their source), by iDigi device id. */
  async function bridgeDevices(): Promise<Map<string, string>> {
    const { devices } = await clients().iotc.listDevices({ applicationId: APPLICATION });
    return new Map(devices.map((d) => [d.source.split("/").pop() ?? "", d.deviceId]));
  }

  beforeAll(async () => {
    // Every image at once: building them (docker build of the repository) is most of this file's time.
    for (const folder of ["emulators/idigi", "emulators/iotc", "services/idigi-listener", "services/iotc-bridge", "services/gateway"])
      serviceImage(folder).catch(() => {});
    network = await new Network().start();
    nats = await startNats(network);
    const iotcImage = await serviceImage("emulators/iotc");
    await together(
      startService(
        network,
        "emulators/idigi",
        "idigi-emulator",
        {
          IDIGI_EMU_HTTP_PORT: "8080",
          IDIGI_EMU_TLS: "false",
          IDIGI_EMU_CLOCK: "sequence",
          HEALTHCHECK_URL: "http://127.0.0.1:8080/_emulator/state",
        },
        8080,
        "/_emulator/state",
      ).then((c) => {
        idigiEmulator = c;
      }),
      iotcImage
        .withNetwork(network)
        .withNetworkAliases("iotc-emulator")
        .withEnvironment({
          IOTC_EMULATOR_PORT: "8883",
          IOTC_EMULATOR_HTTPS_PORT: "8443",
          // Its certificate names the alias the bridge dials for DPS and the hub.
          IOTC_EMULATOR_HOST_NAMES: "iotc-emulator",
          IOTC_EMULATOR_CA_DIR: EMULATOR_CA_DIR,
          IOTC_EMULATOR_ID_SCOPE: ID_SCOPE,
          IOTC_EMULATOR_GROUP_KEY: GROUP_KEY,
          IOTC_EMULATOR_API_TOKEN: API_TOKEN,
          HEALTHCHECK_URL: "https://127.0.0.1:8443/_emulator/health",
        })
        .withExposedPorts(8443)
        // Ready = its HTTPS listener answers; the CA is not trusted yet (it is read from the container next).
        .withWaitStrategy(Wait.forHttp("/_emulator/health", 8443).usingTls().allowInsecure().forStatusCode(200))
        .withStartupTimeout(90_000)
        .start()
        .then((c) => {
          iotcEmulator = c;
        }),
    );
    // The CA file the emulator wrote at start, as compose shares it through a volume.
    const ca = await iotcEmulator.exec(["cat", `${EMULATOR_CA_DIR}/ca.pem`]);
    expect(ca.exitCode, ca.output).toBe(0);
    emulatorCa = ca.output;
    expect(emulatorCa).toMatch(/^-----BEGIN CERTIFICATE-----/);

    const natsEnv = { NATS_URL: "nats://nats:4222" };
    await together(
      startService(
        network,
        "services/idigi-listener",
        "idigi-listener",
        {
          ...natsEnv,
          IDIGI_URL: "http://idigi-emulator:8080",
          IDIGI_USERNAME: "emulator",
          IDIGI_PASSWORD: "emulator",
          // The emulator speaks plain HTTP and TCP: credentials in clear are an operator's allowance.
          IDIGI_ALLOW_INSECURE: "true",
        },
        8082,
      ).then((c) => {
        idigiListener = c;
      }),
      startService(
        network,
        "services/iotc-bridge",
        "iotc-bridge",
        { ...natsEnv, IOTC_CREDENTIALS_KEY, IOTC_CA_FILE: BRIDGE_CA_FILE },
        8084,
        "/readyz",
        [],
        [{ content: emulatorCa, target: BRIDGE_CA_FILE }],
      ).then((c) => {
        iotcBridge = c;
      }),
    );
    gateway = await startService(network, "services/gateway", "gateway", {
      ...natsEnv,
      IDIGI_LISTENER_URL: "http://idigi-listener:8082",
      IOTC_BRIDGE_URL: "http://iotc-bridge:8084",
    });

    // Everything the iDigi devices publish from now on, as the gateway's subscribers see it.
    const from = timestampFromDate(new Date(Date.now() - 5_000));
    subscription = (async () => {
      try {
        for await (const r of clients().telemetry.subscribe(
          { filter: { platform: Platform.IDIGI }, startTime: from },
          { signal: watching.signal },
        )) {
          if (r.event) seen.set(r.event.id, r.event);
        }
      } catch (err) {
        if (!watching.signal.aborted) throw err;
      }
    })();
  });

  afterAll(async () => {
    watching.abort();
    await subscription.catch(() => {});
    for (const c of [gateway, iotcBridge, idigiListener, iotcEmulator, idigiEmulator, nats]) await c?.stop().catch(() => {});
    await network?.stop().catch(() => {});
  });

  it("application and route through the gateway: the iDigi devices appear in IoT Central with the model id, and their values arrive", async () => {
    const { iotc, idigi, routes } = clients();
    const created = await iotc.createApplication({
      application: {
        id: APPLICATION,
        displayName: "IoT Central emulator (system test)",
        idScope: ID_SCOPE,
        provisioningHost: "iotc-emulator:8883",
        gatewayHost: "iotc-emulator:8883",
        modelId: MODEL_ID,
        writablePropertyAck: WritablePropertyAck.COMPLETED,
        enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } },
      },
    });
    // Write-only: the answer says a key is held and never holds it.
    expect(created.application?.credentialKind).toBe("group_key");
    expect(JSON.stringify(created)).not.toContain(GROUP_KEY);

    const monitor = await idigi.createMonitor({
      topics: ["DataPoint"],
      format: PayloadFormat.JSON,
      batchSize: 50,
      batchDurationSeconds: 1,
      ackOption: AckOption.EXPLICIT,
      autoReplay: true,
      startSession: true,
    });
    monitorId = monitor.monitor!.id;
    await routes.createRoute({
      route: {
        id: ROUTE,
        source: { platform: Platform.IDIGI, connection: monitorId },
        sink: { platform: Platform.IOT_CENTRAL, target: APPLICATION },
        // The bridge makes the route's consumer when it sees the route: without a start it would begin at the first
        // event after that, and events emitted in between would be the route's to miss. The monitor is new, so
        // starting just before the route replays nothing else.
        startTime: timestampFromDate(new Date(Date.now() - 1000)),
      },
    });
    await untilUp("an active push session", async () =>
      (await idigi.listSessions({})).sessions.some((s) => s.monitorId === monitorId && s.state === 2),
    );

    await emit(30);
    await expectExactlyEmitted("steady state");

    // The emulator's three devices, each an IoT Central device named {connection}-{device} (normalised), with the model id.
    const named = await bridgeDevices();
    const sources = [...new Set([...seen.values()].map((e) => e.source!.device))].sort();
    expect(sources).toHaveLength(3);
    expect([...named.keys()].sort()).toEqual(sources);
    for (const [device, deviceId] of named) expect(deviceId).toBe(`${monitorId}-${device}`.toLowerCase());
    const listed = await emulatorJson<{ value: Array<{ id: string; template?: string; provisioned: boolean; enabled: boolean }> }>(
      "GET",
      "/api/devices",
    );
    const ours = listed.value.filter((d) => [...named.values()].includes(d.id));
    expect(ours.map((d) => [d.id, d.template, d.provisioned, d.enabled]).sort()).toEqual(
      [...named.values()].map((id) => [id, MODEL_ID, true, true]).sort(),
    );

    // Each device's last value in IoT Central is the value of the newest event the gateway saw from it.
    for (const [device, deviceId] of named) {
      const events = [...seen.values()]
        .filter((e) => e.source!.device === device)
        .sort((a, b) => timestampDate(a.observedTime!).getTime() - timestampDate(b.observedTime!).getTime());
      const newest = events.at(-1)!;
      const point = newest.points[0]!;
      expect(point.value.case).toBe("doubleValue");
      const last = await emulatorJson<{ timestamp: string; value: unknown }>("GET", `/api/devices/${deviceId}/telemetry/${point.name}`);
      expect(last.value, `${deviceId}/${point.name}`).toBe(point.value.value);
      expect(Date.parse(last.timestamp)).toBe(timestampDate(newest.observedTime!).getTime());
    }
  });

  it("a command from the application API reaches WatchCommands, and RespondCommand's status and payload are what the API returns", async () => {
    const { iotc } = clients();
    const deviceId = [...(await bridgeDevices()).values()].sort()[0]!;
    const ac = new AbortController();
    const commands: Command[] = [];
    const delivered = new Map<string, boolean>();
    const attemptOf = (c: Command) => (c.payload ? (toJson(ValueSchema, c.payload) as { attempt?: number } | null) : null)?.attempt;
    const answering = (async () => {
      try {
        for await (const r of iotc.watchCommands({ applicationId: APPLICATION, deviceId }, { signal: ac.signal })) {
          const command = r.command!;
          commands.push(command);
          const request = command.payload ? toJson(ValueSchema, command.payload) : null;
          const res = await iotc.respondCommand({
            applicationId: APPLICATION,
            requestId: command.requestId,
            status: 202,
            payload: fromJson(ValueSchema, { accepted: true, echo: request, requestId: command.requestId }),
          });
          delivered.set(command.requestId, res.delivered);
        }
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      }
    })();
    try {
      // The watch follows commands stored from when it is open, and its stream sends nothing before the first: a
      // command sent before it was open times out (504) unseen, and the next attempt is made.
      let answer: { status: number; json: unknown } | undefined;
      let attempt = 0;
      for (; attempt < 6; attempt++) {
        answer = await emulatorCall("POST", `/api/devices/${deviceId}/commands/reboot`, {
          request: { delaySeconds: 5, attempt },
          responseTimeout: 5,
        });
        if (answer.status !== 504 || commands.some((c) => attemptOf(c) === attempt)) break;
      }
      expect(answer?.status, JSON.stringify(answer?.json)).toBe(201);
      const command = commands.find((c) => attemptOf(c) === attempt)!;
      expect(command).toBeDefined();
      expect(command.name).toBe("reboot");
      expect(command.component).toBe("");
      expect(command.offline).toBe(false);
      expect(command.target).toMatchObject({ platform: Platform.IOT_CENTRAL, connection: APPLICATION, device: deviceId });
      expect(command.deadline).toBeDefined();
      const body = answer!.json as { responseCode: number; response: unknown; request: unknown };
      expect(body.responseCode).toBe(202);
      expect(body.request).toEqual({ delaySeconds: 5, attempt });
      expect(body.response).toEqual({ accepted: true, echo: { delaySeconds: 5, attempt }, requestId: command.requestId });
      await untilUp("RespondCommand answered", async () => delivered.has(command.requestId), 10_000);
      expect(delivered.get(command.requestId)).toBe(true);
    } finally {
      ac.abort();
      await answering;
    }
  });

  it("a writable property written through the application API reaches WatchProperties and the device reports its ack with the version", async () => {
    const { iotc } = clients();
    const deviceId = [...(await bridgeDevices()).values()].sort()[1]!;
    const ac = new AbortController();
    const updates: WritablePropertyUpdate[] = [];
    const following = (async () => {
      try {
        for await (const r of iotc.watchProperties({ applicationId: APPLICATION, deviceId }, { signal: ac.signal }))
          updates.push(r.update!);
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      }
    })();
    try {
      // As with commands, a write made before the watch was open is not shown to it: write again with a new value.
      let version = 0;
      let value = 0;
      for (let attempt = 0; attempt < 6; attempt++) {
        value = 21 + attempt / 10;
        const written = await emulatorJson<{ $metadata: { targetTemperature: { desiredValue: unknown; desiredVersion: number } } }>(
          "PATCH",
          `/api/devices/${deviceId}/properties`,
          { targetTemperature: value },
          202,
        );
        version = written.$metadata.targetTemperature.desiredVersion;
        expect(written.$metadata.targetTemperature.desiredValue).toBe(value);
        const v = version;
        const shown = await until(async () => updates.some((u) => Number(u.version) === v), {
          what: "the write on WatchProperties",
          timeoutMs: 4000,
          intervalMs: 200,
        }).then(
          () => true,
          () => false,
        );
        if (shown) break;
      }
      const update = updates.find((u) => Number(u.version) === version);
      expect(update, `no update with version ${version} among ${updates.map((u) => u.version).join(", ")}`).toBeDefined();
      expect(update!.name).toBe("targetTemperature");
      expect(update!.component).toBe("");
      expect(update!.value ? toJson(ValueSchema, update!.value) : undefined).toBe(value);
      expect(update!.target).toMatchObject({ platform: Platform.IOT_CENTRAL, connection: APPLICATION, device: deviceId });

      // The application is set to acknowledge "completed" once the bus stored the change: ac 200, av = the version.
      await untilUp(
        "the ack in the reported properties",
        async () => {
          const twin = await emulatorJson<{ reported: Record<string, { av?: number } | undefined> }>(
            "GET",
            `/_emulator/devices/${deviceId}/twin`,
          );
          return twin.reported.targetTemperature?.av === version;
        },
        20_000,
      );
      const twin = await emulatorJson<{ reported: Record<string, unknown> }>("GET", `/_emulator/devices/${deviceId}/twin`);
      expect(twin.reported.targetTemperature).toMatchObject({ value, ac: 200, av: version });
      const properties = await emulatorJson<{ targetTemperature: unknown; $metadata: Record<string, Record<string, unknown>> }>(
        "GET",
        `/api/devices/${deviceId}/properties`,
      );
      expect(properties.targetTemperature).toBe(value);
      expect(properties.$metadata.targetTemperature).toMatchObject({
        desiredValue: value,
        desiredVersion: version,
        ackVersion: version,
        ackCode: 200,
      });
    } finally {
      ac.abort();
      await following;
    }
  });

  it("kill -9 of iotc-bridge: the events published meanwhile arrive once each after its restart, which registers no device again", async () => {
    const before = new Map((await emulatorDevices()).filter((d) => d.deviceId.startsWith(`${monitorId}-`)).map((d) => [d.deviceId, d]));
    expect(before.size).toBe(3);
    // The bus message behind the last PUBACK is acknowledged right after it; let that happen before the kill.
    await new Promise((r) => setTimeout(r, 2000));
    await docker("kill", "--signal", "KILL", iotcBridge.getId());
    await emit(60);
    await untilUp("the events on the bus while the bridge is down", async () => seen.size >= emitted, 60_000);
    await docker("start", iotcBridge.getId());
    await expectExactlyEmitted("after kill -9 of iotc-bridge");
    const after = (await emulatorDevices()).filter((d) => d.deviceId.startsWith(`${monitorId}-`));
    // No re-provisioning: the registrations cached in KV were used; the devices connected to the hub again.
    expect(Object.fromEntries(after.map((d) => [d.deviceId, d.registrations]))).toEqual(
      Object.fromEntries([...before.values()].map((d) => [d.deviceId, d.registrations])),
    );
    for (const d of after) expect(d.connects, d.deviceId).toBeGreaterThan(before.get(d.deviceId)!.connects);
  });

  it("bad input through the gateway is refused with its code and field, and nothing already accepted is lost", async () => {
    const { iotc } = clients();
    const deviceId = "system-api-device";
    const accepted = await iotc.sendTelemetry({
      applicationId: APPLICATION,
      deviceId,
      payload: { temperature: 19.5 },
      messageId: "system-accepted-1",
    });
    expect(accepted.messageId).toBe("system-accepted-1");

    const payload = { temperature: 20 };
    expect(await expectCode(iotc.getApplication({ id: "no-such-application" }), Code.NotFound)).toMatch(/no-such-application/);
    expect(await expectCode(iotc.sendTelemetry({ applicationId: "no-such-application", deviceId, payload }), Code.NotFound)).toMatch(
      /no-such-application/,
    );
    expect(
      await expectCode(iotc.sendTelemetry({ applicationId: APPLICATION, deviceId: "Bad Device!", payload }), Code.InvalidArgument),
    ).toMatch(/device_id/);
    const oversize = { blob: "x".repeat(300 * 1024) };
    expect(await expectCode(iotc.sendTelemetry({ applicationId: APPLICATION, deviceId, payload: oversize }), Code.InvalidArgument)).toMatch(
      /payload.*262144/,
    );

    // What was accepted before is there once, and what comes after still arrives exactly once.
    const apiMessages = (await emulatorTelemetry()).filter((m) => m.deviceId === deviceId);
    expect(apiMessages.map((m) => [m.messageId, m.json])).toEqual([["system-accepted-1", { temperature: 19.5 }]]);
    expect((await emulatorDevices()).map((d) => d.deviceId)).not.toContain("bad device!");
    await emit(15);
    await expectExactlyEmitted("after the refused requests");
  });

  it("no container's log holds a secret of this run (group key, API token, credentials key, NATS passwords, API keys)", async () => {
    const secrets = {
      "the enrollment group key": GROUP_KEY,
      "the application API token": API_TOKEN,
      "the API token's signature": new URLSearchParams(API_TOKEN.replace(/^SharedAccessSignature /, "")).get("sig")!,
      IOTC_CREDENTIALS_KEY,
      ...Object.fromEntries(Object.entries(NATS_USERS).map(([user, u]) => [`NATS password of ${user}`, u.password])),
      ...Object.fromEntries(Object.entries(TEST_KEYS).map(([name, key]) => [`API key ${name}`, key])),
    };
    const leaks: string[] = [];
    let lines = 0;
    for (const [name, c] of Object.entries({ gateway, iotcBridge, idigiListener, iotcEmulator, idigiEmulator, nats })) {
      const log = await containerLogs(c);
      lines += log.split("\n").length;
      for (const [what, value] of Object.entries(secrets)) if (log.includes(value)) leaks.push(`${name}: ${what}`);
    }
    expect(lines).toBeGreaterThan(20);
    expect(leaks).toEqual([]);
  });
});

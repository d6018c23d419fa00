import { randomBytes } from "node:crypto";
import * as https from "node:https";
import * as tls from "node:tls";
import { type JsonObject, toJsonString } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CreateTwinResponseSchema,
  LifecycleState,
  OciTwinManagerService,
  TwinDataSet,
  TwinKind,
} from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { EndpointKind, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { expectCode, TEST_KEYS, testCredential } from "@meridian/testing";
import { Network, type StartedNetwork, type StartedTestContainer } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, containerLogs, docker, NATS_USERS, serviceImage, startNats, startService, untilUp } from "./harness.js";

/**
 * Secrets of this run: the device's secret (the emulator's vault secret named by the twin's auth id), the ORDS data
 * credentials, the manager's credentials key, the PI password. The last test reads every container's log for them.
 */
const DEVICE_SECRET = `device-${randomBytes(16).toString("hex")}`;
const DATA_CLIENT_SECRET = `client-${randomBytes(16).toString("hex")}`;
const DATA_PASSWORD = `password-${randomBytes(16).toString("hex")}`;
const OCI_CREDENTIALS_KEY = randomBytes(32).toString("base64");
const PI_PASSWORD = `pi-${randomBytes(12).toString("hex")}`;
const DOMAIN_ID = "ocid1.iotdomain.oc1.eu-frankfurt-1.systemtestdomain";
const AUTH_ID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.systemtestm5secret";
const TWIN = "m5-env-sys";
const EXTERNAL_KEY = "meridian-m5-env-sys-01";
const SPEC_URI = "dtmi:com:oracle:meridian:system:m5:env;1";
/**
 * Where the emulator writes its CA (in a directory that exists: the emulator makes none for it) and its API key (an
 * OCI config file and key.pem); the manager gets them at the same paths.
 */
const CA_FILE = "/tmp/oci-emulator-ca.pem";
const API_KEY_DIR = "/tmp/oci-api-key";
/** Observation n of the device happens at this time plus n seconds. */
const TIME_BASE = Date.UTC(2025, 0, 1);
const HISTORIZED = ["sht_temperature", "qmp_temperature", "humidity", "pressure"] as const;

/** manage-dt's custom-adapter M5 twin (m5_model_custom.json, m5_adapter_envelope.json, m5_adapter_routes.json). */
function m5Spec(): JsonObject {
  const measure = (name: string, semantic: string, unit: string): JsonObject => ({
    "@type": ["Telemetry", "Historized", semantic],
    name,
    schema: "double",
    unit,
  });
  return {
    "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1", "dtmi:dtdl:extension:quantitativeTypes;1"],
    "@id": "dtmi:com:oracle:placeholder;1",
    "@type": "Interface",
    contents: [
      measure("sht_temperature", "Temperature", "degreeCelsius"),
      measure("qmp_temperature", "Temperature", "degreeCelsius"),
      measure("humidity", "RelativeHumidity", "percent"),
      measure("pressure", "Pressure", "hectopascal"),
      { "@type": "Telemetry", name: "count", schema: "integer", displayName: "Message Count" },
      { "@type": ["Telemetry", "Historized"], name: "system", schema: { "@type": "Object", fields: [] }, displayName: "System Message" },
    ],
  };
}
const M5_ENVELOPE: JsonObject = {
  envelopeMapping: { timeObserved: "$.time" },
  referenceEndpoint: "iot/v1/telemetry",
  referencePayload: { dataFormat: "JSON", data: { count: 0, humidity: 0, pressure: 0, qmp_temperature: 0, sht_temperature: 0, time: 0 } },
};
function m5Routes(): JsonObject[] {
  return [
    {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq condition
      condition: '${endpoint(3) == "telemetry"}',
      description: "Environment data",
      payloadMapping: Object.fromEntries(["count", ...HISTORIZED].map((c) => [`$.${c}`, `$.${c}`])),
    },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq expression (the whole payload)
    { condition: "*", description: "Default condition", payloadMapping: { "$.system": "${.}" } },
  ];
}

/** What the M5 device sends as observation n: the values and its time (epoch µs, the envelope's timeObserved). */
function m5Payload(n: number): Record<string, number> {
  return {
    sht_temperature: 20 + (n % 100) / 10,
    qmp_temperature: 21 + (n % 100) / 10,
    humidity: 40 + (n % 50),
    pressure: 1000 + (n % 30),
    count: n,
    time: (TIME_BASE + n * 1000) * 1000,
  };
}

interface PiValue {
  [property: string]: unknown;
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
 * Device → OCI IoT emulator (device host, adapter, ORDS) → oci-twin-manager → NATS → omf-sender → PI emulator, every
 * container built from this repository, set up only through the gateway and observed through the emulators' own
 * surfaces (the device host as the device, the PI emulator's state, the OCI emulator's admin port for faults).
 */
describe("system: OCI IoT twin → NATS → PI through the gateway", () => {
  let network: StartedNetwork;
  let nats: StartedTestContainer;
  let omfEmulator: StartedTestContainer;
  let ociEmulator: StartedTestContainer;
  let omfSender: StartedTestContainer;
  let manager: StartedTestContainer;
  let gateway: StartedTestContainer;
  let emulatorCa = "";
  let apiKeyPem = "";
  /** Observations the device sent that the adapter accepted: their numbers. */
  const sent: number[] = [];
  /** How many times the gateway's Subscribe saw each event id of the OCI twin. */
  const seen = new Map<string, number>();
  const seenEvents: TelemetryEvent[] = [];
  const watching = new AbortController();
  let subscription: Promise<void> = Promise.resolve();

  const clients = () => {
    const transport = createConnectTransport({ interceptors: [testCredential()], baseUrl: baseUrl(gateway), httpVersion: "1.1" });
    return {
      oci: createClient(OciTwinManagerService, transport),
      omf: createClient(OmfSenderService, transport),
      routes: createClient(RouteService, transport),
      telemetry: createClient(TelemetryService, transport),
    };
  };
  const byKey = { ref: { case: "key" as const, value: TWIN } };

  /**
   * An HTTPS POST to the emulated device host from the host, as the twin's device (Basic external key : device secret),
   * trusting only the emulator's CA; the mapped port may be on an address the certificate does not name (the
   * certificate always names localhost).
   */
  function postAsDevice(
    payload: unknown,
    endpoint = "iot/v1/telemetry",
    secret = DEVICE_SECRET,
  ): Promise<{ status: number; body: string }> {
    const url = new URL(`/${endpoint}`, `https://${ociEmulator.getHost()}:${ociEmulator.getMappedPort(8445)}`);
    const body = JSON.stringify(payload);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method: "POST",
          ca: emulatorCa,
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity("localhost", cert),
          headers: {
            authorization: `Basic ${Buffer.from(`${EXTERNAL_KEY}:${secret}`).toString("base64")}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("device post: no answer in 30 s")));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** Sends observations from..from+count-1 as the device, `gapMs` apart; each must be accepted (2xx). */
  async function send(count: number, gapMs = 0, onEach?: (i: number) => Promise<void>): Promise<void> {
    const from = sent.length === 0 ? 0 : Math.max(...sent) + 1;
    for (let i = 0; i < count; i++) {
      const res = await postAsDevice(m5Payload(from + i));
      expect(res.status, res.body).toBeGreaterThanOrEqual(200);
      expect(res.status, res.body).toBeLessThan(300);
      sent.push(from + i);
      await onEach?.(i);
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  async function admin(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${baseUrl(ociEmulator, 8081)}/_emulator/${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    expect(res.status, `${method} /_emulator/${path}: ${text}`).toBeLessThan(300);
    return text ? JSON.parse(text) : undefined;
  }

  /** Every value the PI emulator holds, across containers. */
  async function piValues(): Promise<PiValue[]> {
    const res = await fetch(`${baseUrl(omfEmulator, 8443)}/_emulator/state?scope=pi`);
    const state = (await res.json()) as { scopes: { pi: { containers: Record<string, { values?: PiValue[] }> } } };
    return Object.values(state.scopes.pi.containers).flatMap((c) => c.values ?? []);
  }

  /**
   * Every accepted observation is one event on the bus, seen once, and one value in PI at its observed time with the
   * values the device sent; nothing else is in PI.
   */
  async function expectExactlySent(what: string): Promise<void> {
    await untilUp(`${sent.length} events on the bus (${what})`, async () => seen.size >= sent.length, 90_000);
    await untilUp(`${sent.length} values in PI (${what})`, async () => (await piValues()).length >= sent.length, 90_000);
    // Linger: a duplicate would arrive right behind.
    await new Promise((r) => setTimeout(r, 2000));
    const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
    expect(twice, `${what}: events on the bus more than once`).toEqual([]);
    expect(seen.size, what).toBe(sent.length);
    const values = await piValues();
    const byTime = new Map<number, PiValue[]>();
    for (const v of values) {
      const t = Date.parse(String(v.Timestamp ?? v.timestamp));
      byTime.set(t, [...(byTime.get(t) ?? []), v]);
    }
    const expected = sent.map((n) => TIME_BASE + n * 1000).sort((a, b) => a - b);
    expect(
      [...byTime.keys()].sort((a, b) => a - b),
      `${what}: the observed times in PI`,
    ).toEqual(expected);
    expect(values.length, `${what}: values in PI`).toBe(sent.length);
    for (const n of sent) {
      const [v] = byTime.get(TIME_BASE + n * 1000)!;
      const p = m5Payload(n);
      for (const c of HISTORIZED) expect(v![c], `${what}: ${c} of observation ${n}`).toBe(p[c]);
    }
  }

  beforeAll(async () => {
    for (const folder of ["emulators/oci", "emulators/omf", "services/oci-twin-manager", "services/omf-sender", "services/gateway"])
      serviceImage(folder).catch(() => {});
    network = await new Network().start();
    nats = await startNats(network);
    await together(
      startService(
        network,
        "emulators/omf",
        "omf-emulator",
        { OMF_EMULATOR_TLS: "false", OMF_EMULATOR_PI_PASSWORD: PI_PASSWORD, HEALTHCHECK_URL: "http://127.0.0.1:8443/_emulator/health" },
        8443,
        "/_emulator/health",
      ).then((c) => {
        omfEmulator = c;
      }),
      startService(
        network,
        "emulators/oci",
        "oci-emulator",
        {
          OCI_EMU_CONTROL_PORT: "8443",
          OCI_EMU_DATA_PORT: "8444",
          OCI_EMU_DEVICE_PORT: "8445",
          OCI_EMU_ADMIN_PORT: "8081",
          OCI_EMU_TLS: "true",
          // Its certificate names the alias the manager dials for all three listeners.
          OCI_EMU_TLS_HOSTNAMES: "oci-emulator",
          OCI_EMU_CA_FILE: CA_FILE,
          OCI_EMU_API_KEY_DIR: API_KEY_DIR,
          OCI_EMU_DOMAIN_ID: DOMAIN_ID,
          OCI_EMU_DATA_CLIENT_ID: "system-test-client",
          OCI_EMU_DATA_CLIENT_SECRET: DATA_CLIENT_SECRET,
          OCI_EMU_DATA_USERNAME: "system-test-user",
          OCI_EMU_DATA_PASSWORD: DATA_PASSWORD,
          OCI_EMU_VAULT_SECRETS: `${AUTH_ID}=${DEVICE_SECRET}`,
          HEALTHCHECK_URL: "http://127.0.0.1:8081/_emulator/health",
        },
        8081,
        "/_emulator/health",
        [8445],
      ).then((c) => {
        ociEmulator = c;
      }),
    );
    // The CA and API key the emulator wrote at start, as compose shares them through volumes.
    const read = async (path: string) => {
      const r = await ociEmulator.exec(["cat", path]);
      expect(r.exitCode, r.output).toBe(0);
      return r.output;
    };
    emulatorCa = await read(CA_FILE);
    expect(emulatorCa).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const ociConfig = await read(`${API_KEY_DIR}/config`);
    expect(ociConfig).toContain(`key_file=${API_KEY_DIR}/key.pem`);
    apiKeyPem = await read(`${API_KEY_DIR}/key.pem`);

    const natsEnv = { NATS_URL: "nats://nats:4222" };
    await together(
      startService(
        network,
        "services/omf-sender",
        "omf-sender",
        {
          ...natsEnv,
          OMF_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
          OMF_ALLOW_INSECURE_ENDPOINTS: "true",
          OMF_ALLOWED_HOSTS: "omf-emulator",
        },
        8081,
      ).then((c) => {
        omfSender = c;
      }),
      startService(
        network,
        "services/oci-twin-manager",
        "oci-twin-manager",
        {
          ...natsEnv,
          OCI_CREDENTIALS_KEY,
          OCI_AUTH: "api_key",
          OCI_CONFIG_FILE: `${API_KEY_DIR}/config`,
          OCI_IOT_ENDPOINT: "https://oci-emulator:8443",
          OCI_DATA_URL: "https://oci-emulator:8444",
          OCI_IDENTITY_URL: "https://oci-emulator:8444",
          OCI_DEVICE_URL: "https://oci-emulator:8445",
          OCI_CA_FILE: CA_FILE,
          OCI_IOT_DOMAIN_ID: DOMAIN_ID,
          OCI_DATA_CLIENT_ID: "system-test-client",
          OCI_DATA_CLIENT_SECRET: DATA_CLIENT_SECRET,
          OCI_DATA_USERNAME: "system-test-user",
          OCI_DATA_PASSWORD: DATA_PASSWORD,
          OCI_REQUEST_TIMEOUT_MS: "10000",
        },
        8085,
        "/readyz",
        [],
        [
          { content: emulatorCa, target: CA_FILE },
          { content: ociConfig, target: `${API_KEY_DIR}/config` },
          { content: apiKeyPem, target: `${API_KEY_DIR}/key.pem` },
        ],
      ).then((c) => {
        manager = c;
      }),
    );
    gateway = await startService(network, "services/gateway", "gateway", {
      ...natsEnv,
      OMF_SENDER_URL: "http://omf-sender:8081",
      OCI_TWIN_MANAGER_URL: "http://oci-twin-manager:8085",
    });

    // Everything OCI twins put on the bus from now on, as the gateway's subscribers see it.
    const from = timestampFromDate(new Date(Date.now() - 5_000));
    subscription = (async () => {
      try {
        for await (const r of clients().telemetry.subscribe(
          { filter: { platform: Platform.OCI_IOT }, startTime: from },
          { signal: watching.signal },
        )) {
          if (!r.event) continue;
          seen.set(r.event.id, (seen.get(r.event.id) ?? 0) + 1);
          seenEvents.push(r.event);
        }
      } catch (err) {
        if (!watching.signal.aborted) throw err;
      }
    })();
  });

  afterAll(async () => {
    watching.abort();
    await subscription.catch(() => {});
    for (const c of [gateway, manager, omfSender, ociEmulator, omfEmulator, nats]) await c?.stop().catch(() => {});
    await network?.stop().catch(() => {});
  });

  it("CreateTwin (manage-dt's custom-adapter M5 twin, historized source) and a route into PI: the device's observations are in PI once each, at their observed times", async () => {
    const { oci, omf, routes } = clients();
    await omf.createEndpoint({
      endpoint: {
        id: "pi",
        kind: EndpointKind.PI,
        url: "http://omf-emulator:8443/piwebapi",
        allowHttp: true,
        username: "meridian",
        secret: PI_PASSWORD,
      },
    });
    const created = await oci.createTwin({
      twin: {
        key: TWIN,
        displayName: "meridian-m5-env-sys-01",
        externalKey: EXTERNAL_KEY,
        authId: AUTH_ID,
        deviceSecret: DEVICE_SECRET,
        model: { specUri: SPEC_URI, description: "M5 with EnvIII sensors (system test)", spec: m5Spec() },
        adapter: { displayName: "meridian-m5-env-sys-adapter", inboundEnvelope: M5_ENVELOPE, inboundRoutes: m5Routes() },
        source: { historized: true, pollIntervalMs: 500 },
      },
    });
    expect(created.created).toBe(true);
    const twin = created.twin!;
    expect(twin.kind).toBe(TwinKind.CUSTOM_ADAPTER);
    expect(twin.iotDomainId).toBe(DOMAIN_ID);
    expect(twin.deviceSecretSet).toBe(true);
    expect(twin.instance?.lifecycleState).toBe(LifecycleState.ACTIVE);
    expect(twin.instance?.externalKey).toBe(EXTERNAL_KEY);
    expect(twin.model?.specUri).toBe(SPEC_URI);
    expect(toJsonString(CreateTwinResponseSchema, created)).not.toContain(DEVICE_SECRET);
    // The same twin again: nothing new.
    const again = await oci.createTwin({
      twin: {
        key: TWIN,
        displayName: "meridian-m5-env-sys-01",
        externalKey: EXTERNAL_KEY,
        authId: AUTH_ID,
        model: { specUri: SPEC_URI, description: "M5 with EnvIII sensors (system test)", spec: m5Spec() },
        adapter: { displayName: "meridian-m5-env-sys-adapter", inboundEnvelope: M5_ENVELOPE, inboundRoutes: m5Routes() },
        source: { historized: true, pollIntervalMs: 500 },
      },
    });
    expect(again.created).toBe(false);
    expect(again.twin?.instance?.id).toBe(twin.instance?.id);

    await routes.createRoute({
      route: {
        id: "oci-to-pi",
        source: { platform: Platform.OCI_IOT, connection: DOMAIN_ID },
        sink: { platform: Platform.OMF, target: "pi" },
        startTime: timestampFromDate(new Date(Date.now() - 1000)),
      },
    });

    await send(20, 50);
    await expectExactlySent("steady state");
    // The events name the twin as the design says: the domain, the device's external key, a point per Historized content.
    const e = seenEvents[0]!;
    expect(e.source).toMatchObject({ platform: Platform.OCI_IOT, connection: DOMAIN_ID, device: EXTERNAL_KEY });
    expect(e.points.map((p) => p.name).sort()).toEqual([...HISTORIZED].sort());

    // manage-dt's query through the gateway: the historized rows and the latest content.
    const rows = await oci.queryTwinData({
      twin: byKey,
      dataSet: TwinDataSet.HISTORIZED,
      startTime: timestampFromDate(new Date(TIME_BASE - 1000)),
      limit: 500,
    });
    expect(rows.rows).toHaveLength(20 * HISTORIZED.length);
    const content = await oci.getTwinContent({ twin: byKey });
    expect(content.content).toMatchObject({ sht_temperature: m5Payload(19).sht_temperature, count: 19 });
  });

  it("kill -9 of oci-twin-manager mid-stream and a restart: every historized row reaches PI exactly once", async () => {
    await send(40, 50, async (i) => {
      if (i === 10) await docker("kill", "--signal", "KILL", manager.getId());
    });
    await docker("start", manager.getId());
    await expectExactlySent("after kill -9 of oci-twin-manager");
  });

  it("ORDS answering 500 for ~10 s: nothing lost, caught up after", async () => {
    const before = (await admin("GET", "state")) as { requests: Record<string, number> };
    await admin("POST", "faults", { target: "data", status: 500 });
    const outage = Date.now();
    await send(20, 200);
    const left = 10_000 - (Date.now() - outage);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    await admin("DELETE", "faults");
    const during = (await admin("GET", "state")) as { requests: Record<string, number> };
    // The manager did ask ORDS during the outage, and was refused.
    const refused = (s: typeof before) =>
      Object.entries(s.requests)
        .filter(([k]) => / 500$/.test(k) && !k.startsWith("ingest"))
        .reduce((n, [, v]) => n + v, 0);
    expect(refused(during)).toBeGreaterThan(refused(before));
    await expectExactlySent("after a 10 s ORDS outage");
  });

  it("a payload the adapter rejects is in QueryTwinData's rejected rows with its reason, and nowhere else", async () => {
    const { oci } = clients();
    const bad = { ...m5Payload(100_000), sht_temperature: "hot" };
    const res = await postAsDevice(bad);
    expect(res.status, res.body).toBeLessThan(300);
    let rejected: JsonObject[] = [];
    await untilUp(
      "the rejected row",
      async () => {
        rejected = (await oci.queryTwinData({ twin: byKey, dataSet: TwinDataSet.REJECTED, lastMinutes: 10, includeContent: true }))
          .rows as JsonObject[];
        return rejected.length > 0;
      },
      30_000,
    );
    expect(rejected).toHaveLength(1);
    const row = rejected[0]!;
    expect(typeof row.reason_code).toBe("number");
    expect(String(row.reason_message)).toContain("sht_temperature");
    expect(row.content).toMatchObject({ sht_temperature: "hot" });
    // Not historized, so not on the bus nor in PI: what was sent before is all there is.
    await expectExactlySent("after a rejected payload");
  });

  it("bad input through the gateway: an invalid DTDL model, a route mapping an unknown content, an unknown OCID — its code and field; nothing accepted is lost", async () => {
    const { oci } = clients();
    const modelsBefore = (await oci.listDigitalTwinModels({ lifecycleState: LifecycleState.ACTIVE })).models.map((m) => m.id);
    const instancesBefore = (await oci.listDigitalTwinInstances({ lifecycleState: LifecycleState.ACTIVE })).instances.map((i) => i.id);

    const invalid = { ...m5Spec(), "@type": "Thing" };
    const dtdl = await expectCode(
      oci.createTwin({
        twin: { key: "bad-dtdl", displayName: "bad-dtdl", model: { specUri: "dtmi:com:meridian:system:bad;1", spec: invalid } },
      }),
      Code.InvalidArgument,
    );
    expect(dtdl).toContain("twin.model.spec.@type");

    const routes = m5Routes();
    (routes[0]!.payloadMapping as JsonObject)["$.temperature"] = "$.temp";
    const mapping = await expectCode(
      oci.createTwin({
        twin: {
          key: "bad-route",
          displayName: "bad-route",
          model: { specUri: "dtmi:com:meridian:system:badroute;1", spec: m5Spec() },
          adapter: { inboundEnvelope: M5_ENVELOPE, inboundRoutes: routes },
        },
      }),
      Code.InvalidArgument,
    );
    expect(mapping).toContain('twin.adapter.inbound_routes[0].payloadMapping["$.temperature"]');
    expect(mapping).toContain('"temperature"');

    const unknown = `ocid1.iotdigitaltwininstance.oc1.eu-frankfurt-1.${"x".repeat(24)}`;
    expect(await expectCode(oci.getTwin({ twin: { ref: { case: "instanceId", value: unknown } } }), Code.NotFound)).toContain(unknown);
    expect(await expectCode(oci.getTwin({ twin: { ref: { case: "key", value: "bad-dtdl" } } }), Code.NotFound)).toContain("bad-dtdl");

    // Nothing was made in OCI by the refused requests; the twin is as it was and its data still flows, once.
    expect((await oci.listDigitalTwinModels({ lifecycleState: LifecycleState.ACTIVE })).models.map((m) => m.id)).toEqual(modelsBefore);
    expect((await oci.listDigitalTwinInstances({ lifecycleState: LifecycleState.ACTIVE })).instances.map((i) => i.id)).toEqual(
      instancesBefore,
    );
    const { twins } = await oci.listTwins({});
    expect(twins.map((t) => t.key)).toEqual([TWIN]);
    await send(10, 50);
    await expectExactlySent("after the refused requests");
  });

  it("no container's log holds a secret of this run (device secret, data credentials, keys, passwords, API keys)", async () => {
    const secrets = {
      "the device secret": DEVICE_SECRET,
      "the data client secret": DATA_CLIENT_SECRET,
      "the data user's password": DATA_PASSWORD,
      OCI_CREDENTIALS_KEY,
      PI_PASSWORD,
      "the OCI API private key": apiKeyPem.split("\n").find((l) => l.length > 60) ?? apiKeyPem,
      ...Object.fromEntries(Object.entries(NATS_USERS).map(([user, u]) => [`NATS password of ${user}`, u.password])),
      ...Object.fromEntries(Object.entries(TEST_KEYS).map(([name, key]) => [`API key ${name}`, key])),
    };
    const leaks: string[] = [];
    let lines = 0;
    for (const [name, c] of Object.entries({ gateway, manager, omfSender, ociEmulator, omfEmulator, nats })) {
      const log = await containerLogs(c);
      lines += log.split("\n").length;
      for (const [what, value] of Object.entries(secrets)) if (log.includes(value)) leaks.push(`${name}: ${what}`);
    }
    expect(lines).toBeGreaterThan(20);
    expect(leaks).toEqual([]);
  });
});

/** What oci-twin-manager's integration tests share: nats-server, the OCI emulator, the service started against both. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonObject } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { LifecycleState, OciTwinManagerService } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { type OciEmulator, startOciEmulator } from "@meridian/emulator-oci";
import { type NatsServerHandle, startForTest, startNatsServer, testTransport } from "@meridian/testing";
import { afterAll, beforeAll } from "vitest";
import { ociTwinManagerConfig } from "../src/config.js";
import { type OciTwinManager, type OciTwinManagerOptions, startOciTwinManager } from "../src/service.js";
import { M5_ENVELOPE, M5_ROUTES, m5ModelCustom, m5ModelDefault } from "./m5.js";

/** A test key for OCI_CREDENTIALS_KEY. */
export const CREDENTIALS_KEY = Buffer.alloc(32, 12).toString("base64");
/** The vault secret the sample twins' auth id names, and its plaintext (the device's password). */
export const AUTH_ID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.m5devicesecret";
export const DEVICE_SECRET = "m5-device-secret-1";

/** A TwinSpec as a test writes it: both a CreateTwin init and its proto JSON (for OCI_TWINS_FILE). */
export interface TwinSpecInit {
  key: string;
  displayName: string;
  iotDomainId?: string;
  description?: string;
  externalKey?: string;
  authId?: string;
  deviceSecret?: string;
  model?: { specUri: string; displayName?: string; description?: string; spec: JsonObject };
  adapter?: { displayName?: string; description?: string; inboundEnvelope?: JsonObject; inboundRoutes?: JsonObject[] };
  source?: { historized?: boolean; raw?: boolean; rejected?: boolean; pollIntervalMs?: number };
}
export type Api = Client<typeof OciTwinManagerService>;

export function api(url: string): Api {
  return createClient(OciTwinManagerService, testTransport(url));
}

export interface TestWorld {
  nats: NatsServerHandle;
  emulator: OciEmulator;
  /** The environment the service is started with (the emulator's URLs, CA, API key file and data credentials). */
  env: Record<string, string>;
  dir: string;
  stop(): Promise<void>;
}

/**
 * nats-server and the OCI emulator over TLS, with the files a deployment mounts: the OCI config (profile DEFAULT with
 * the emulator's registered API key) and the emulator's CA.
 */
export async function startWorld(): Promise<TestWorld> {
  const nats = await startNatsServer();
  const emulator = await startOciEmulator({});
  const dir = mkdtempSync(join(tmpdir(), "oci-twin-manager-"));
  const keyFile = join(dir, "key.pem");
  writeFileSync(keyFile, emulator.apiKey.privateKeyPem, { mode: 0o600 });
  const configFile = join(dir, "config");
  writeFileSync(
    configFile,
    [
      "[DEFAULT]",
      `user=${emulator.apiKey.user}`,
      `fingerprint=${emulator.apiKey.fingerprint}`,
      `tenancy=${emulator.apiKey.tenancy}`,
      "region=eu-frankfurt-1",
      `key_file=${keyFile}`,
      "",
    ].join("\n"),
  );
  const env: Record<string, string> = {
    NATS_URL: nats.url,
    OCI_CREDENTIALS_KEY: CREDENTIALS_KEY,
    OCI_AUTH: "api_key",
    OCI_CONFIG_FILE: configFile,
    OCI_PROFILE: "DEFAULT",
    OCI_IOT_ENDPOINT: emulator.controlUrl,
    OCI_DATA_URL: emulator.dataUrl,
    OCI_DEVICE_URL: emulator.deviceUrl,
    OCI_IDENTITY_URL: emulator.identityUrl,
    OCI_IOT_DOMAIN_ID: emulator.domain.id,
    OCI_DATA_CLIENT_ID: emulator.dataAccess.clientId,
    OCI_DATA_CLIENT_SECRET: emulator.dataAccess.clientSecret,
    OCI_DATA_USERNAME: emulator.dataAccess.username,
    OCI_DATA_PASSWORD: emulator.dataAccess.password,
    OCI_REQUEST_TIMEOUT_MS: "10000",
  };
  if (emulator.caPem) {
    const caFile = join(dir, "ca.pem");
    writeFileSync(caFile, emulator.caPem);
    env["OCI_CA_FILE"] = caFile;
  }
  emulator.addVaultSecret(AUTH_ID, DEVICE_SECRET);
  return {
    nats,
    emulator,
    env,
    dir,
    async stop() {
      await emulator.stop();
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function startManager(
  world: TestWorld,
  env: Record<string, string | undefined> = {},
  options: OciTwinManagerOptions = {},
): Promise<OciTwinManager> {
  return startForTest(
    startOciTwinManager,
    ociTwinManagerConfig,
    { INSTANCE_ID: "test", ...world.env, ...env },
    { deleteWaitMs: 10_000, ...options },
  );
}

/** What a test file of the API runs against: read its fields inside the tests (they are set before the first one). */
export interface ManagerFixture {
  world: TestWorld;
  svc: OciTwinManager;
  client: Api;
}

/** The world and oci-twin-manager on it for the calling test file: started before its tests, stopped after them. */
export function managerForFile(): ManagerFixture {
  const f = {} as ManagerFixture;
  beforeAll(async () => {
    f.world = await startWorld();
    f.svc = await startManager(f.world);
    f.client = api(f.svc.service.url);
  });
  afterAll(async () => {
    await f.svc?.stop();
    await f.world?.stop();
  });
  return f;
}

/** manage-dt's three sample twins (iot_config.distr.yaml), under a key and display name of the test's choosing. */
export function unstructuredTwin(key: string, over: Partial<TwinSpecInit> = {}): TwinSpecInit {
  return { key, displayName: `${key}-01`, externalKey: `${key}-device`, authId: AUTH_ID, ...over };
}

export function defaultAdapterTwin(key: string, specUri: string, over: Partial<TwinSpecInit> = {}): TwinSpecInit {
  return {
    key,
    displayName: `${key}-01`,
    externalKey: `${key}-device`,
    authId: AUTH_ID,
    model: { specUri, description: "M5Stack Env-III", spec: m5ModelDefault() },
    adapter: { displayName: `${key}-adapter` },
    ...over,
  };
}

export function customAdapterTwin(key: string, specUri: string, over: Partial<TwinSpecInit> = {}): TwinSpecInit {
  return {
    key,
    displayName: `${key}-01`,
    externalKey: `${key}-device`,
    authId: AUTH_ID,
    model: { specUri, description: "M5Stack Env-III (custom)", spec: m5ModelCustom() },
    adapter: { displayName: `${key}-adapter`, inboundEnvelope: M5_ENVELOPE, inboundRoutes: M5_ROUTES },
    ...over,
  };
}

/** The ACTIVE resources OCI holds in the domain, by OCID (through the service's own list RPCs). */
export async function activeIds(client: Api): Promise<{ instances: string[]; adapters: string[]; models: string[] }> {
  const [i, a, m] = await Promise.all([
    client.listDigitalTwinInstances({ lifecycleState: LifecycleState.ACTIVE, pageSize: 1000 }),
    client.listDigitalTwinAdapters({ lifecycleState: LifecycleState.ACTIVE, pageSize: 1000 }),
    client.listDigitalTwinModels({ lifecycleState: LifecycleState.ACTIVE, pageSize: 1000 }),
  ]);
  return { instances: i.instances.map((x) => x.id), adapters: a.adapters.map((x) => x.id), models: m.models.map((x) => x.id) };
}

/** A DTMI unique to the test run (OCI refuses a second ACTIVE model with the same spec URI). */
let seq = 0;
export function specUri(name: string): string {
  seq++;
  return `dtmi:com:meridian:test:${name.replaceAll("-", "_")}${seq};1`;
}

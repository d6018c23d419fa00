/**
 * What the pipeline tests (source.test.ts, sink.test.ts) share: nats-server and the OCI emulator, a structured twin
 * made in the emulator through the platform client and kept in the twin store as the service keeps it, and
 * OciPipelines on them with test-sized settings.
 */
import { Bus, DEAD_LETTER_HEADERS, routeConsumerName, STREAMS } from "@meridian/bus";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type OciEmulator, startOciEmulator } from "@meridian/emulator-oci";
import { SecretKeyring } from "@meridian/service-kit";
import { type NatsServerHandle, startNatsServer, testLogger } from "@meridian/testing";
import { OciDomains } from "../src/pipeline/domains.js";
import { OciPipelines } from "../src/pipeline/manager.js";
import { type StoredTwin, TwinStore } from "../src/pipeline/store.js";
import { createDigitalTwinsClient } from "../src/platform/index.js";
import type { DigitalTwinsClient, JsonObject, OciClientOptions } from "../src/platform/types.js";

export const logger = testLogger();
export const FAST = { initialMs: 50, maxMs: 300, multiplier: 2, jitter: 0 };

export interface PipelineWorld {
  nats: NatsServerHandle;
  emulator: OciEmulator;
  bus: Bus;
  client: DigitalTwinsClient;
  options: OciClientOptions;
  store: TwinStore;
  domains: OciDomains;
  stop(): Promise<void>;
}

export async function startPipelineWorld(): Promise<PipelineWorld> {
  const nats = await startNatsServer();
  const emulator = await startOciEmulator({});
  const bus = Bus.connect({ servers: nats.url, name: "pipelines-test", logger });
  await bus.ready;
  const options: OciClientOptions = {
    auth: {
      kind: "api_key_inline",
      tenancy: emulator.apiKey.tenancy,
      user: emulator.apiKey.user,
      fingerprint: emulator.apiKey.fingerprint,
      privateKeyPem: emulator.apiKey.privateKeyPem,
      region: emulator.domain.region,
    },
    endpoint: emulator.controlUrl,
    dataUrl: emulator.dataUrl,
    deviceUrl: emulator.deviceUrl,
    identityUrl: emulator.identityUrl,
    ...(emulator.caPem ? { caPem: emulator.caPem } : {}),
    timeoutMs: 5000,
  };
  const client = createDigitalTwinsClient(options);
  const keyring = new SecretKeyring({ current: Buffer.alloc(32, 7), keyIdLabel: "oci pipelines test\0" });
  const store = new TwinStore(bus, keyring);
  const domains = new OciDomains({ twins: client, client: options, defaultDomainId: emulator.domain.id, dataAccess: emulator.dataAccess });
  return {
    nats,
    emulator,
    bus,
    client,
    options,
    store,
    domains,
    async stop() {
      await domains.close();
      await bus.close();
      await emulator.stop();
      await nats.stop();
    },
  };
}

/** An M5-like model whose count is an integer and historized too, so int64 points can be seen. */
export function modelSpec(specUri: string): JsonObject {
  return {
    "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1"],
    "@id": specUri,
    "@type": "Interface",
    contents: [
      { "@type": ["Telemetry", "Historized"], name: "humidity", schema: "double" },
      { "@type": ["Telemetry", "Historized"], name: "count", schema: "integer" },
    ],
  };
}

let seq = 0;

/** A default-adapter twin made in the emulator (model, adapter, instance with a vault secret), kept in the store. */
export async function makeTwin(w: PipelineWorld, key: string, source?: StoredTwin["source"], secret?: string): Promise<StoredTwin> {
  seq++;
  const domain = w.emulator.domain.id;
  const specUri = `dtmi:com:meridian:pipelines:${key.replaceAll("-", "_")}${seq};1`;
  const model = await w.client.createModel({ iotDomainId: domain, spec: modelSpec(specUri), displayName: specUri });
  const adapter = await w.client.createAdapter({ iotDomainId: domain, digitalTwinModelId: model.id, displayName: `${key}-adapter` });
  const authId = `ocid1.vaultsecret.oc1.test.${key}${seq}`;
  const plaintext = secret ?? `secret-${key}`;
  w.emulator.addVaultSecret(authId, plaintext);
  const instance = await w.client.createInstance({
    iotDomainId: domain,
    displayName: `${key}-01`,
    externalKey: `${key}-device`,
    authId,
    digitalTwinAdapterId: adapter.id,
  });
  const twin: StoredTwin = {
    key,
    iotDomainId: domain,
    kind: "default-adapter",
    instanceId: instance.id,
    adapterId: adapter.id,
    modelId: model.id,
    externalKey: `${key}-device`,
    specHash: "test",
    createTime: new Date().toISOString(),
    ...(source ? { source } : {}),
  };
  if (secret !== undefined) twin.deviceSecret = w.store.seal(twin, plaintext);
  await w.store.put(twin);
  return twin;
}

export function pipelines(w: PipelineWorld, config: Partial<ConstructorParameters<typeof OciPipelines>[0]["config"]> = {}): OciPipelines {
  return new OciPipelines({
    bus: w.bus,
    store: w.store,
    domains: w.domains,
    models: w.client,
    config: { OCI_SOURCE_POLL_MS: 200, OCI_SOURCE_PAGE_ROWS: 7, OCI_SINK_ACK_WAIT_MS: 5000, OCI_SINK_MAX_IN_FLIGHT: 8, ...config },
    logger,
    readBackoff: FAST,
    readAttempts: 3,
    redeliveryBackoff: FAST,
  });
}

/** Dead-letter reasons of a route into OCI so far. */
export async function deadLetters(bus: Bus, routeId: string): Promise<string[]> {
  const durable = routeConsumerName(routeId, Platform.OCI_IOT);
  const jsm = bus.jsm();
  const info = await jsm.streams.info(STREAMS.deadLetter).catch(() => undefined);
  const out: string[] = [];
  if (!info) return out;
  for (let s = info.state.first_seq; s <= info.state.last_seq && s > 0; s++) {
    const m = await jsm.streams.getMessage(STREAMS.deadLetter, { seq: s }).catch(() => undefined);
    if (m?.subject.endsWith(`.${durable}`)) out.push(m.header.get(DEAD_LETTER_HEADERS.reason) ?? "");
  }
  return out;
}

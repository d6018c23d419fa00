import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Bus, consumerBacklog, routeBucket } from "@meridian/bus";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type OmfEmulatorOptions, type RunningOmfEmulator, startOmfEmulator } from "@meridian/emulator-omf";
import { type NatsServerHandle, startForTest, startNatsServer, testCredential, testLogger, until } from "@meridian/testing";
import type { Logger } from "pino";
import { omfSenderConfig } from "../src/config.js";
import { type OmfSender, type OmfSenderOptions, startOmfSender } from "../src/service.js";

export const logger = testLogger();
export const TEST_KEY = randomBytes(32).toString("base64");

export async function startSender(
  nats: NatsServerHandle,
  env: Record<string, string | undefined> = {},
  options: OmfSenderOptions = {},
  log: Logger = logger,
): Promise<OmfSender> {
  return startForTest(startOmfSender, omfSenderConfig, { NATS_URL: nats.url, OMF_CREDENTIALS_KEY: TEST_KEY, ...env }, options, log);
}

export function apiClient(sender: OmfSender) {
  return createClient(
    OmfSenderService,
    createConnectTransport({ interceptors: [testCredential()], baseUrl: sender.service.url, httpVersion: "1.1" }),
  );
}

export async function startEmulator(options: OmfEmulatorOptions = {}): Promise<RunningOmfEmulator> {
  return startOmfEmulator(options);
}

export async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** Arms the emulator's HTTP faults (replacing what was armed), or clears them all with null. */
export async function setFaults(emu: RunningOmfEmulator, body: object | null): Promise<void> {
  await fetch(
    `${emu.url}/_emulator/faults`,
    body ? { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } } : { method: "DELETE" },
  );
}

/** The value count of each PI container whose id starts with `prefix`. */
export async function piValueCounts(emu: RunningOmfEmulator, prefix: string): Promise<number[]> {
  const s = await getJson(`${emu.url}/_emulator/state?scope=pi`);
  const containers = Object.values(s.body.scopes.pi.containers as Record<string, { id: string; valueCount: number }>);
  return containers.filter((c) => c.id.startsWith(prefix)).map((c) => c.valueCount);
}

/** An API event of `connection` with one double point, observed `i` seconds after `base`, its id made from all three. */
export function temperatureEvent(connection: string, device: string, i: number, base: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:${i}`,
    source: { platform: Platform.API, connection, device },
    observedTime: timestampFromDate(new Date(base + i * 1000)),
    points: [{ name: "temperature", value: { case: "doubleValue", value: 20 + i } }],
  });
}

/** Redelivery quick enough for a test to see a retried message come back. */
export const TEST_BACKOFF = { initialMs: 200, maxMs: 2_000, multiplier: 2, jitter: 0.2 };
/** The emulator speaks plain http on 127.0.0.1: what a lab permits, and these tests are one. */
export const PIPELINE_ENV = {
  OMF_ACK_WAIT_MS: "3000",
  OMF_LINGER_MS: "50",
  OMF_ALLOW_INSECURE_ENDPOINTS: "true",
  OMF_ALLOWED_HOSTS: "127.0.0.1",
};

/** An endpoints file naming the emulator twice: as PI Web API ("pi", basic auth, password from the environment) and as EDS ("eds"). */
export function piAndEdsEndpointsFile(emu: RunningOmfEmulator): string {
  const file = join(mkdtempSync(join(tmpdir(), "omf-endpoints-")), "endpoints.json");
  writeFileSync(
    file,
    JSON.stringify([
      {
        id: "pi",
        kind: "pi",
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        password: { env: "OMF_SECRET_TEST_PI_PASSWORD" },
      },
      { id: "eds", kind: "eds", url: emu.url },
    ]),
  );
  process.env.OMF_SECRET_TEST_PI_PASSWORD = "meridian";
  return file;
}

export interface PipelineStack {
  nats: NatsServerHandle;
  emu: RunningOmfEmulator;
  sender: OmfSender;
  /** A bus client of the test's own, to put routes and publish events. */
  bus: Bus;
  endpointsFile: string;
}

/** An omf-sender with the stack's settings: a further replica of `stack.sender` (same endpoints, same routes). */
export async function startPipelineSender(stack: Pick<PipelineStack, "nats" | "endpointsFile">): Promise<OmfSender> {
  return startSender(
    stack.nats,
    { ...PIPELINE_ENV, OMF_ENDPOINTS_FILE: stack.endpointsFile },
    { redeliveryBackoff: TEST_BACKOFF, statusIntervalMs: 500 },
  );
}

/**
 * As near a crash as an instance in this process gets: its NATS connection is closed without draining, so nothing it
 * holds is acknowledged, handed back or recorded after this point (pulled messages come back after the ack wait, to
 * whoever pulls next). A request already on its way to the endpoint may still land, as it may when a process dies.
 * `stop()` afterwards only releases what is left (HTTP server, timers).
 */
export async function crash(sender: OmfSender): Promise<void> {
  await sender.bus.connection().close();
}

/** nats-server, the emulator, omf-sender on its "pi" and "eds" endpoints ({@link PIPELINE_ENV}, {@link TEST_BACKOFF}), and a bus client. */
export async function startPipelineStack(): Promise<PipelineStack> {
  const nats = await startNatsServer();
  const emu = await startEmulator();
  const endpointsFile = piAndEdsEndpointsFile(emu);
  const sender = await startPipelineSender({ nats, endpointsFile });
  const bus = Bus.connect({ servers: nats.url, name: "test", logger });
  await bus.ready;
  return { nats, emu, sender, bus, endpointsFile };
}

/**
 * Puts an OMF route (connection → endpoint `target`, linger 50 ms unless `options` say otherwise) in the routes bucket
 * and waits for its durable consumer `omf-<id>`: a new route's consumer starts at the next event, so publish after.
 */
export async function putOmfRoute(bus: Bus, id: string, connection: string, target: string, options: Record<string, string> = {}) {
  await routeBucket(bus).put(
    id,
    create(RouteSchema, { id, source: { connection }, sink: { platform: Platform.OMF, target }, options: { lingerMs: "50", ...options } }),
  );
  await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 10_000, what: `consumer of route ${id}` });
}

export { type NatsServerHandle, startNatsServer, until };

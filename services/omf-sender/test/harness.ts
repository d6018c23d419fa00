import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Bus } from "@meridian/bus";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
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

/** nats-server, the emulator, omf-sender on its "pi" and "eds" endpoints ({@link PIPELINE_ENV}, {@link TEST_BACKOFF}), and a bus client. */
export async function startPipelineStack(): Promise<PipelineStack> {
  const nats = await startNatsServer();
  const emu = await startEmulator();
  const endpointsFile = piAndEdsEndpointsFile(emu);
  const sender = await startSender(
    nats,
    { ...PIPELINE_ENV, OMF_ENDPOINTS_FILE: endpointsFile },
    { redeliveryBackoff: TEST_BACKOFF, statusIntervalMs: 500 },
  );
  const bus = Bus.connect({ servers: nats.url, name: "test", logger });
  await bus.ready;
  return { nats, emu, sender, bus, endpointsFile };
}

export { type NatsServerHandle, startNatsServer, until };

import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
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

export { type NatsServerHandle, startNatsServer, until };

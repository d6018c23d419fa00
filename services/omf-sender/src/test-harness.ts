import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { type OmfEmulatorOptions, type RunningOmfEmulator, startOmfEmulator } from "@meridian/emulator-omf";
import { type NatsServerHandle, startNatsServer } from "@meridian/testing";
import { type Logger, pino } from "pino";
import { omfSenderConfig } from "./config.js";
import { type OmfSender, type OmfSenderOptions, startOmfSender } from "./service.js";

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
export const TEST_KEY = randomBytes(32).toString("base64");

export async function startSender(
  nats: NatsServerHandle,
  env: Record<string, string> = {},
  options: OmfSenderOptions = {},
  log: Logger = logger,
): Promise<OmfSender> {
  const config = omfSenderConfig.parse({ PORT: "0", NATS_URL: nats.url, OMF_CREDENTIALS_KEY: TEST_KEY, ...env });
  const sender = await startOmfSender(config, log, { installSignalHandlers: false, ...options });
  await sender.bus.ready;
  return sender;
}

export function apiClient(sender: OmfSender) {
  return createClient(OmfSenderService, createConnectTransport({ baseUrl: sender.service.url, httpVersion: "1.1" }));
}

export async function startEmulator(options: OmfEmulatorOptions = {}): Promise<RunningOmfEmulator> {
  return startOmfEmulator(options);
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
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

export { type NatsServerHandle, startNatsServer };

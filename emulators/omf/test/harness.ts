import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { type OmfEmulatorOptions, type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";

export { SEED_CONTAINERS, SEED_POINTS, SEED_TYPES, seedData } from "@meridian/fixtures/omf-seed";

export const PI_AUTH = `Basic ${Buffer.from("meridian:meridian").toString("base64")}`;
export const EDS_BASE = "/api/v1/tenants/default/namespaces/default";
export const ADH_BASE = "/api/v1/tenants/t-0001/namespaces/Samples";

export interface PostOptions {
  action?: string;
  version?: string;
  gzip?: boolean;
  /** Extra/override headers; a value of null removes a default header. */
  headers?: Record<string, string | null>;
  raw?: Buffer | string;
}

export function omfHeaders(messageType: string, o: PostOptions = {}): Record<string, string> {
  const h: Record<string, string | null> = {
    messagetype: messageType,
    messageformat: "JSON",
    omfversion: o.version ?? "1.1",
    action: o.action ?? "create",
    "content-type": "application/json",
    ...(o.gzip ? { compression: "gzip" } : {}),
    ...o.headers,
  };
  return Object.fromEntries(Object.entries(h).filter(([, v]) => v !== null)) as Record<string, string>;
}

export async function post(base: string, path: string, messageType: string, body: unknown, o: PostOptions = {}) {
  const json = o.raw ?? JSON.stringify(body);
  const payload = o.gzip && o.raw === undefined ? gzipSync(json) : json;
  const res = await fetch(`${base}${path}`, { method: "POST", headers: omfHeaders(messageType, o), body: payload });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: res.status, headers: res.headers, body: parsed as any };
}

/** POST to the PI profile with Basic auth and X-Requested-With. */
export const piPost = (base: string, messageType: string, body: unknown, o: PostOptions = {}) =>
  post(base, "/piwebapi/omf", messageType, body, {
    ...o,
    headers: { authorization: PI_AUTH, "x-requested-with": "XMLHttpRequest", ...o.headers },
  });

export const edsPost = (base: string, messageType: string, body: unknown, o: PostOptions = {}) =>
  post(base, `${EDS_BASE}/omf`, messageType, body, o);

export async function adhToken(base: string, clientId = "meridian-client", clientSecret = "meridian-secret") {
  const res = await fetch(`${base}/identity/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, grant_type: "client_credentials" }),
  });
  return {
    status: res.status,
    body: (await res.json()) as { access_token: string; expires_in: number; token_type: string; error?: string },
  };
}

export const adhPost = (base: string, token: string, messageType: string, body: unknown, o: PostOptions = {}) =>
  post(base, `${ADH_BASE}/omf`, messageType, body, { ...o, headers: { authorization: `Bearer ${token}`, ...o.headers } });

export async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as any };
}

/** The simplest dynamic type: an index and one float (Tank1's type in most tests). */
export const TANK_TYPE = {
  id: "Tank",
  classification: "dynamic",
  type: "object",
  properties: { Time: { type: "string", format: "date-time", isindex: true }, Level: { type: "number", format: "float64" } },
};

export interface SharedEmulator {
  emu: RunningOmfEmulator;
  /** A Data Hub bearer token of the default client. */
  token: string;
}

/**
 * One emulator for a test file: started before its tests (with a Data Hub token), reset before each test (then given
 * `settingsEachTest`, when set) and stopped after them. `started` hands it to the file's variables.
 */
export function useEmulator(
  started: (shared: SharedEmulator) => void,
  options: { emulator?: OmfEmulatorOptions; settingsEachTest?: Record<string, unknown> } = {},
): void {
  let emu: RunningOmfEmulator | undefined;
  beforeAll(async () => {
    emu = await startOmfEmulator(options.emulator);
    started({ emu, token: (await adhToken(emu.url)).body.access_token });
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await fetch(`${emu!.url}/_emulator/reset`, { method: "POST" });
    if (options.settingsEachTest)
      await fetch(`${emu!.url}/_emulator/settings`, { method: "POST", body: JSON.stringify(options.settingsEachTest) });
  });
}

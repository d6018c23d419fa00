/**
 * Test support: the emulator started over TLS, the unmodified OCI SDK's IotClient signed with the emulator's API key
 * and trusting its CA, and fetch for ORDS, the token endpoint and device ingest.
 */
import * as common from "oci-common";
import * as iot from "oci-iot";
import { Agent, fetch as undiciFetch } from "undici";
import { type OciEmulator, type OciEmulatorOptions, startOciEmulator } from "../src/index.js";
import { m5Envelope, m5Routes } from "../src/testdata/m5.js";

export { m5CustomModel, m5DefaultModel, m5Envelope, m5Payload, m5Routes } from "../src/testdata/m5.js";

export async function startEmulator(options: OciEmulatorOptions = {}): Promise<OciEmulator> {
  return startOciEmulator({ tls: true, ...options });
}

/** An https dispatcher trusting the emulator's CA (the SDK hands `httpOptions` to Node's fetch, which is undici's). */
export function dispatcherFor(emu: OciEmulator): Agent {
  return new Agent({ connect: { ca: emu.caPem } });
}

export interface SdkOptions {
  /** Default: the SDK's own default retry configuration. */
  retry?: "default" | "none";
  key?: { tenancy: string; user: string; fingerprint: string; privateKeyPem: string };
}

export function sdkClient(emu: OciEmulator, opts: SdkOptions = {}): iot.IotClient {
  const k = opts.key ?? emu.apiKey;
  const provider = new common.SimpleAuthenticationDetailsProvider(k.tenancy, k.user, k.fingerprint, k.privateKeyPem, null);
  const client = new iot.IotClient(
    { authenticationDetailsProvider: provider },
    {
      ...(opts.retry === "none" ? { retryConfiguration: common.NoRetryConfigurationDetails } : {}),
      httpOptions: { dispatcher: dispatcherFor(emu) },
      // oci-common 2.139 does not unwrap the circuit breaker's result when httpOptions are given ("response.text is not
      // a function"): a client with httpOptions must run without the breaker.
      circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
    },
  );
  client.endpoint = emu.controlUrl;
  return client;
}

/** fetch that trusts the emulator's CA. */
export function emuFetch(emu: OciEmulator): (url: string, init?: Parameters<typeof undiciFetch>[1]) => ReturnType<typeof undiciFetch> {
  const dispatcher = dispatcherFor(emu);
  return (url, init = {}) => undiciFetch(url, { ...init, dispatcher });
}

export function ordsBase(emu: OciEmulator): string {
  return `${emu.dataUrl}/ords/${emu.domain.domainShortId}/20250531`;
}

/** A data-API token through the identity domain's token endpoint, as manage-dt gets it. */
export async function dataToken(emu: OciEmulator, overrides: { clientSecret?: string; scope?: string; password?: string } = {}) {
  const f = emuFetch(emu);
  const basic = Buffer.from(`${emu.dataAccess.clientId}:${overrides.clientSecret ?? emu.dataAccess.clientSecret}`).toString("base64");
  const res = await f(`${emu.identityUrl}/oauth2/v1/token`, {
    method: "POST",
    headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      scope: overrides.scope ?? emu.scope,
      grant_type: "password",
      username: emu.dataAccess.username,
      password: overrides.password ?? emu.dataAccess.password,
    }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Posts a device message as `externalKey:secret`. */
export async function postDevice(emu: OciEmulator, externalKey: string, secret: string, payload: unknown, endpoint = "iot/v1/telemetry") {
  const f = emuFetch(emu);
  const res = await f(`${emu.deviceUrl}/${endpoint}`, {
    method: "POST",
    headers: { Authorization: `Basic ${Buffer.from(`${externalKey}:${secret}`).toString("base64")}`, "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  return { status: res.status, text: await res.text(), contentType: res.headers.get("content-type") };
}

/** GET an ORDS path with a bearer token; returns status and JSON. */
export async function ords(emu: OciEmulator, token: string | undefined, path: string, params: Record<string, string> = {}) {
  const f = emuFetch(emu);
  const qs = new URLSearchParams(params).toString();
  const res = await f(`${ordsBase(emu)}/${path}${qs ? `?${qs}` : ""}`, {
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), "Content-Type": "application/json" },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { items?: Record<string, unknown>[] } };
}

/** The structured twin of manage-dt: model + adapter (default or custom) + instance with a vault secret. */
export async function createStructuredTwin(
  emu: OciEmulator,
  client: iot.IotClient,
  opts: { key: string; model: Record<string, unknown>; custom: boolean },
) {
  // DTMI segments take no hyphens.
  const specUri = `dtmi:com:oracle:${opts.key.replaceAll("-", "")}:m5:env:${opts.custom ? "cstm" : "dflt"};1`;
  const model = await client.createDigitalTwinModel({
    createDigitalTwinModelDetails: { iotDomainId: emu.domain.id, displayName: specUri, spec: { ...opts.model, "@id": specUri } },
  });
  const adapter = await client.createDigitalTwinAdapter({
    createDigitalTwinAdapterDetails: {
      iotDomainId: emu.domain.id,
      displayName: `${opts.key}-adapter`,
      digitalTwinModelSpecUri: specUri,
      ...(opts.custom
        ? {
            inboundEnvelope: m5Envelope as iot.models.DigitalTwinAdapterInboundEnvelope,
            inboundRoutes: m5Routes as unknown as iot.models.DigitalTwinAdapterInboundRoute[],
          }
        : {}),
    },
  });
  const authId = `ocid1.vaultsecret.oc1.eu-frankfurt-1.${opts.key}`;
  const secret = `secret-${opts.key}`;
  emu.addVaultSecret(authId, secret);
  const instance = await client.createDigitalTwinInstance({
    createDigitalTwinInstanceDetails: {
      iotDomainId: emu.domain.id,
      displayName: `${opts.key}-device`,
      digitalTwinAdapterId: adapter.digitalTwinAdapter.id,
      externalKey: `${opts.key}-ext`,
      authId,
    },
  });
  return {
    model: model.digitalTwinModel,
    adapter: adapter.digitalTwinAdapter,
    instance: instance.digitalTwinInstance,
    secret,
    externalKey: `${opts.key}-ext`,
  };
}

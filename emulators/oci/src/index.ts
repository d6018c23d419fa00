/**
 * OCI IoT Platform emulator: the digital-twin control plane under /20250531 with OCI request signatures, the
 * identity domain's token endpoint and the ORDS data API, and device ingest normalised by adapters. For in-process
 * tests and as a stand-alone server (`main.ts`). Written from `shared/protocols/oci.md` alone.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createTestPki, type ListeningServer, listen, sendJson } from "@meridian/emulator-kit";
import { createLogger, type Logger } from "@meridian/service-kit";
import { createAdmin, UnknownDeviceError } from "./admin.js";
import { Clock } from "./clock.js";
import { createControlHandler } from "./control.js";
import { createDataHandler, type DataAccess, issueToken, scopeOf } from "./data.js";
import { createDeviceHandler } from "./device.js";
import type { EmulatedDomain, EmulatorApiKey, OciEmulator } from "./emulator.js";
import { OciFaults, parseOciFaultConfig } from "./faults.js";
import { base32Id, OcidFactory } from "./ids.js";
import { ingest } from "./ingest.js";
import { ApiKeyRegistry, fingerprintOf } from "./signature.js";
import { startSimulator } from "./simulator.js";
import { OciStore } from "./store.js";
import { adapterView, instanceView, modelView } from "./twins.js";

export type { UnknownDeviceError } from "./admin.js";
export type { DataAccess } from "./data.js";
export { DEVICE_ACCEPTED_STATUS } from "./device.js";
export type { EmulatedDomain, EmulatorApiKey, OciEmulator } from "./emulator.js";
export { FAULT_TARGETS, type FaultTarget, type OciFaultConfig, parseOciFaultConfig } from "./faults.js";
export type { IngestResult } from "./ingest.js";
export { fingerprintOf } from "./signature.js";
export { m5Payload, SIMULATED_ENDPOINT } from "./simulator.js";

export interface OciEmulatorOptions {
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** 0 (default) = any free port. */
  controlPort?: number;
  dataPort?: number;
  devicePort?: number;
  /** A plain-HTTP admin-only listener (`/_emulator`); none unless given. */
  adminPort?: number;
  /** HTTPS with a fresh test PKI (default); false = plain HTTP (unit tests). */
  tls?: boolean;
  /** Extra certificate names (compose service names). */
  tlsHostnames?: string[];
  /** Write the CA PEM here. */
  caFile?: string;
  region?: string;
  /** Seeds the OCIDs and short ids, so a run reads the same way twice. Default "meridian". */
  seed?: string;
  domainId?: string;
  domainShortId?: string;
  groupShortId?: string;
  /** Hosts the control plane reports; default the OCI host names built from the short ids and region. */
  deviceHost?: string;
  dataHost?: string;
  identityHost?: string;
  dataAccess?: Partial<DataAccess>;
  /** authId (vault secret OCID) → plaintext. */
  vaultSecrets?: Record<string, string>;
  tokenLifetimeSeconds?: number;
  /** Test switch: accept `ST$<token>` keyIds (principals, session tokens). */
  acceptSecurityTokens?: boolean;
  /** Rows kept per data table (oldest dropped first). Default 100 000. */
  maxRows?: number;
  /** Devices (external keys) that send an M5 message every `intervalMs`. */
  simulate?: { externalKeys: string[]; intervalMs?: number };
  /** The API key to register; default a fresh RSA key for a generated tenancy and user. */
  apiKey?: { tenancy?: string; user?: string; privateKeyPem?: string };
  logger?: Logger;
}

export async function startOciEmulator(options: OciEmulatorOptions = {}): Promise<OciEmulator> {
  const log = options.logger ?? createLogger("emulator-oci", { level: "silent" });
  const seed = options.seed ?? "meridian";
  const region = options.region ?? "eu-frankfurt-1";
  const host = options.host ?? "127.0.0.1";
  const domainShortId = options.domainShortId ?? base32Id(`${seed}/domain`, 12);
  const groupShortId = options.groupShortId ?? base32Id(`${seed}/group`, 12);
  const clock = new Clock();
  const ocids = new OcidFactory(seed, region);
  const domain: EmulatedDomain = {
    id: options.domainId ?? ocids.next("iotdomain"),
    groupId: ocids.next("iotdomaingroup"),
    compartmentId: `ocid1.compartment.oc1..${base32Id(`${seed}/compartment`, 60)}`,
    region,
    domainShortId,
    groupShortId,
    deviceHost: options.deviceHost ?? `${domainShortId}.device.iot.${region}.oci.oraclecloud.com`,
    dataHost: options.dataHost ?? `${groupShortId}.data.iot.${region}.oci.oraclecloud.com`,
    identityHost: options.identityHost ?? `idcs-${base32Id(`${seed}/idcs`, 32)}.identity.oraclecloud.com`,
  };
  const store = new OciStore({ ...domain, timeCreated: clock.iso() }, options.maxRows ?? 100_000);
  for (const [authId, plaintext] of Object.entries(options.vaultSecrets ?? {})) store.vault.set(authId, plaintext);
  const dataAccess: DataAccess = {
    clientId: options.dataAccess?.clientId ?? base32Id(`${seed}/client`, 32),
    clientSecret: options.dataAccess?.clientSecret ?? base32Id(`${seed}/client-secret/${Math.random()}`, 36),
    username: options.dataAccess?.username ?? "iot-data-user",
    password: options.dataAccess?.password ?? base32Id(`${seed}/password/${Math.random()}`, 24),
  };

  const keys = new ApiKeyRegistry();
  const tenancy = options.apiKey?.tenancy ?? `ocid1.tenancy.oc1..${base32Id(`${seed}/tenancy`, 60)}`;
  const user = options.apiKey?.user ?? `ocid1.user.oc1..${base32Id(`${seed}/user`, 60)}`;
  const privateKeyPem =
    options.apiKey?.privateKeyPem ??
    generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const publicKeyPem = createPublicKey(privateKeyPem).export({ type: "spki", format: "pem" }).toString();
  const apiKey: EmulatorApiKey = {
    tenancy,
    user,
    fingerprint: fingerprintOf(publicKeyPem),
    privateKeyPem,
    keyId: keys.register(tenancy, user, publicKeyPem),
  };

  const faults = new OciFaults();
  const tokenLifetime = { seconds: options.tokenLifetimeSeconds ?? 3600 };
  const requests = new Map<string, number>();
  const record = (operation: string, status: number) => {
    const k = `${operation} ${status}`;
    requests.set(k, (requests.get(k) ?? 0) + 1);
  };

  const pki =
    options.tls === false
      ? undefined
      : createTestPki({
          caName: "Meridian OCI IoT Emulator CA",
          hosts: [...(options.tlsHostnames ?? []), domain.deviceHost, domain.dataHost, domain.identityHost].filter((h) => !h.includes(":")),
        });
  if (pki && options.caFile) writeFileSync(options.caFile, pki.caPem);

  const emulatorRef: { current?: OciEmulator } = {};
  const admin = createAdmin(() => emulatorRef.current!, faults, pki?.caPem, log);
  const control = createControlHandler({
    store,
    clock,
    ocids,
    keys,
    faults,
    admin,
    acceptSecurityTokens: options.acceptSecurityTokens ?? false,
    log,
    record,
  });
  const data = createDataHandler({ store, clock, faults, admin, access: dataAccess, tokenLifetime, log, record });
  const device = createDeviceHandler({ store, clock, faults, admin, log, record });

  const serve = (handler: RequestListener) => {
    const guarded: RequestListener = (req, res) => {
      Promise.resolve(handler(req, res)).catch((err: unknown) => {
        log.error({ err }, "request failed");
        if (!res.headersSent) sendJson(res, 500, { code: "InternalServerError", message: "Internal error." });
        else res.destroy();
      });
    };
    const server = pki ? createHttpsServer({ key: pki.keyPem, cert: `${pki.certPem}${pki.caPem}` }, guarded) : createHttpServer(guarded);
    // Longer than the usual client idle timeouts, so the client, not the emulator, closes idle connections.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    return server;
  };
  const adminOnly: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    return admin.handle(req, res, url);
  };

  const listeners: ListeningServer[] = [];
  let stopSimulator: (() => void) | undefined;
  const closeAll = async () => {
    stopSimulator?.();
    await Promise.all(listeners.map((l) => l.close()));
  };
  try {
    const scheme = pki ? "https" : "http";
    const controlL = await listen(serve(control), { port: options.controlPort ?? 0, host });
    listeners.push(controlL);
    const dataL = await listen(serve(data), { port: options.dataPort ?? 0, host });
    listeners.push(dataL);
    const deviceL = await listen(serve(device), { port: options.devicePort ?? 0, host });
    listeners.push(deviceL);
    let adminL: ListeningServer | undefined;
    if (options.adminPort !== undefined) {
      adminL = await listen(createHttpServer(adminOnly), { port: options.adminPort, host });
      listeners.push(adminL);
    }

    const emulator: OciEmulator = {
      controlUrl: controlL.url(scheme),
      dataUrl: dataL.url(scheme),
      identityUrl: dataL.url(scheme),
      deviceUrl: deviceL.url(scheme),
      adminUrl: adminL?.url("http"),
      caPem: pki?.caPem,
      apiKey,
      domain,
      dataAccess,
      scope: scopeOf(store),
      addVaultSecret: (authId, plaintext) => {
        store.vault.set(authId, plaintext);
      },
      ingest: (externalKey, payload, opts = {}) => {
        const instance = store.activeInstanceByExternalKey(externalKey);
        if (!instance) throw new UnknownDeviceError(`No ACTIVE digital twin instance has the external key ${externalKey}.`);
        const body = Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
        return ingest(store, clock, instance, {
          endpoint: opts.endpoint ?? "iot/v1/telemetry",
          contentType: opts.contentType ?? (typeof payload === "string" ? "text/plain" : "application/json"),
          body,
        });
      },
      registerApiKey: (t, u, pem) => keys.register(t, u, pem),
      issueToken: (scope, seconds) => issueToken(store, clock, scope ?? scopeOf(store), seconds ?? tokenLifetime.seconds),
      setTokenLifetime: (seconds) => {
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) throw new RangeError("token lifetime must be 1..86400 seconds");
        tokenLifetime.seconds = seconds;
        return seconds;
      },
      setClockOffset: (offsetMs) => {
        clock.offsetMs = offsetMs;
        return offsetMs;
      },
      setFault: (config) => faults.set(parseOciFaultConfig(config)),
      clearFaults: () => faults.clear(),
      state: () => ({
        controlUrl: emulator.controlUrl,
        dataUrl: emulator.dataUrl,
        deviceUrl: emulator.deviceUrl,
        domain,
        scope: scopeOf(store),
        // An emulator's made-up credentials, for whoever drives it; never logged.
        dataAccess,
        apiKeys: keys.list(),
        vaultSecrets: [...store.vault.keys()],
        tokenLifetimeSeconds: tokenLifetime.seconds,
        clockOffsetMs: clock.offsetMs,
        counts: store.counts(),
        models: [...store.models.values()].map(modelView),
        adapters: [...store.adapters.values()].map((a) => adapterView(a)),
        instances: [...store.instances.values()].map(instanceView),
        requests: Object.fromEntries(requests),
        faults: faults.list(),
      }),
      reset: () => {
        store.reset();
        faults.clear();
        requests.clear();
      },
      stop: closeAll,
    };
    emulatorRef.current = emulator;
    if (options.simulate && options.simulate.externalKeys.length > 0)
      stopSimulator = startSimulator(store, clock, options.simulate.externalKeys, options.simulate.intervalMs ?? 2000, log);
    return emulator;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

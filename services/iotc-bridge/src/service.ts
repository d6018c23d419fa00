import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { ConfigError, isDevelopmentKey, type Logger, SecretKeyring, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { commandHandlers } from "./api/commands.js";
import { iotcBridgeErrors, iotcBridgeService } from "./api/index.js";
import type { IotcBridgeConfig } from "./config.js";
import { applyApplications, readApplicationsFile } from "./declared.js";
import { Applications } from "./pipeline/applications.js";
import { CloudToDevice } from "./pipeline/cloud-to-device.js";
import { type CertificateIssuer, type DeviceFactory, DeviceManager } from "./pipeline/devices.js";
import { SinkManager } from "./pipeline/manager.js";
import { IotcStore } from "./pipeline/store.js";
import { createIotcDevice, issueDeviceCertificate } from "./platform/index.js";

const SERVICE = serviceIdentity("iotc-bridge", import.meta.url);

/** Label of iotc-bridge's key ids: never changed, or every sealed record's key becomes unknown. */
const KEY_ID_LABEL = "meridian iotc-bridge credentials key id\0";

export interface IotcBridge extends BusService {
  applications: Applications;
  cloudToDevice: CloudToDevice;
  devices: DeviceManager;
  sinks: SinkManager;
}

export interface IotcBridgeOptions extends BusServiceOptions {
  /** The device client to use instead of the platform's (unit tests). */
  createDevice?: DeviceFactory;
  /** Redelivery backoff of routes into IoT Central (tests shorten it); default the bus's REDELIVERY_BACKOFF. */
  redeliveryBackoff?: BackoffPolicy;
  /** How long a device IoT Central refused for good is not tried again; default 60 s. */
  failureHoldMs?: number;
}

/** IOTC_CA_FILE: trusted beside the system's CAs for the whole process (the SDK's DPS transport takes no CA of its own). */
function trustCa(path: string | undefined, logger: Logger): void {
  if (!path) return;
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
    const cert = new X509Certificate(pem);
    logger.info(
      { file: path, subject: cert.subject, fingerprint256: cert.fingerprint256, validTo: cert.validTo },
      "IOTC_CA_FILE trusted for DPS and IoT Hub",
    );
  } catch (err) {
    throw new ConfigError(`IOTC_CA_FILE: cannot use ${path}: ${(err as Error).message}`, ["IOTC_CA_FILE"]);
  }
  tls.setDefaultCACertificates([...tls.getCACertificates("default"), pem]);
}

/**
 * iotc-bridge: Meridian's devices in Azure IoT Central. The IotcBridgeService API (applications, devices, telemetry
 * and reported properties as a device), one RouteSink per route into IoT Central, the DeviceManager holding one device
 * connection per (application, device id).
 */
export async function startIotcBridge(config: IotcBridgeConfig, logger: Logger, options: IotcBridgeOptions = {}): Promise<IotcBridge> {
  const declared = config.IOTC_APPLICATIONS_FILE
    ? readApplicationsFile(config.IOTC_APPLICATIONS_FILE, { secretDir: config.IOTC_SECRET_DIR })
    : [];
  if (declared.length > config.IOTC_MAX_APPLICATIONS)
    throw new ConfigError(
      `IOTC_APPLICATIONS_FILE: ${declared.length} applications, more than IOTC_MAX_APPLICATIONS=${config.IOTC_MAX_APPLICATIONS}`,
      ["IOTC_APPLICATIONS_FILE", "IOTC_MAX_APPLICATIONS"],
    );
  const key = config.IOTC_CREDENTIALS_KEY;
  // Device registrations are kept sealed: without a key, a declared application's devices could not be cached.
  if (!key && declared.length > 0)
    throw new ConfigError("IOTC_APPLICATIONS_FILE needs IOTC_CREDENTIALS_KEY: device keys and registrations are kept sealed with it", [
      "IOTC_CREDENTIALS_KEY",
    ]);
  if (key && isDevelopmentKey(key)) logger.warn("IOTC_CREDENTIALS_KEY is the published development key: it protects nothing");
  const keyring = key
    ? new SecretKeyring({ current: key, previous: config.IOTC_CREDENTIALS_PREVIOUS_KEYS, keyIdLabel: KEY_ID_LABEL })
    : undefined;
  // Trusted process-wide, which covers the hub connections too: handing each device connection the CA as well would
  // make Node build a TLS context per connection (measured: 1.6 MiB and ~5 ms of CPU more per device).
  trustCa(config.IOTC_CA_FILE, logger);
  const createDevice: DeviceFactory = options.createDevice ?? ((o) => createIotcDevice(o));
  const issueCertificate: CertificateIssuer = (signing, id) => issueDeviceCertificate(signing, id);
  let applications!: Applications;
  let devices!: DeviceManager;
  let sinks!: SinkManager;
  let cloudToDevice!: CloudToDevice;
  const running = await startBusService(
    SERVICE,
    config,
    logger,
    (bus) => {
      const store = new IotcStore(bus, keyring);
      cloudToDevice = new CloudToDevice({ bus, logger, instance: config.INSTANCE_ID });
      devices = new DeviceManager({
        store,
        applications: () => applications,
        createDevice,
        issueCertificate,
        cloudToDevice,
        logger,
        maxDevices: config.IOTC_MAX_DEVICES,
        connectRate: config.IOTC_CONNECT_RATE,
        idleDisconnectSeconds: config.IOTC_IDLE_DISCONNECT_SECONDS,
        tokenValiditySeconds: config.IOTC_TOKEN_VALIDITY_SECONDS,
        tokenRenewalMarginSeconds: config.IOTC_TOKEN_RENEWAL_MARGIN_SECONDS,
        maxInFlight: config.IOTC_MAX_IN_FLIGHT,
        ...(options.failureHoldMs !== undefined ? { failureHoldMs: options.failureHoldMs } : {}),
      });
      applications = new Applications({
        store,
        logger,
        maxApplications: config.IOTC_MAX_APPLICATIONS,
        changed: (id) => devices.closeApplication(id),
      });
      sinks = new SinkManager({
        bus,
        devices,
        applications,
        logger,
        ackWaitMs: config.IOTC_SINK_ACK_WAIT_MS,
        maxParallel: config.IOTC_SINK_MAX_PARALLEL,
        ...(options.redeliveryBackoff ? { backoff: options.redeliveryBackoff } : {}),
      });
      return {
        routes: (router) =>
          router.service(
            IotcBridgeService,
            iotcBridgeService({ applications, devices, commands: commandHandlers({ cloudToDevice, bus, applications }) }),
          ),
        errors: [iotcBridgeErrors],
        declared: {
          setting: "IOTC_APPLICATIONS_FILE",
          entries: declared.length,
          apply: () => applyApplications(applications, declared, logger),
          runAfterApply: true,
        },
        run: (signal) => {
          sinks.start();
          void cloudToDevice.run(signal);
        },
        counters: () => sinks.counters(),
        // Routes hand back what they have not sent, commands still waiting are answered 503, then the devices
        // disconnect, before the bus drains.
        stop: async () => {
          await sinks.stop();
          await cloudToDevice.stop();
          await devices.stop();
        },
      };
    },
    options,
  );
  return Object.assign(running, { applications, devices, sinks, cloudToDevice });
}

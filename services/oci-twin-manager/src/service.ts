import { readFileSync } from "node:fs";
import { OciTwinManagerService } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { ConfigError, isDevelopmentKey, type Logger, SecretKeyring, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { ociTwinManagerErrors, ociTwinManagerService } from "./api/index.js";
import type { OciTwinManagerConfig } from "./config.js";
import { applyTwins, readTwinsFile } from "./declared.js";
import { OciDomains, type OciDomainsOptions } from "./pipeline/domains.js";
import { OciPipelines, type OciPipelinesDeps } from "./pipeline/manager.js";
import { TwinStore } from "./pipeline/store.js";
import { TwinManager } from "./pipeline/twins.js";
import { createDigitalTwinsClient } from "./platform/index.js";
import type { DataAccessCredentials, DigitalTwinsClient, OciAuth, OciClientOptions } from "./platform/types.js";

const SERVICE = serviceIdentity("oci-twin-manager", import.meta.url);

/** Label of oci-twin-manager's key ids: never changed, or every sealed device secret's key becomes unknown. */
const KEY_ID_LABEL = "meridian oci-twin-manager credentials key id\0";

export interface OciTwinManager extends BusService {
  twins: TwinManager;
  domains: OciDomains;
  store: TwinStore;
  /** The control-plane client the service uses. */
  client: DigitalTwinsClient;
  /** Twin sources onto the bus and routes into OCI. */
  pipelines: OciPipelines;
}

export interface OciTwinManagerOptions extends BusServiceOptions {
  /** The control-plane client to use instead of the platform's (tests). */
  client?: DigitalTwinsClient;
  createDataApi?: OciDomainsOptions["createDataApi"];
  createDeviceEndpoint?: OciDomainsOptions["createDeviceEndpoint"];
  /** How long a delete waits for OCI to report DELETED (default 60 s). */
  deleteWaitMs?: number;
  /** Backoffs of the pipelines (tests shorten them). */
  readBackoff?: OciPipelinesDeps["readBackoff"];
  redeliveryBackoff?: OciPipelinesDeps["redeliveryBackoff"];
}

/** Where OCI is and how requests are signed, from the settings. */
export function clientOptions(config: OciTwinManagerConfig): OciClientOptions {
  let caPem: string | undefined;
  if (config.OCI_CA_FILE) {
    try {
      caPem = readFileSync(config.OCI_CA_FILE, "utf8");
    } catch (err) {
      throw new ConfigError(
        `OCI_CA_FILE: cannot read ${config.OCI_CA_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        ["OCI_CA_FILE"],
      );
    }
    if (!caPem.includes("-----BEGIN CERTIFICATE-----"))
      throw new ConfigError(`OCI_CA_FILE: ${config.OCI_CA_FILE} holds no PEM certificate`, ["OCI_CA_FILE"]);
  }
  const auth: OciAuth =
    config.OCI_AUTH === "api_key" || config.OCI_AUTH === "security_token"
      ? { kind: config.OCI_AUTH, configFile: config.OCI_CONFIG_FILE, profile: config.OCI_PROFILE }
      : { kind: config.OCI_AUTH };
  return {
    auth,
    ...(config.OCI_REGION ? { region: config.OCI_REGION } : {}),
    ...(config.OCI_IOT_ENDPOINT ? { endpoint: config.OCI_IOT_ENDPOINT } : {}),
    ...(config.OCI_DATA_URL ? { dataUrl: config.OCI_DATA_URL } : {}),
    ...(config.OCI_DEVICE_URL ? { deviceUrl: config.OCI_DEVICE_URL } : {}),
    ...(config.OCI_IDENTITY_URL ? { identityUrl: config.OCI_IDENTITY_URL } : {}),
    ...(caPem ? { caPem } : {}),
    timeoutMs: config.OCI_REQUEST_TIMEOUT_MS,
  };
}

function dataAccess(config: OciTwinManagerConfig): DataAccessCredentials | undefined {
  const {
    OCI_DATA_CLIENT_ID: clientId,
    OCI_DATA_CLIENT_SECRET: clientSecret,
    OCI_DATA_USERNAME: username,
    OCI_DATA_PASSWORD: password,
  } = config;
  return clientId && clientSecret && username && password ? { clientId, clientSecret, username, password } : undefined;
}

/**
 * oci-twin-manager: OCI IoT Platform digital twins behind OciTwinManagerService (manage-dt's create, query and delete,
 * by Meridian's twin keys), the declared twins of OCI_TWINS_FILE reconciled at start, then OciPipelines: each twin's
 * chosen data sets from ORDS onto the bus, and the routes into OCI posted as the twins' devices.
 */
export async function startOciTwinManager(
  config: OciTwinManagerConfig,
  logger: Logger,
  options: OciTwinManagerOptions = {},
): Promise<OciTwinManager> {
  const declared = config.OCI_TWINS_FILE
    ? readTwinsFile(config.OCI_TWINS_FILE, { defaultDomainId: config.OCI_IOT_DOMAIN_ID, maxTwins: config.OCI_MAX_TWINS })
    : [];
  const key = config.OCI_CREDENTIALS_KEY;
  if (!key && declared.some((d) => d.deviceSecret))
    throw new ConfigError("OCI_TWINS_FILE gives device secrets, which need OCI_CREDENTIALS_KEY: they are kept sealed with it", [
      "OCI_CREDENTIALS_KEY",
    ]);
  if (key && isDevelopmentKey(key)) logger.warn("OCI_CREDENTIALS_KEY is the published development key: it protects nothing");
  const keyring = key
    ? new SecretKeyring({ current: key, previous: config.OCI_CREDENTIALS_PREVIOUS_KEYS, keyIdLabel: KEY_ID_LABEL })
    : undefined;
  const client0 = clientOptions(config);
  const client = options.client ?? createDigitalTwinsClient(client0);
  const domains = new OciDomains({
    twins: client,
    client: client0,
    defaultDomainId: config.OCI_IOT_DOMAIN_ID,
    dataAccess: dataAccess(config),
    ...(options.createDataApi ? { createDataApi: options.createDataApi } : {}),
    ...(options.createDeviceEndpoint ? { createDeviceEndpoint: options.createDeviceEndpoint } : {}),
  });
  let store!: TwinStore;
  let twins!: TwinManager;
  let pipelines!: OciPipelines;
  const running = await startBusService(
    SERVICE,
    config,
    logger,
    (bus) => {
      store = new TwinStore(bus, keyring);
      twins = new TwinManager({
        store,
        domains,
        twins: client,
        logger,
        maxTwins: config.OCI_MAX_TWINS,
        ...(options.deleteWaitMs !== undefined ? { deleteWaitMs: options.deleteWaitMs } : {}),
      });
      pipelines = new OciPipelines({
        bus,
        store,
        domains,
        config,
        logger,
        models: client,
        readBackoff: options.readBackoff,
        redeliveryBackoff: options.redeliveryBackoff,
      });
      return {
        routes: (router) => router.service(OciTwinManagerService, ociTwinManagerService({ twins, domains, client })),
        errors: [ociTwinManagerErrors],
        declared: {
          setting: "OCI_TWINS_FILE",
          entries: declared.length,
          apply: () => applyTwins(twins, declared, logger),
          runAfterApply: true,
        },
        run: (signal) => pipelines.run(signal),
        counters: () => pipelines.counters(),
        // Sources and routes stop (handing back what they have not sent) before the clients close and the bus drains.
        stop: async () => {
          await pipelines.stop();
          await domains.close();
          await client.close?.();
        },
      };
    },
    options,
  );
  return Object.assign(running, { twins, domains, store, client, pipelines });
}

import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { DEFAULTS, startEntraEmulator } from "@meridian/emulator-entra";
import { startIotcEmulator } from "@meridian/emulator-iotc";
import { startOciEmulator } from "@meridian/emulator-oci";
import { startOmniaEmulator } from "@meridian/emulator-omnia";
import { iotcBridgeConfig, startIotcBridge } from "@meridian/iotc-bridge";
import { ociTwinManagerConfig, startOciTwinManager } from "@meridian/oci-twin-manager";
import { omniaReaderConfig, startOmniaReader } from "@meridian/omnia-reader";
import { startForTest, testTransport } from "@meridian/testing";
import type { Logger } from "pino";

/** The IoT Central application the stack declares (its devices register with the emulator's DPS by the group key). */
export const IOTC_APPLICATION = "console-plant";
/** The vault secret OCI twins of the tests name as their device's credential, and its plaintext. */
export const OCI_AUTH_ID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.consoledevice";
export const OCI_DEVICE_SECRET = "console-device-secret";

/**
 * The Platforms page's other three services with their emulators, as each service's own integration tests start them:
 * iotc-bridge with the IoT Central emulator (DPS and the hub over MQTT/TLS, the application API over HTTPS),
 * omnia-reader with the Omnia and Entra ID emulators (client-secret sign-in, tokens verified against Entra's keys), and
 * oci-twin-manager with the OCI emulator (control plane, ORDS data API, device host). `gateway` is the gateway's
 * *_URL settings; `env` is what the tests need to reach the emulators themselves (their admin surfaces are HTTPS with
 * the emulator's CA, written to `dir`).
 */
export async function startPlatforms(
  natsUrl: string,
  identitiesFile: string,
  dir: string,
  logger: Logger,
  /** The sign-in provider's token settings (AUTH_JWKS_URL, …): the gateway passes a signed-in user's token on to these services. */
  tokenAuth: Record<string, string> = {},
) {
  const auth = { NATS_URL: natsUrl, AUTH_IDENTITIES_FILE: identitiesFile, ...tokenAuth };
  const write = (name: string, text: string | undefined) => {
    const file = join(dir, name);
    writeFileSync(file, text ?? "");
    return file;
  };

  const [iotc, entra, oci] = await Promise.all([startIotcEmulator({ retryAfterSeconds: 0 }), startEntraEmulator(), startOciEmulator({})]);
  // Seeded history up to now, so that what the page reads as recent is the emulator's newest data. Four hours a series.
  const omnia = await startOmniaEmulator({
    auth: { authority: entra.issuer(), caPem: entra.caPem },
    seedEndTime: new Date().toISOString(),
    seedPoints: 240,
  });
  const iotcCa = write("iotc-ca.pem", iotc.caPem);
  const omniaCa = write("omnia-ca.pem", omnia.caPem);
  oci.addVaultSecret(OCI_AUTH_ID, OCI_DEVICE_SECRET);

  // The three services side by side: the stack's start-up is paid by every browser run.
  const startBridge = async () => {
    const bridge = await startForTest(
      startIotcBridge,
      iotcBridgeConfig,
      { ...auth, INSTANCE_ID: "console", IOTC_CREDENTIALS_KEY: randomBytes(32).toString("base64"), IOTC_CA_FILE: iotcCa },
      {},
      logger,
    );
    await createClient(IotcBridgeService, testTransport(bridge.service.url)).createApplication({
      application: {
        id: IOTC_APPLICATION,
        displayName: "Console plant",
        idScope: iotc.idScope,
        provisioningHost: iotc.mqttHost,
        gatewayHost: iotc.mqttHost,
        enrollmentGroup: { credential: { case: "groupKey", value: iotc.groupKey } },
      },
    });
    return bridge;
  };
  const startReader = () =>
    startForTest(
      startOmniaReader,
      omniaReaderConfig,
      {
        ...auth,
        INSTANCE_ID: "console",
        OMNIA_URL: omnia.baseUrl,
        OMNIA_CA_FILE: omniaCa,
        OMNIA_AUTH_MODE: "client-secret",
        AZURE_TENANT_ID: entra.tenantId,
        AZURE_CLIENT_ID: DEFAULTS.confidentialClient.clientId,
        AZURE_CLIENT_SECRET: DEFAULTS.confidentialClient.secret,
        AZURE_AUTHORITY_HOST: entra.url,
        AZURE_AUTHORITY_CA_FILE: write("entra-ca.pem", entra.caPem),
      },
      {},
      logger,
    );
  const ociKey = write("oci-key.pem", oci.apiKey.privateKeyPem);
  const ociConfig = write(
    "oci-config",
    [
      "[DEFAULT]",
      `user=${oci.apiKey.user}`,
      `fingerprint=${oci.apiKey.fingerprint}`,
      `tenancy=${oci.apiKey.tenancy}`,
      "region=eu-frankfurt-1",
      `key_file=${ociKey}`,
      "",
    ].join("\n"),
  );
  const startTwins = () =>
    startForTest(
      startOciTwinManager,
      ociTwinManagerConfig,
      {
        ...auth,
        INSTANCE_ID: "console",
        OCI_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
        OCI_AUTH: "api_key",
        OCI_CONFIG_FILE: ociConfig,
        OCI_PROFILE: "DEFAULT",
        OCI_IOT_ENDPOINT: oci.controlUrl,
        OCI_DATA_URL: oci.dataUrl,
        OCI_DEVICE_URL: oci.deviceUrl,
        OCI_IDENTITY_URL: oci.identityUrl,
        OCI_IOT_DOMAIN_ID: oci.domain.id,
        OCI_DATA_CLIENT_ID: oci.dataAccess.clientId,
        OCI_DATA_CLIENT_SECRET: oci.dataAccess.clientSecret,
        OCI_DATA_USERNAME: oci.dataAccess.username,
        OCI_DATA_PASSWORD: oci.dataAccess.password,
        ...(oci.caPem ? { OCI_CA_FILE: write("oci-ca.pem", oci.caPem) } : {}),
      },
      { deleteWaitMs: 10_000 },
      logger,
    );
  const [bridge, reader, twins] = await Promise.all([startBridge(), startReader(), startTwins()]);

  return {
    gateway: { IOTC_BRIDGE_URL: bridge.service.url, OMNIA_READER_URL: reader.service.url, OCI_TWIN_MANAGER_URL: twins.service.url },
    env: {
      // For a test's own gateway (one that fronts none of these services).
      CONSOLE_NATS_URL: natsUrl,
      CONSOLE_IDENTITIES_FILE: identitiesFile,
      IOTC_APPLICATION,
      IOTC_EMULATOR_URL: iotc.httpsUrl,
      IOTC_EMULATOR_CA_FILE: iotcCa,
      IOTC_EMULATOR_API_TOKEN: iotc.apiToken,
      OMNIA_EMULATOR_URL: omnia.url,
      OMNIA_EMULATOR_CA_FILE: omniaCa,
      OMNIA_SERIES_IDS: omnia.seededIds().join(","),
      OCI_AUTH_ID,
      OCI_DEVICE_SECRET,
    },
    async stop() {
      await Promise.all([bridge.stop(), reader.stop(), twins.stop()]);
      await Promise.all([iotc.stop(), omnia.stop(), entra.stop(), oci.stop()]);
    },
  };
}

import type { DescService } from "@bufbuild/protobuf";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { OciTwinManagerService } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { OmniaReaderService } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { type ClientTls, ConfigError, clientTlsFromFiles, type Logger, type TlsFiles } from "@meridian/service-kit";
import type { GatewayConfig } from "./config.js";

/** A service the gateway serves by forwarding to the Meridian service that owns it. */
export interface Backend {
  services: DescService[];
  url: string;
}

/** The platform services the gateway fronts, from the *_URL settings that are set. One row per platform service. */
export function backendsFromConfig(config: GatewayConfig): Backend[] {
  const backends: Backend[] = [];
  if (config.OMF_SENDER_URL) backends.push({ services: [OmfSenderService], url: config.OMF_SENDER_URL });
  if (config.IDIGI_LISTENER_URL) backends.push({ services: [IdigiListenerService], url: config.IDIGI_LISTENER_URL });
  if (config.OMNIA_READER_URL) backends.push({ services: [OmniaReaderService], url: config.OMNIA_READER_URL });
  if (config.IOTC_BRIDGE_URL) backends.push({ services: [IotcBridgeService], url: config.IOTC_BRIDGE_URL });
  if (config.OCI_TWIN_MANAGER_URL) backends.push({ services: [OciTwinManagerService], url: config.OCI_TWIN_MANAGER_URL });
  return backends;
}

const BACKEND_TLS_SETTINGS = ["BACKEND_CA_FILE", "BACKEND_CERT_FILE", "BACKEND_KEY_FILE"] as const;

/**
 * TLS towards the backends whose URL is https://: their certificates verified against BACKEND_CA_FILE (the system's
 * CAs when unset), and BACKEND_CERT_FILE / BACKEND_KEY_FILE presented when set (mTLS), followed for rotation.
 * Undefined when no file is set: https:// backends are then verified against the system's CAs by Node's defaults.
 * A file set while no backend is https:// is a ConfigError, so that a forgotten scheme cannot silently mean plaintext.
 */
export function backendTlsFromConfig(config: GatewayConfig, backends: Backend[], logger: Logger): ClientTls | undefined {
  const set = BACKEND_TLS_SETTINGS.filter((k) => config[k] !== undefined);
  const secured = backends.filter((b) => new URL(b.url).protocol === "https:");
  const plain = backends.filter((b) => new URL(b.url).protocol !== "https:");
  if (set.length > 0 && secured.length === 0) {
    throw new ConfigError(
      `${set.join(", ")}: set, but no backend URL is https:// (OMF_SENDER_URL, IDIGI_LISTENER_URL, OMNIA_READER_URL, IOTC_BRIDGE_URL, OCI_TWIN_MANAGER_URL)`,
      [...set],
    );
  }
  if (Boolean(config.BACKEND_CERT_FILE) !== Boolean(config.BACKEND_KEY_FILE)) {
    const missing = config.BACKEND_CERT_FILE ? "BACKEND_KEY_FILE" : "BACKEND_CERT_FILE";
    throw new ConfigError(`${missing}: required with ${missing === "BACKEND_KEY_FILE" ? "BACKEND_CERT_FILE" : "BACKEND_KEY_FILE"}`, [
      missing,
    ]);
  }
  if (secured.length > 0 && plain.length > 0) {
    logger.warn({ backends: plain.map((b) => b.url) }, "some backends are called without TLS while others use it");
  }
  if (set.length === 0) return undefined;
  const files: TlsFiles = {
    ...(config.BACKEND_CA_FILE ? { ca: { setting: "BACKEND_CA_FILE", path: config.BACKEND_CA_FILE } } : {}),
    ...(config.BACKEND_CERT_FILE ? { cert: { setting: "BACKEND_CERT_FILE", path: config.BACKEND_CERT_FILE } } : {}),
    ...(config.BACKEND_KEY_FILE ? { key: { setting: "BACKEND_KEY_FILE", path: config.BACKEND_KEY_FILE } } : {}),
  };
  const tls = clientTlsFromFiles(files, { logger, what: "backends" });
  logger.info(
    {
      backends: secured.map((b) => b.url),
      ca: config.BACKEND_CA_FILE ?? "system",
      clientCertificate: tls.certificate()?.subject.replaceAll("\n", ", ") ?? false,
    },
    "backends over TLS",
  );
  return tls;
}

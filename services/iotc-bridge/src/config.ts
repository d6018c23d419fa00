import { isAbsolute } from "node:path";
import { credentialsKeySettings } from "@meridian/service-kit";
import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

const absoluteDir = z
  .string()
  .min(2)
  .max(1024)
  .refine((p) => isAbsolute(p) && p !== "/", "must be an absolute directory other than /");

/**
 * iotc-bridge settings (environment variables, or `<NAME>_FILE` for secrets). Enrollment-group keys and device keys
 * are sealed in KV with IOTC_CREDENTIALS_KEY; without it the bridge holds no credential (CreateApplication with one
 * is failed_precondition, a declared application stops the start).
 */
export const iotcBridgeConfig = z
  .object({
    ...serviceSettings(8084),
    /** IOTC_CREDENTIALS_KEY (AES-256, base64) and IOTC_CREDENTIALS_PREVIOUS_KEYS (at most 8, for rotation). */
    ...credentialsKeySettings("IOTC"),
    /** JSON file of applications applied at start: `{"applications": [...]}` (README "Declared applications"). */
    IOTC_APPLICATIONS_FILE: z.string().min(1).max(4096).optional(),
    /** The one directory the applications file's `*_file` secrets may be read from. */
    IOTC_SECRET_DIR: absoluteDir.default("/run/secrets"),
    /**
     * PEM file of an extra trust anchor for DPS and the hubs (an emulator, a TLS-inspecting proxy), trusted beside the
     * system's for the whole process: the device SDK's DPS transport takes no CA of its own.
     */
    IOTC_CA_FILE: z.string().min(1).max(4096).optional(),
    /** Applications the bridge holds (declared and created through the API together). */
    IOTC_MAX_APPLICATIONS: z.coerce.number().int().min(1).max(1000).default(100),
    /**
     * Devices connected or connecting at once, across applications: an idle one is closed to make room, and past it a
     * route's message waits on the bus. Each is one MQTT connection (TLS, a few hundred KiB of memory).
     */
    IOTC_MAX_DEVICES: z.coerce.number().int().min(1).max(100_000).default(1000),
    /**
     * Device connects (DPS registrations and hub connections) per second across the bridge, so that a restart with
     * 1,000 devices is no reconnect storm (IoT Hub S1 admits 100 new connections/s per unit, DPS fewer).
     */
    IOTC_CONNECT_RATE: z.coerce.number().min(0.1).max(1000).default(10),
    /** Seconds without traffic before a device is disconnected (reconnected on demand); an application may override it. */
    IOTC_IDLE_DISCONNECT_SECONDS: z.coerce.number().int().min(60).max(86_400).default(900),
    /** Validity of the SAS tokens devices connect with. */
    IOTC_TOKEN_VALIDITY_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
    /** How long before expiry a device reconnects with a new token. */
    IOTC_TOKEN_RENEWAL_MARGIN_SECONDS: z.coerce.number().int().min(10).max(43_200).default(900),
    /** Telemetry messages one device may have waiting for IoT Hub's acknowledgement (PUBACK) at once. */
    IOTC_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100).default(8),
    /** Bus messages one route works on at once (across its devices). */
    IOTC_SINK_MAX_PARALLEL: z.coerce.number().int().min(1).max(1024).default(256),
    /** Redelivery deadline of a route's consumer while a device registers, connects and sends. */
    IOTC_SINK_ACK_WAIT_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
  })
  .superRefine((c, ctx) => {
    if (c.IOTC_TOKEN_RENEWAL_MARGIN_SECONDS >= c.IOTC_TOKEN_VALIDITY_SECONDS)
      ctx.addIssue({
        code: "custom",
        path: ["IOTC_TOKEN_RENEWAL_MARGIN_SECONDS"],
        message: `must be less than IOTC_TOKEN_VALIDITY_SECONDS (${c.IOTC_TOKEN_VALIDITY_SECONDS})`,
      });
  });

export type IotcBridgeConfig = z.infer<typeof iotcBridgeConfig>;

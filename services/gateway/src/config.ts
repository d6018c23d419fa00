import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

export const gatewayConfig = z.object({
  ...serviceSettings(8080),
  /** JSON file of routes applied at start: {"routes": [Route, ...]} in proto JSON. */
  ROUTES_FILE: z.string().optional(),
  /** Routes the mesh may hold: each one is a durable consumer on the stream and a pipeline in a sink service. */
  MAX_ROUTES: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** The built operations console served at / (console/dist); unset: where the repository and the image keep it. */
  CONSOLE_DIR: z.string().min(1).max(4096).optional(),
  /** Where the platform services listen; each one set is served through the gateway too. */
  OMF_SENDER_URL: z.url().optional(),
  IDIGI_LISTENER_URL: z.url().optional(),
  OMNIA_READER_URL: z.url().optional(),
  IOTC_BRIDGE_URL: z.url().optional(),
  OCI_TWIN_MANAGER_URL: z.url().optional(),
  /** TLS towards backends whose URL is https:// (README "Backends over TLS"): the CA their certificates chain to (unset: the system's). */
  BACKEND_CA_FILE: z.string().min(1).max(4096).optional(),
  /** The certificate and key the gateway presents to https:// backends that verify callers (mTLS); both or neither. */
  BACKEND_CERT_FILE: z.string().min(1).max(4096).optional(),
  BACKEND_KEY_FILE: z.string().min(1).max(4096).optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfig>;

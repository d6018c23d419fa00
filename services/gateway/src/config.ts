import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

export const gatewayConfig = z.object({
  ...serviceSettings(8080),
  /** JSON file of routes applied at start: {"routes": [Route, ...]} in proto JSON. */
  ROUTES_FILE: z.string().optional(),
  /** Where the platform services listen; each one set is served through the gateway too. */
  OMF_SENDER_URL: z.url().optional(),
  IDIGI_LISTENER_URL: z.url().optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfig>;

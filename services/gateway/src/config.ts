import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

export const gatewayConfig = z.object({
  ...serviceSettings(8080),
  /** JSON file of routes applied at start: {"routes": [Route, ...]} in proto JSON. */
  ROUTES_FILE: z.string().optional(),
  /** Routes the mesh may hold: each one is a durable consumer on the stream and a pipeline in a sink service. */
  MAX_ROUTES: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** Where the platform services listen; each one set is served through the gateway too. */
  OMF_SENDER_URL: z.url().optional(),
  IDIGI_LISTENER_URL: z.url().optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfig>;

import { natsSettings } from "@meridian/bus";
import { env } from "@meridian/service-kit";
import { z } from "zod";

export const gatewayConfig = z.object({
  PORT: env.port(8080),
  ...natsSettings,
  /** JSON file of routes applied at start: {"routes": [Route, ...]} in proto JSON. */
  ROUTES_FILE: z.string().optional(),
  INSTANCE_ID: z.string().default(process.env.HOSTNAME ?? "local"),
  /** Where the platform services listen; each one set is served through the gateway too. */
  OMF_SENDER_URL: z.url().optional(),
  IDIGI_LISTENER_URL: z.url().optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfig>;

import { env } from "@meridian/service-kit";
import { z } from "zod";

/** Settings shared by every service that talks to NATS. */
export const natsSettings = {
  NATS_URL: z.string().default("nats://localhost:4222"),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_CA_FILE: z.string().optional(),
  NATS_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  TELEMETRY_MAX_AGE_HOURS: z.coerce.number().positive().default(72),
  TELEMETRY_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 ** 3),
};

export const gatewayConfig = z.object({
  PORT: env.port(8080),
  ...natsSettings,
  /** JSON file of routes applied at start: {"routes": [Route, ...]} in proto JSON. */
  ROUTES_FILE: z.string().optional(),
  INSTANCE_ID: z.string().default(process.env.HOSTNAME ?? "local"),
});

export type GatewayConfig = z.infer<typeof gatewayConfig>;

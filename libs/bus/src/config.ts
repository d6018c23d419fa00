import type { Logger } from "pino";
import { z } from "zod";
import { Bus } from "./bus.js";

/**
 * The NATS settings every service reads, as environment variables; spread into a service's own
 * zod schema (`z.object({ ...natsSettings, PORT: ... })`) and pass the result to busFromConfig.
 */
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
  /**
   * Size limit of the DEADLETTER stream; full, its oldest letters go first. At least 1 MiB, so that one letter of
   * NATS's default max_payload always fits; at most 1 TiB.
   */
  DEADLETTER_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024 ** 2)
    .max(1024 ** 4)
    .default(1024 ** 3),
};

const natsSchema = z.object(natsSettings);
export type NatsSettings = z.infer<typeof natsSchema>;

/** Connects (in the background) with the settings above; see Bus.connect. */
export function busFromConfig(config: NatsSettings, name: string, logger: Logger): Bus {
  return Bus.connect({
    servers: config.NATS_URL.split(",").map((s) => s.trim()),
    name,
    logger,
    ...(config.NATS_USER ? { user: config.NATS_USER, pass: config.NATS_PASSWORD ?? "" } : {}),
    ...(config.NATS_TOKEN ? { token: config.NATS_TOKEN } : {}),
    ...(config.NATS_CA_FILE ? { tlsCaFile: config.NATS_CA_FILE } : {}),
    streams: {
      replicas: config.NATS_STREAM_REPLICAS,
      telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_HOURS * 3600_000,
      telemetryMaxBytes: config.TELEMETRY_MAX_BYTES,
      deadLetterMaxBytes: config.DEADLETTER_MAX_BYTES,
    },
  });
}

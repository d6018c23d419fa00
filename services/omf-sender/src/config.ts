import { env } from "@meridian/service-kit";
import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

/**
 * The key docker-compose.yml sets so that the quick start can store endpoint credentials. It is published in this
 * repository, so it protects nothing: omf-sender warns at start when it runs with it.
 */
export const DEVELOPMENT_CREDENTIALS_KEY = "bWVyaWRpYW4tZGV2LW9ubHkta2V5LW5vdC1zZWNyZXQ=";

export function isDevelopmentKey(key: Buffer): boolean {
  return key.equals(Buffer.from(DEVELOPMENT_CREDENTIALS_KEY, "base64"));
}

/** AES-256 key: 32 bytes, base64 (standard or url-safe). The value is never echoed in an error. */
const credentialsKey = z
  .string()
  .optional()
  .transform((s, ctx) => {
    if (s === undefined) return undefined;
    const bytes = Buffer.from(s.trim(), "base64");
    if (bytes.length !== 32) {
      ctx.addIssue({ code: "custom", message: "must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)" });
      return z.NEVER;
    }
    return bytes;
  });

export const omfSenderConfig = z.object({
  ...serviceSettings(8081),
  /** Key that encrypts endpoint credentials at rest in KV (AES-256-GCM). Without it, no credentials via the API. */
  OMF_CREDENTIALS_KEY: credentialsKey,
  /** JSON list of endpoint configs applied at start (`[...]` or `{"endpoints": [...]}`). */
  OMF_ENDPOINTS_FILE: z.string().optional(),
  /** Endpoints omf-sender may hold, declared and created through the API together. */
  OMF_MAX_ENDPOINTS: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Pipeline defaults; a route's options (maxBatchEvents, maxBatchBytes, lingerMs, maxInflightBatches) override them. */
  OMF_MAX_BATCH_EVENTS: z.coerce.number().int().min(1).max(100_000).default(2000),
  OMF_MAX_BATCH_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  OMF_LINGER_MS: env.durationMs(250, 60_000),
  OMF_MAX_INFLIGHT_BATCHES: z.coerce.number().int().min(1).max(32).default(4),
  /**
   * What one route's batches may hold at once (a batch being filled plus those in flight); route options that would
   * exceed it are reduced, with the reason in the route's status. Size it to a fraction of the pod's memory.
   */
  OMF_PIPELINE_MEMORY_BYTES: z.coerce
    .number()
    .int()
    .min(16 * 1024 * 1024)
    .max(8 * 1024 * 1024 * 1024)
    .default(256 * 1024 * 1024),
  /** How long a bus message may stay unacknowledged before NATS redelivers it (extended by working() while sending). */
  OMF_ACK_WAIT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
});

export type OmfSenderConfig = z.infer<typeof omfSenderConfig>;

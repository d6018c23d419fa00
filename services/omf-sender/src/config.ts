import { isAbsolute } from "node:path";
import { credentialsKeySettings, env } from "@meridian/service-kit";
import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

/** `pi.plant.local`, `*.osisoft.com`, either with `:port`; a bare `*` is refused (it would be no list at all). */
export const HOST_PATTERN =
  /^(\*\.)?([a-z0-9]([a-z0-9-]{0,62})?)(\.[a-z0-9]([a-z0-9-]{0,62})?)*(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$/;

const hostList = z
  .string()
  .default("")
  .transform((s, ctx) => {
    const items = s
      .split(/[\s,]+/)
      .map((x) => x.trim().toLowerCase())
      .filter(Boolean);
    if (items.length > 100) {
      ctx.addIssue({ code: "custom", message: "at most 100 host patterns" });
      return z.NEVER;
    }
    for (const item of items)
      if (!HOST_PATTERN.test(item))
        ctx.addIssue({ code: "custom", message: `"${item}": must be a host name, *.domain or an [IPv6] address, optionally with :port` });
    return items;
  });

const absoluteDir = z
  .string()
  .min(2)
  .max(1024)
  .refine((p) => isAbsolute(p) && p !== "/", "must be an absolute directory other than /");

export const omfSenderConfig = z.object({
  ...serviceSettings(8081),
  /**
   * OMF_CREDENTIALS_KEY: the key that seals endpoint credentials at rest in KV (AES-256-GCM); without it, no
   * credentials via the API. OMF_CREDENTIALS_PREVIOUS_KEYS: keys that sealed credentials before it (comma- or
   * space-separated, base64, at most 8): records they sealed still open, and are sealed again under the current key
   * when they are next written.
   */
  ...credentialsKeySettings("OMF"),
  /** JSON list of endpoint configs applied at start (`[...]` or `{"endpoints": [...]}`). */
  OMF_ENDPOINTS_FILE: z.string().optional(),
  /** Endpoints omf-sender may hold, declared and created through the API together. */
  OMF_MAX_ENDPOINTS: z.coerce.number().int().min(1).max(10_000).default(100),
  /**
   * Hosts omf-sender may send to, besides those of the endpoints in OMF_ENDPOINTS_FILE (always allowed: the operator
   * declared them). Unset: only those. Checked when an endpoint is created or updated, and again before every send.
   */
  OMF_ALLOWED_HOSTS: hostList,
  /**
   * Permits endpoints that weaken transport security: insecure_skip_tls_verify, allow_http, plain http to an Edge Data
   * Store off this host. Off: such endpoints are refused (API) or stop the start (file), and one already stored is not
   * sent to. On: each is logged at warn at start and listed in its status.
   */
  OMF_ALLOW_INSECURE_ENDPOINTS: env.bool(false),
  /** The one directory CA bundles (caPemPath) may be read from; unset: no private CA is accepted. */
  OMF_CA_DIR: absoluteDir.optional(),
  /** {"env": NAME} secret references of the endpoints file must start with this (so a reference cannot read NATS_PASSWORD). */
  OMF_SECRET_ENV_PREFIX: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{1,63}$/, "must be 2-64 upper-case letters, digits or '_', starting with a letter")
    .default("OMF_SECRET_"),
  /** {"file": path} secret references of the endpoints file must lie inside this directory. */
  OMF_SECRET_DIR: absoluteDir.default("/run/secrets"),
  /**
   * OMF containers (PI points come from them) omf-sender creates at one endpoint: events that would need a new one
   * beyond it are dead-lettered, so forged devices cannot create points without end; existing containers keep flowing.
   */
  OMF_MAX_CONTAINERS_PER_ENDPOINT: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
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
  /**
   * The longest one flush (a batch's endpoint record, read-back, ledger note, send, record) may run. Past it the flush
   * is aborted and its messages go back to the bus with the backoff, and its heartbeat stops, so a flush stuck on
   * something that ignores the abort no longer keeps its messages from redelivery for ever. Keep it above the longest
   * legitimate flush: a few of the endpoint's `timeoutMs`.
   */
  OMF_FLUSH_MAX_MS: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
});

export type OmfSenderConfig = z.infer<typeof omfSenderConfig>;

import { env } from "@meridian/service-kit";
import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

/**
 * idigi-listener settings (environment variables, or `<NAME>_FILE` for secrets). The platform account is
 * configuration only: requests never carry credentials, and credentials are never written to KV or logs.
 *
 * The seed CLI's `--host my.idigi.com` is `IDIGI_URL=https://my.idigi.com`; its `--insecure` (plain HTTP and
 * plain TCP on 3200) is an `http://` IDIGI_URL, which makes IDIGI_PUSH_TLS default to false.
 */
const MIB = 1024 * 1024;
/** A few typical blocks; a block larger than the budget is still taken, alone. */
export const MIN_MONITOR_MEMORY_BYTES = MIB;
export const MAX_MONITOR_MEMORY_BYTES = 8 * 1024 * MIB;
/** The default IDIGI_MAX_UNACKED (16) of the largest blocks seen in practice (a few hundred KB to 2 MiB inflated). */
export const DEFAULT_MONITOR_MEMORY_BYTES = 32 * MIB;

export const idigiListenerConfig = z.object({
  ...serviceSettings(8082),
  /** REST base URL of the platform. */
  IDIGI_URL: z.url().default("https://remotemanager.digi.com"),
  /** `legacy` (/ws/Monitor, XML) or `v1` (/ws/v1/monitors/inventory, JSON). */
  IDIGI_API: z.enum(["legacy", "v1"]).default("legacy"),
  IDIGI_USERNAME: z.string().min(1).max(256),
  IDIGI_PASSWORD: z.string().max(1024),
  /** Push (TCP) host; default: IDIGI_URL's host. */
  IDIGI_PUSH_HOST: z.string().min(1).max(253).optional(),
  /** Push port; default 3201 with TLS, 3200 without. */
  IDIGI_PUSH_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** TLS for the push session; default true for an https IDIGI_URL, false for http (the seed's --insecure). */
  IDIGI_PUSH_TLS: z
    .enum(["true", "false", "1", "0", "yes", "no"])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === "true" || v === "1" || v === "yes")),
  /** PEM file of CA certificates to trust for the push session (replaces the system roots). */
  IDIGI_CA_FILE: z.string().optional(),
  /** Skip certificate verification of the push session. Never implied; needs IDIGI_ALLOW_INSECURE. */
  IDIGI_TLS_INSECURE: env.bool(false),
  /**
   * Lets the account's credentials go where they are not protected: over plain TCP (IDIGI_PUSH_TLS=false), plain HTTP
   * (an http:// IDIGI_URL) or to a push server whose certificate is not verified (IDIGI_TLS_INSECURE). Without it such a
   * configuration stops the start; with it the start logs a warning and ListSessions names what is exposed. For
   * emulators and debugging (Digi calls port 3200 "for debugging").
   */
  IDIGI_ALLOW_INSECURE: env.bool(false),
  /**
   * What one monitor's blocks may hold in the listener, received and not yet published and acknowledged (bytes on
   * the wire plus inflated payload). At the budget the listener stops reading that monitor's socket, so the platform
   * keeps the data, until the bus has taken what is held.
   */
  IDIGI_MONITOR_MEMORY_BYTES: z.coerce
    .number()
    .int()
    .min(MIN_MONITOR_MEMORY_BYTES)
    .max(MAX_MONITOR_MEMORY_BYTES)
    .default(DEFAULT_MONITOR_MEMORY_BYTES),
  /** Blocks received and not acknowledged before the socket is paused (back-pressure). */
  IDIGI_MAX_UNACKED: z.coerce.number().int().min(1).max(10_000).default(16),
  /** Per-monitor memory of published event ids, so a replay regrouped into other blocks is not published twice. */
  IDIGI_DEDUPE_EVENTS: z.coerce.number().int().min(0).max(10_000_000).default(100_000),
  /**
   * JSON file of monitors to listen to, applied at start: `{"monitors": [CreateMonitorRequest, …]}` in proto JSON.
   * A monitor with the same topic list is reused, else created; its session is started (and resumed after restarts).
   */
  IDIGI_MONITORS_FILE: z.string().optional(),
  /** Monitors the account may hold before CreateMonitor refuses to add one: each is a push session to hold open. */
  IDIGI_MAX_MONITORS: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Attach each event's pushed message (JSON) as the raw payload. */
  IDIGI_INCLUDE_RAW: env.bool(false),
});

export type IdigiListenerConfig = z.infer<typeof idigiListenerConfig>;

/** Where push sessions connect (no secrets): what ListSessions shows. Always from the settings, never from KV. */
export interface PushTarget {
  host: string;
  port: number;
  tls: boolean;
  verifyCertificate: boolean;
}

export function pushTarget(config: IdigiListenerConfig): PushTarget {
  const url = new URL(config.IDIGI_URL);
  const tls = config.IDIGI_PUSH_TLS ?? url.protocol === "https:";
  return {
    host: config.IDIGI_PUSH_HOST ?? url.hostname.replace(/^\[|\]$/g, ""),
    port: config.IDIGI_PUSH_PORT ?? (tls ? 3201 : 3200),
    tls,
    verifyCertificate: tls && !config.IDIGI_TLS_INSECURE,
  };
}

/** One way the settings expose the account's credentials, and the setting that chose it. */
export interface Exposure {
  setting: string;
  what: string;
}

/** What in the settings sends the credentials unprotected; each one needs IDIGI_ALLOW_INSECURE. */
export function exposures(config: IdigiListenerConfig): Exposure[] {
  const out: Exposure[] = [];
  if (new URL(config.IDIGI_URL).protocol !== "https:") out.push({ setting: "IDIGI_URL", what: "REST API over http" });
  const target = pushTarget(config);
  if (!target.tls)
    out.push({ setting: config.IDIGI_PUSH_TLS === undefined ? "IDIGI_URL" : "IDIGI_PUSH_TLS", what: "push session without TLS" });
  else if (!target.verifyCertificate) out.push({ setting: "IDIGI_TLS_INSECURE", what: "push server certificate not verified" });
  return out;
}

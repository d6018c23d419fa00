import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { z } from "zod";
import { Bus } from "./bus.js";

/**
 * A file the process must be able to read at start (a CA, a client certificate or key, a creds file). The path is
 * checked here so that a missing or unreadable one stops the start naming its setting (service-kit's loadConfig turns
 * the issue into a ConfigError), instead of every connection attempt failing in the background. The content is read
 * again at each connect, so a rotated file is used after the next reconnect.
 */
function readableFile() {
  return z
    .string()
    .min(1)
    .max(4096)
    .superRefine((path, ctx) => {
      try {
        readFileSync(path);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      }
    });
}

/**
 * The NATS settings every service reads, as environment variables; spread into a service's own
 * zod schema (`z.object({ ...natsSettings, PORT: ... })`) and pass the result to busFromConfig.
 *
 * Secrets come from files on a real deployment: service-kit's loadConfig reads `NATS_PASSWORD_FILE` into
 * NATS_PASSWORD (and `NATS_TOKEN_FILE` into NATS_TOKEN), and a file it cannot read is a ConfigError naming it.
 */
export const natsSettings = {
  /**
   * Comma-separated for a cluster; `tls://` where NATS requires TLS. Credentials in it (`nats://user:password@host`)
   * are used when NATS_USER and NATS_TOKEN are unset, and never logged; prefer NATS_PASSWORD_FILE.
   */
  NATS_URL: z.string().min(1).max(4096).default("nats://localhost:4222"),
  NATS_USER: z.string().min(1).max(256).optional(),
  NATS_PASSWORD: z.string().max(4096).optional(),
  NATS_TOKEN: z.string().max(4096).optional(),
  /** A NATS creds file (user JWT and NKey seed, for an operator-mode server); instead of user and password. */
  NATS_CREDS_FILE: readableFile().optional(),
  /** PEM CA that signed the NATS server's certificate; set, the connection uses TLS and verifies the server. */
  NATS_CA_FILE: readableFile().optional(),
  /** PEM client certificate and its key, for a server that verifies clients (`tls { verify: true }`); both or neither. */
  NATS_CERT_FILE: readableFile().optional(),
  NATS_KEY_FILE: readableFile().optional(),
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
  /**
   * Size limit of the CLOUD_TO_DEVICE stream (commands and writable-property changes from platforms); full, its oldest
   * messages go first. 1 MiB to 1 TiB; the default, 256 MiB, holds a day of commands for many thousand devices.
   */
  CLOUD_TO_DEVICE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024 ** 2)
    .max(1024 ** 4)
    .default(256 * 1024 ** 2),
  /**
   * A durable consumer whose oldest unacknowledged message is older than this is reported (status warning, metric,
   * warn log): its sink is falling behind, and past the stream's age or size limit its data is discarded. 1 minute to
   * 30 days; the default, 1 hour, leaves a sink most of the 72-hour catch-up horizon to be fixed.
   */
  BACKLOG_AGE_WARN_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .default(3600),
};

const natsSchema = z.object(natsSettings);
export type NatsSettings = z.infer<typeof natsSchema>;

/** A setting that cannot work with the others (named in the message); the start stops. */
export class NatsSettingsError extends Error {
  constructor(
    message: string,
    /** The settings to fix, by their environment variable names. */
    readonly settings: string[],
  ) {
    super(message);
    this.name = "NatsSettingsError";
  }
}

/** Connects (in the background) with the settings above; see Bus.connect. */
export function busFromConfig(config: NatsSettings, name: string, logger: Logger): Bus {
  if (Boolean(config.NATS_CERT_FILE) !== Boolean(config.NATS_KEY_FILE)) {
    throw new NatsSettingsError("NATS_CERT_FILE and NATS_KEY_FILE go together: set both or neither", ["NATS_CERT_FILE", "NATS_KEY_FILE"]);
  }
  const ways = [config.NATS_USER && "NATS_USER", config.NATS_TOKEN && "NATS_TOKEN", config.NATS_CREDS_FILE && "NATS_CREDS_FILE"].filter(
    (w): w is string => Boolean(w),
  );
  if (ways.length > 1) throw new NatsSettingsError(`${ways.join(", ")}: set one way to authenticate to NATS`, ways);
  return Bus.connect({
    servers: config.NATS_URL.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    name,
    logger,
    ...(config.NATS_USER ? { user: config.NATS_USER, pass: config.NATS_PASSWORD ?? "" } : {}),
    ...(config.NATS_TOKEN ? { token: config.NATS_TOKEN } : {}),
    ...(config.NATS_CREDS_FILE ? { credsFile: config.NATS_CREDS_FILE } : {}),
    ...(config.NATS_CA_FILE ? { tlsCaFile: config.NATS_CA_FILE } : {}),
    ...(config.NATS_CERT_FILE && config.NATS_KEY_FILE ? { tlsCertFile: config.NATS_CERT_FILE, tlsKeyFile: config.NATS_KEY_FILE } : {}),
    backlogAgeWarnMs: config.BACKLOG_AGE_WARN_SECONDS * 1000,
    streams: {
      replicas: config.NATS_STREAM_REPLICAS,
      telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_HOURS * 3600_000,
      telemetryMaxBytes: config.TELEMETRY_MAX_BYTES,
      deadLetterMaxBytes: config.DEADLETTER_MAX_BYTES,
      cloudToDeviceMaxBytes: config.CLOUD_TO_DEVICE_MAX_BYTES,
    },
  });
}

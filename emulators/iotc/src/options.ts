import { randomBytes } from "node:crypto";
import type { Logger } from "@meridian/service-kit";
import { z } from "zod";

export interface IotcEmulatorOptions {
  /** Bind address, default 127.0.0.1. */
  host?: string;
  /** MQTT/TLS port for DPS and the hub, default 0 (a free port). */
  port?: number;
  /** HTTPS: DPS REST and /_emulator, default 0 (a free port). */
  httpsPort?: number;
  /** Default "0ne00EMU001". */
  idScope?: string;
  /** The assignedHub, default "iotc-emulator.azure-devices.net". */
  hubHostName?: string;
  /** Default "global.azure-devices-provisioning.net" (a certificate name only). */
  provisioningHostName?: string;
  /** SAS enrollment group primary key (base64), generated when unset. */
  groupKey?: string;
  /** The application API token (for the REST surface), generated when unset. */
  apiToken?: string;
  /** 202 answers before the 200, default 1. */
  assigningPolls?: number;
  /** retry-after on 202s, default 1. */
  retryAfterSeconds?: number;
  /** Disconnect this long after a token's se, default 0. */
  sasGraceMs?: number;
  extraHostNames?: string[];
  /** Telemetry messages kept, oldest dropped first; default 10 000. */
  maxTelemetry?: number;
  /** Telemetry body bytes kept, oldest dropped first; default 64 MiB. */
  maxTelemetryBytes?: number;
  /** Devices the emulator holds; default 10 000. */
  maxDevices?: number;
  logger?: Logger;
}

const hostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.\-:]+$/, "must be a host name or IP address");
const base64Key = z
  .string()
  .regex(/^[A-Za-z0-9+/]{16,}={0,2}$/, "must be a base64 key of at least 12 bytes")
  .max(1024);

export const OptionsSchema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(0),
  httpsPort: z.number().int().min(0).max(65535).default(0),
  idScope: z
    .string()
    .regex(/^[A-Za-z0-9]{1,64}$/, "must be letters and digits, e.g. 0ne00EMU001")
    .default("0ne00EMU001"),
  hubHostName: hostName.default("iotc-emulator.azure-devices.net"),
  provisioningHostName: hostName.default("global.azure-devices-provisioning.net"),
  groupKey: base64Key.optional(),
  apiToken: z.string().min(16).max(4096).optional(),
  assigningPolls: z.number().int().min(0).max(100).default(1),
  retryAfterSeconds: z.number().int().min(0).max(3600).default(1),
  sasGraceMs: z.number().int().min(0).max(86_400_000).default(0),
  extraHostNames: z.array(hostName).max(100).default([]),
  maxTelemetry: z.number().int().min(1).max(10_000_000).default(10_000),
  maxTelemetryBytes: z
    .number()
    .int()
    .min(1024)
    .max(4 * 1024 ** 3)
    .default(64 * 1024 ** 2),
  maxDevices: z.number().int().min(1).max(1_000_000).default(10_000),
});

export type ResolvedOptions = z.output<typeof OptionsSchema> & { groupKey: string; apiToken: string };

export class OptionsError extends Error {
  override name = "OptionsError";
}

export function resolveOptions(options: IotcEmulatorOptions): ResolvedOptions {
  const { logger: _logger, ...rest } = options;
  const r = OptionsSchema.safeParse(rest);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new OptionsError(`option ${issue.path.join(".")}: ${issue.message}`);
  }
  return {
    ...r.data,
    groupKey: r.data.groupKey ?? randomBytes(64).toString("base64"),
    apiToken:
      r.data.apiToken ?? `SharedAccessSignature sr=emulator&sig=${randomBytes(32).toString("base64url")}&skn=operator&se=4102444800`,
  };
}

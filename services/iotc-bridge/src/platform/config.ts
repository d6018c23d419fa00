import { z } from "zod";
import { IotcInvalidArgumentError } from "./errors.js";

// host or host:port, no scheme, no path: what the SDK puts after mqtts://.
const hostPort = z
  .string()
  .min(1)
  .max(300)
  .regex(
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/,
    {
      message: "must be host or host:port (no scheme, no path)",
    },
  );

export const provisioningEndpointSchema = z.object({
  idScope: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9-]+$/, { message: "must be an ID scope such as 0ne00000000" }),
  provisioningHost: hostPort,
  gatewayHost: hostPort.optional(),
});

/** DPS's global device endpoint. */
export const GLOBAL_PROVISIONING_HOST = "global.azure-devices-provisioning.net";

/** Bounds of the registration and device settings; every one has a safe default. */
export const registerOptionsSchema = z.object({
  modelId: z.string().min(1).max(512).optional(),
  /** The whole registration, throttled retries included. */
  timeoutMs: z.number().int().min(1000).max(600_000).default(60_000),
});

export const reconnectPolicySchema = z.object({
  initialMs: z.number().int().min(10).max(60_000).default(1000),
  maxMs: z.number().int().min(100).max(600_000).default(60_000),
  multiplier: z.number().min(1).max(10).default(2),
  jitter: z.number().min(0).max(1).default(0.5),
});

export const deviceSettingsSchema = z
  .object({
    modelId: z.string().min(1).max(512).optional(),
    /** SAS token validity; the SDK renews it `tokenRenewalMarginSeconds` before expiry by reconnecting. */
    tokenValiditySeconds: z.number().int().min(10).max(86_400).default(3600),
    tokenRenewalMarginSeconds: z.number().int().min(1).max(43_200).default(900),
    /** Registration through DPS (throttling included) must finish within this. */
    registrationTimeoutMs: z.number().int().min(1000).max(600_000).default(60_000),
    /** A CONNECT, PUBACK or twin response not there by then is a timeout. */
    operationTimeoutMs: z.number().int().min(1000).max(300_000).default(30_000),
    /** IoT Central waits 30 s for a command's response: 2 s less, so that the bridge's own 504 (saying why) reaches it, not the hub's. */
    commandTimeoutMs: z.number().int().min(1000).max(300_000).default(28_000),
    /**
     * How long an offline command's handler may take. mqtt.js reads nothing else from the hub while a PUBACK is held,
     * so this is kept well under the keep-alive.
     */
    offlineCommandTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
    /** MQTT keep-alive; IoT Hub closes a connection after 1.5 times it without traffic (at most 1177 s). */
    keepAliveSeconds: z.number().int().min(5).max(1177).default(180),
    reconnect: reconnectPolicySchema.default({ initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0.5 }),
    ca: z.string().min(1).max(1_000_000).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.tokenRenewalMarginSeconds >= s.tokenValiditySeconds)
      ctx.addIssue({
        code: "custom",
        path: ["tokenRenewalMarginSeconds"],
        message: `must be less than tokenValiditySeconds (${s.tokenValiditySeconds})`,
      });
    if (s.reconnect.maxMs < s.reconnect.initialMs)
      ctx.addIssue({ code: "custom", path: ["reconnect", "maxMs"], message: "must not be less than reconnect.initialMs" });
  });

export type DeviceSettings = z.infer<typeof deviceSettingsSchema>;

/** `schema.parse(value)`, a failure as IotcInvalidArgumentError naming the first bad field (prefixed by `field`). */
export function parseSettings<T extends z.ZodType>(schema: T, value: unknown, field: string): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = [field, ...issue.path.map(String)].filter((p) => p !== "").join(".");
  throw new IotcInvalidArgumentError(path || field, issue.message);
}

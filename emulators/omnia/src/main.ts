import { readFileSync } from "node:fs";
import { logRequests, stopOnSignals } from "@meridian/emulator-kit";
import { createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { z } from "zod";
import { parseFaultConfig } from "./faults.js";
import { startOmniaEmulator } from "./index.js";
import { DEFAULT_RESOURCE_ID } from "./options.js";
import { parseRateLimit } from "./rate-limit.js";

const bool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"])
    .default(def ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);
const list = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  );

const Env = z
  .object({
    PORT: int(8443, 0, 65535),
    HOST: z.string().default("0.0.0.0"),
    OMNIA_EMU_TLS: bool(true),
    OMNIA_EMU_TLS_HOSTNAMES: list,
    OMNIA_EMU_CA_FILE: z.string().optional(),
    /** `verify` (default) checks every token against the identity provider's keys; `none` accepts any bearer token. */
    OMNIA_EMU_AUTH: z.enum(["verify", "none"]).default("verify"),
    /** OpenID authority of the token issuer, e.g. the Entra emulator's `https://entra:8443/<tenant>/v2.0`. */
    OMNIA_EMU_AUTHORITY: z.string().url().optional(),
    OMNIA_EMU_JWKS_URI: z.string().url().optional(),
    OMNIA_EMU_ISSUERS: list,
    /** CA (PEM file) that signed the identity provider's certificate. */
    OMNIA_EMU_AUTH_CA_FILE: z.string().optional(),
    OMNIA_EMU_RESOURCE_ID: z.string().min(1).default(DEFAULT_RESOURCE_ID),
    /** Accepted audiences; default the resource id and api://<resource id>. */
    OMNIA_EMU_AUDIENCES: list,
    OMNIA_EMU_REQUIRED_ROLE: z.string().optional(),
    OMNIA_EMU_SEED: z.string().min(1).default("meridian"),
    OMNIA_EMU_SEED_POINTS: int(2880, 0, 1_000_000),
    OMNIA_EMU_SEED_STEP_SECONDS: int(60, 1, 86_400),
    OMNIA_EMU_SEED_END_TIME: z.string().default("2026-01-01T00:00:00Z"),
    OMNIA_EMU_LIVE_INTERVAL_MS: int(5000, 0, 3_600_000),
    OMNIA_EMU_DEFAULT_LIMIT: int(1000, 1, 100_000),
    OMNIA_EMU_MAX_LIMIT: int(100_000, 1, 10_000_000),
    OMNIA_EMU_MAX_MULTI_ITEMS: int(100, 1, 10_000),
    OMNIA_EMU_END_INCLUSIVE: bool(false),
    OMNIA_EMU_MAX_POINTS_PER_SERIES: int(1_000_000, 1000, 50_000_000),
    /** The gateway's rate limit as `<requests>/<seconds>`, e.g. `100/60`; default none. */
    OMNIA_EMU_RATE_LIMIT: z
      .string()
      .regex(/^\d{1,7}\/\d{1,5}$/, "must be <requests>/<seconds>, e.g. 100/60")
      .optional()
      .transform((s, ctx) => {
        if (!s) return undefined;
        const [requests, perSeconds] = s.split("/").map(Number);
        try {
          return parseRateLimit({ requests, perSeconds });
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
          return z.NEVER;
        }
      }),
    OMNIA_EMU_FAULTS: z
      .string()
      .optional()
      .transform((s, ctx) => {
        if (!s) return undefined;
        try {
          return parseFaultConfig(JSON.parse(s));
        } catch (err) {
          ctx.addIssue({ code: "custom", message: `not a valid fault config: ${(err as Error).message}` });
          return z.NEVER;
        }
      }),
  })
  .refine((e) => e.OMNIA_EMU_AUTH === "none" || e.OMNIA_EMU_AUTHORITY || e.OMNIA_EMU_JWKS_URI, {
    message: "OMNIA_EMU_AUTH=verify needs OMNIA_EMU_AUTHORITY or OMNIA_EMU_JWKS_URI (or set OMNIA_EMU_AUTH=none for tests)",
    path: ["OMNIA_EMU_AUTHORITY"],
  });

const env = loadConfigOrExit(Env);
const log = createLogger("emulator-omnia");

const emulator = await startOmniaEmulator({
  port: env.PORT,
  host: env.HOST,
  tls: env.OMNIA_EMU_TLS,
  tlsHostnames: env.OMNIA_EMU_TLS_HOSTNAMES,
  caFile: env.OMNIA_EMU_CA_FILE,
  resourceId: env.OMNIA_EMU_RESOURCE_ID,
  auth: {
    mode: env.OMNIA_EMU_AUTH,
    authority: env.OMNIA_EMU_AUTHORITY,
    jwksUri: env.OMNIA_EMU_JWKS_URI,
    issuers: env.OMNIA_EMU_ISSUERS.length ? env.OMNIA_EMU_ISSUERS : undefined,
    caPem: env.OMNIA_EMU_AUTH_CA_FILE ? readFileSync(env.OMNIA_EMU_AUTH_CA_FILE, "utf8") : undefined,
    requiredRole: env.OMNIA_EMU_REQUIRED_ROLE,
    ...(env.OMNIA_EMU_AUDIENCES.length ? { audiences: env.OMNIA_EMU_AUDIENCES } : {}),
  },
  seed: env.OMNIA_EMU_SEED,
  seedPoints: env.OMNIA_EMU_SEED_POINTS,
  seedStepSeconds: env.OMNIA_EMU_SEED_STEP_SECONDS,
  seedEndTime: env.OMNIA_EMU_SEED_END_TIME,
  liveIntervalMs: env.OMNIA_EMU_LIVE_INTERVAL_MS,
  defaultLimit: env.OMNIA_EMU_DEFAULT_LIMIT,
  maxLimit: env.OMNIA_EMU_MAX_LIMIT,
  maxMultiItems: env.OMNIA_EMU_MAX_MULTI_ITEMS,
  endInclusive: env.OMNIA_EMU_END_INCLUSIVE,
  maxPointsPerSeries: env.OMNIA_EMU_MAX_POINTS_PER_SERIES,
  faults: env.OMNIA_EMU_FAULTS,
  rateLimit: env.OMNIA_EMU_RATE_LIMIT,
  onRequest: logRequests(log),
});

log.info(
  {
    url: emulator.url,
    baseUrl: emulator.baseUrl,
    tls: env.OMNIA_EMU_TLS,
    caFile: env.OMNIA_EMU_CA_FILE,
    auth: env.OMNIA_EMU_AUTH,
    authority: env.OMNIA_EMU_AUTHORITY,
  },
  "Omnia Timeseries emulator listening",
);

stopOnSignals(() => emulator.stop(), log);

import { logRequests, stopOnSignals } from "@meridian/emulator-kit";
import { createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { z } from "zod";
import { parseFaultConfig } from "./faults.js";
import { startOmfEmulator } from "./index.js";
import { DEFAULTS, type PiUser } from "./options.js";
import { parseSettingsPatch, type SettingsPatch } from "./settings.js";

const bool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"])
    .default(def ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (def: number) => z.coerce.number().int().min(0).default(def);

const Env = z.object({
  PORT: int(8443),
  HOST: z.string().default("0.0.0.0"),
  OMF_EMULATOR_ADMIN_PORT: z.coerce.number().int().min(0).optional(),
  OMF_EMULATOR_TLS: bool(false),
  OMF_EMULATOR_TLS_HOSTNAMES: z.string().default(""),
  OMF_EMULATOR_CA_FILE: z.string().optional(),
  OMF_EMULATOR_PUBLIC_URL: z.string().url().optional(),
  OMF_EMULATOR_PI_USERNAME: z.string().min(1).default(DEFAULTS.piUser.username),
  OMF_EMULATOR_PI_PASSWORD: z.string().min(1).default(DEFAULTS.piUser.password),
  OMF_EMULATOR_PI_READONLY_USERNAME: z.string().optional(),
  OMF_EMULATOR_PI_READONLY_PASSWORD: z.string().optional(),
  OMF_EMULATOR_PI_DATA_SERVER: z.string().min(1).default(DEFAULTS.piDataServerName),
  OMF_EMULATOR_PI_CREATE_MODE: z.string().optional(),
  OMF_EMULATOR_ADH_CREATE_MODE: z.string().optional(),
  OMF_EMULATOR_EDS_CREATE_MODE: z.string().optional(),
  OMF_EMULATOR_PI_UPDATE: z.string().optional(),
  OMF_EMULATOR_PI_POINT_NAMES: z.string().optional(),
  OMF_EMULATOR_PI_RELEASE: z.string().optional(),
  OMF_EMULATOR_EDS_RELEASE: z.string().optional(),
  OMF_EMULATOR_SDS_CONFLICT_STATUS: z.coerce.number().int().optional(),
  OMF_EMULATOR_SDS_TIMESTAMPS: z.string().optional(),
  OMF_EMULATOR_PI_CSRF: bool(true),
  OMF_EMULATOR_PI_CSRF_STATUS: int(403),
  OMF_EMULATOR_ADH_CLIENT_ID: z.string().min(1).default(DEFAULTS.adhClient.clientId),
  OMF_EMULATOR_ADH_CLIENT_SECRET: z.string().min(1).default(DEFAULTS.adhClient.clientSecret),
  OMF_EMULATOR_ADH_TENANT: z.string().optional(),
  OMF_EMULATOR_TOKEN_LIFETIME_SECONDS: int(DEFAULTS.tokenLifetimeSeconds),
  OMF_EMULATOR_MAX_BODY_PI: int(DEFAULTS.maxBodyPi),
  OMF_EMULATOR_MAX_BODY_ADH: int(DEFAULTS.maxBodySds),
  OMF_EMULATOR_MAX_BODY_EDS: int(DEFAULTS.maxBodySds),
  OMF_EMULATOR_MAX_INFLATED: int(DEFAULTS.maxInflated),
  OMF_EMULATOR_STRICT: bool(false),
  OMF_EMULATOR_RECORD_ARRIVALS: bool(false),
  OMF_EMULATOR_FAULTS: z
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
});

const env = loadConfigOrExit(Env);
const log = createLogger("emulator-omf");

/** Which variable carries each setting, to name it when its value is refused. */
const SETTINGS_ENV: Record<string, string> = {
  "createMode.pi": "OMF_EMULATOR_PI_CREATE_MODE",
  "createMode.adh": "OMF_EMULATOR_ADH_CREATE_MODE",
  "createMode.eds": "OMF_EMULATOR_EDS_CREATE_MODE",
  piUpdate: "OMF_EMULATOR_PI_UPDATE",
  piPointNames: "OMF_EMULATOR_PI_POINT_NAMES",
  piRelease: "OMF_EMULATOR_PI_RELEASE",
  edsRelease: "OMF_EMULATOR_EDS_RELEASE",
  sdsConflictStatus: "OMF_EMULATOR_SDS_CONFLICT_STATUS",
  sdsTimestamps: "OMF_EMULATOR_SDS_TIMESTAMPS",
};

// The settings are validated by the same parser as `POST /_emulator/settings`, so the values and errors are the same.
let settings: SettingsPatch;
try {
  settings = parseSettingsPatch(
    JSON.parse(
      JSON.stringify({
        createMode: { pi: env.OMF_EMULATOR_PI_CREATE_MODE, adh: env.OMF_EMULATOR_ADH_CREATE_MODE, eds: env.OMF_EMULATOR_EDS_CREATE_MODE },
        piUpdate: env.OMF_EMULATOR_PI_UPDATE,
        piPointNames: env.OMF_EMULATOR_PI_POINT_NAMES,
        piRelease: env.OMF_EMULATOR_PI_RELEASE,
        edsRelease: env.OMF_EMULATOR_EDS_RELEASE,
        strict: env.OMF_EMULATOR_STRICT,
        sdsConflictStatus: env.OMF_EMULATOR_SDS_CONFLICT_STATUS,
        sdsTimestamps: env.OMF_EMULATOR_SDS_TIMESTAMPS,
      }),
    ),
  );
} catch (err) {
  const field = (err as { field?: string }).field ?? "";
  const variable = SETTINGS_ENV[field] ?? "OMF_EMULATOR_*";
  log.fatal({ variable, error: (err as Error).message }, `invalid ${variable}`);
  process.exit(1);
}

const piUsers: PiUser[] = [{ username: env.OMF_EMULATOR_PI_USERNAME, password: env.OMF_EMULATOR_PI_PASSWORD }];
if (env.OMF_EMULATOR_PI_READONLY_USERNAME && env.OMF_EMULATOR_PI_READONLY_PASSWORD)
  piUsers.push({ username: env.OMF_EMULATOR_PI_READONLY_USERNAME, password: env.OMF_EMULATOR_PI_READONLY_PASSWORD, readOnly: true });

const emulator = await startOmfEmulator({
  port: env.PORT,
  adminPort: env.OMF_EMULATOR_ADMIN_PORT,
  host: env.HOST,
  tls: env.OMF_EMULATOR_TLS,
  tlsHostnames: env.OMF_EMULATOR_TLS_HOSTNAMES.split(",")
    .map((s) => s.trim())
    .filter(Boolean),
  caFile: env.OMF_EMULATOR_CA_FILE,
  publicUrl: env.OMF_EMULATOR_PUBLIC_URL,
  piUsers,
  piDataServerName: env.OMF_EMULATOR_PI_DATA_SERVER,
  settings,
  piCsrfDefense: env.OMF_EMULATOR_PI_CSRF,
  piCsrfStatus: env.OMF_EMULATOR_PI_CSRF_STATUS,
  adhClients: [{ clientId: env.OMF_EMULATOR_ADH_CLIENT_ID, clientSecret: env.OMF_EMULATOR_ADH_CLIENT_SECRET }],
  adhTenantId: env.OMF_EMULATOR_ADH_TENANT,
  tokenLifetimeSeconds: env.OMF_EMULATOR_TOKEN_LIFETIME_SECONDS,
  maxBodyBytes: { pi: env.OMF_EMULATOR_MAX_BODY_PI, adh: env.OMF_EMULATOR_MAX_BODY_ADH, eds: env.OMF_EMULATOR_MAX_BODY_EDS },
  maxInflatedBytes: env.OMF_EMULATOR_MAX_INFLATED,
  faults: env.OMF_EMULATOR_FAULTS,
  onRequest: logRequests(log),
  recordArrivals: env.OMF_EMULATOR_RECORD_ARRIVALS,
});

log.info(
  {
    url: emulator.url,
    adminUrl: emulator.adminUrl,
    tls: env.OMF_EMULATOR_TLS,
    caFile: env.OMF_EMULATOR_CA_FILE,
    piDataServer: env.OMF_EMULATOR_PI_DATA_SERVER,
    settings: emulator.settings(),
    faults: env.OMF_EMULATOR_FAULTS,
  },
  "OMF emulator listening",
);

stopOnSignals(() => emulator.stop(), log);

/** The Entra emulator as a container: environment → startEntraEmulator, pino logs, signals. */
import { readFileSync } from "node:fs";
import { logRequests, parseHttpFaultConfig, stopOnSignals } from "@meridian/emulator-kit";
import { createLogger, env, loadConfigOrExit } from "@meridian/service-kit";
import { z } from "zod";
import { parseRegistry } from "./config.js";
import { DEFAULTS, defaultApplications, startEntraEmulator } from "./index.js";

const seconds = (def: number, max: number) => z.coerce.number().int().min(1).max(max).default(def);
const jsonSetting = <T>(parse: (text: string) => T) =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return undefined;
      try {
        return parse(s);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    });

const Env = z.object({
  PORT: env.port(8443),
  HOST: z.string().default("0.0.0.0"),
  ENTRA_EMULATOR_ADMIN_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** A server certificate and key to serve (PEM files); without them a CA and certificate are generated. */
  ENTRA_EMULATOR_TLS_CERT_FILE: z.string().optional(),
  ENTRA_EMULATOR_TLS_KEY_FILE: z.string().optional(),
  /** The CA of a given certificate, published at /_emulator/ca.pem. */
  ENTRA_EMULATOR_TLS_CA_FILE: z.string().optional(),
  ENTRA_EMULATOR_TLS_HOSTNAMES: z.string().max(4096).default(""),
  /** Where to write the CA at start, e.g. a volume the other containers read. */
  ENTRA_EMULATOR_CA_FILE: z.string().optional(),
  ENTRA_EMULATOR_PUBLIC_URL: z.url().optional(),
  ENTRA_EMULATOR_TENANT_ID: z.string().min(1).max(128).default(DEFAULTS.tenantId),
  /** The compose stack's confidential client; replaces the default one's id and secret. */
  ENTRA_EMULATOR_CLIENT_ID: z.string().min(1).max(128).default(DEFAULTS.confidentialClient.clientId),
  ENTRA_EMULATOR_CLIENT_SECRET: z.string().min(8).max(1024).default(DEFAULTS.confidentialClient.secret),
  /** Registry JSON (resources, applications, extraApplications, users, tenants); see README. */
  ENTRA_EMULATOR_REGISTRY: jsonSetting(parseRegistry),
  ENTRA_EMULATOR_TOKEN_LIFETIME_SECONDS: seconds(DEFAULTS.tokenLifetimeSeconds, 86_400),
  ENTRA_EMULATOR_REFRESH_TOKEN_LIFETIME_SECONDS: seconds(DEFAULTS.refreshTokenLifetimeSeconds, 365 * 86_400),
  ENTRA_EMULATOR_DEVICE_CODE_LIFETIME_SECONDS: seconds(DEFAULTS.deviceCodeLifetimeSeconds, 3600),
  ENTRA_EMULATOR_DEVICE_CODE_INTERVAL_SECONDS: seconds(DEFAULTS.deviceCodeIntervalSeconds, 60),
  ENTRA_EMULATOR_ENFORCE_POLLING_INTERVAL: env.bool(false),
  ENTRA_EMULATOR_AUTHORIZATION_CODE_LIFETIME_SECONDS: seconds(DEFAULTS.authorizationCodeLifetimeSeconds, 600),
  ENTRA_EMULATOR_FAULTS: jsonSetting((s) => parseHttpFaultConfig(JSON.parse(s))),
});

const cfg = loadConfigOrExit(Env);
const log = createLogger("emulator-entra");

const registry = cfg.ENTRA_EMULATOR_REGISTRY ?? {};
const applications = (registry.applications ?? defaultApplications()).map((a) =>
  a.clientId === DEFAULTS.confidentialClient.clientId && !registry.applications
    ? { ...a, clientId: cfg.ENTRA_EMULATOR_CLIENT_ID, secrets: [cfg.ENTRA_EMULATOR_CLIENT_SECRET] }
    : a,
);
const certFile = cfg.ENTRA_EMULATOR_TLS_CERT_FILE;
const keyFile = cfg.ENTRA_EMULATOR_TLS_KEY_FILE;
if (!!certFile !== !!keyFile) {
  process.stderr.write("invalid configuration:\n  ENTRA_EMULATOR_TLS_CERT_FILE and ENTRA_EMULATOR_TLS_KEY_FILE go together\n");
  process.exit(78);
}

const emulator = await startEntraEmulator({
  port: cfg.PORT,
  host: cfg.HOST,
  adminPort: cfg.ENTRA_EMULATOR_ADMIN_PORT,
  tlsCertPem: certFile ? readFileSync(certFile, "utf8") : undefined,
  tlsKeyPem: keyFile ? readFileSync(keyFile, "utf8") : undefined,
  tlsCaPem: cfg.ENTRA_EMULATOR_TLS_CA_FILE ? readFileSync(cfg.ENTRA_EMULATOR_TLS_CA_FILE, "utf8") : undefined,
  tlsHostnames: cfg.ENTRA_EMULATOR_TLS_HOSTNAMES.split(",")
    .map((s) => s.trim())
    .filter(Boolean),
  caFile: cfg.ENTRA_EMULATOR_CA_FILE,
  publicUrl: cfg.ENTRA_EMULATOR_PUBLIC_URL,
  tenantId: cfg.ENTRA_EMULATOR_TENANT_ID,
  tenants: registry.tenants,
  resources: registry.resources,
  applications: [...applications, ...(registry.extraApplications ?? [])],
  users: registry.users,
  tokenLifetimeSeconds: cfg.ENTRA_EMULATOR_TOKEN_LIFETIME_SECONDS,
  refreshTokenLifetimeSeconds: cfg.ENTRA_EMULATOR_REFRESH_TOKEN_LIFETIME_SECONDS,
  deviceCodeLifetimeSeconds: cfg.ENTRA_EMULATOR_DEVICE_CODE_LIFETIME_SECONDS,
  deviceCodeIntervalSeconds: cfg.ENTRA_EMULATOR_DEVICE_CODE_INTERVAL_SECONDS,
  enforcePollingInterval: cfg.ENTRA_EMULATOR_ENFORCE_POLLING_INTERVAL,
  authorizationCodeLifetimeSeconds: cfg.ENTRA_EMULATOR_AUTHORIZATION_CODE_LIFETIME_SECONDS,
  faults: cfg.ENTRA_EMULATOR_FAULTS,
  logger: log,
  onRequest: logRequests(log),
});

log.info(
  {
    url: emulator.url,
    adminUrl: emulator.adminUrl,
    tenantId: emulator.tenantId,
    caFile: emulator.caFile,
    publicUrl: cfg.ENTRA_EMULATOR_PUBLIC_URL,
    clientId: cfg.ENTRA_EMULATOR_CLIENT_ID,
    tokenLifetimeSeconds: cfg.ENTRA_EMULATOR_TOKEN_LIFETIME_SECONDS,
  },
  "Entra emulator listening",
);

stopOnSignals(() => emulator.stop(), log);

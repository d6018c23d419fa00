/** The emulator as a stand-alone server (compose, k8s): settings from the environment, the CA and API key written for others. */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stopOnSignals } from "@meridian/emulator-kit";
import { createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { z } from "zod";
import { startOciEmulator } from "./index.js";

const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
const bool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"])
    .default(def ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");
const list = z
  .string()
  .max(65_536)
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  );
const optional = (max = 255) => z.string().min(1).max(max).optional();

const Env = z.object({
  OCI_EMU_HOST: z.string().min(1).default("0.0.0.0"),
  OCI_EMU_CONTROL_PORT: port(8443),
  OCI_EMU_DATA_PORT: port(8444),
  OCI_EMU_DEVICE_PORT: port(8445),
  OCI_EMU_ADMIN_PORT: port(8081),
  OCI_EMU_TLS: bool(true),
  /** Extra certificate names (the compose service name), comma-separated. */
  OCI_EMU_TLS_HOSTNAMES: list,
  /** The CA PEM is written here. */
  OCI_EMU_CA_FILE: optional(4096),
  /** Gets an OCI `config` (profile DEFAULT) and `key.pem` of the generated, registered API key. */
  OCI_EMU_API_KEY_DIR: optional(4096),
  OCI_EMU_REGION: z
    .string()
    .regex(/^[a-z0-9-]{1,40}$/)
    .default("eu-frankfurt-1"),
  OCI_EMU_SEED: z.string().min(1).max(100).default("meridian"),
  OCI_EMU_DOMAIN_ID: z
    .string()
    .regex(/^ocid1\.iotdomain\.[a-z0-9.-]{1,200}$/, "must be an IoT domain OCID (ocid1.iotdomain....)")
    .optional(),
  OCI_EMU_DATA_CLIENT_ID: optional(),
  OCI_EMU_DATA_CLIENT_SECRET: optional(),
  OCI_EMU_DATA_USERNAME: optional(),
  OCI_EMU_DATA_PASSWORD: optional(),
  /** `authId=plaintext,...`: the vault secrets device passwords are checked against. */
  OCI_EMU_VAULT_SECRETS: list.transform((entries, ctx) => {
    const out: Record<string, string> = {};
    for (const e of entries) {
      const i = e.indexOf("=");
      if (i <= 0 || i === e.length - 1) {
        ctx.addIssue({ code: "custom", message: `entry "${e.slice(0, 40)}" is not authId=plaintext` });
        return z.NEVER;
      }
      out[e.slice(0, i)] = e.slice(i + 1);
    }
    return out;
  }),
  /** External keys of devices that send an M5 message every OCI_EMU_SIMULATE_MS (those that exist). */
  OCI_EMU_SIMULATE: list,
  OCI_EMU_SIMULATE_MS: z.coerce.number().int().min(50).max(3_600_000).default(2000),
  OCI_EMU_TOKEN_LIFETIME_SECONDS: z.coerce.number().int().min(1).max(86_400).default(3600),
  /** Test switch: accept `ST$<token>` keyIds (instance/resource principals, session tokens). */
  OCI_EMU_ACCEPT_SECURITY_TOKENS: bool(false),
  OCI_EMU_MAX_ROWS: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
});

const env = loadConfigOrExit(Env);
const log = createLogger("emulator-oci");

const emulator = await startOciEmulator({
  host: env.OCI_EMU_HOST,
  controlPort: env.OCI_EMU_CONTROL_PORT,
  dataPort: env.OCI_EMU_DATA_PORT,
  devicePort: env.OCI_EMU_DEVICE_PORT,
  adminPort: env.OCI_EMU_ADMIN_PORT,
  tls: env.OCI_EMU_TLS,
  tlsHostnames: env.OCI_EMU_TLS_HOSTNAMES,
  caFile: env.OCI_EMU_CA_FILE,
  region: env.OCI_EMU_REGION,
  seed: env.OCI_EMU_SEED,
  domainId: env.OCI_EMU_DOMAIN_ID,
  dataAccess: {
    clientId: env.OCI_EMU_DATA_CLIENT_ID,
    clientSecret: env.OCI_EMU_DATA_CLIENT_SECRET,
    username: env.OCI_EMU_DATA_USERNAME,
    password: env.OCI_EMU_DATA_PASSWORD,
  },
  vaultSecrets: env.OCI_EMU_VAULT_SECRETS,
  tokenLifetimeSeconds: env.OCI_EMU_TOKEN_LIFETIME_SECONDS,
  acceptSecurityTokens: env.OCI_EMU_ACCEPT_SECURITY_TOKENS,
  maxRows: env.OCI_EMU_MAX_ROWS,
  simulate: { externalKeys: env.OCI_EMU_SIMULATE, intervalMs: env.OCI_EMU_SIMULATE_MS },
  logger: log,
});

if (env.OCI_EMU_API_KEY_DIR) {
  const dir = resolve(env.OCI_EMU_API_KEY_DIR);
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, "key.pem");
  // Readable by the service's user (the emulator writes as root into a fresh volume): it is the emulator's generated
  // development key, registered nowhere but in this emulator.
  writeFileSync(keyFile, emulator.apiKey.privateKeyPem, { mode: 0o644 });
  const config = [
    "[DEFAULT]",
    `user=${emulator.apiKey.user}`,
    `fingerprint=${emulator.apiKey.fingerprint}`,
    `tenancy=${emulator.apiKey.tenancy}`,
    `region=${emulator.domain.region}`,
    `key_file=${keyFile}`,
    "",
  ].join("\n");
  writeFileSync(join(dir, "config"), config, { mode: 0o644 });
  // A volume kept from an earlier run holds the files with their old modes (mode applies only when a file is created).
  for (const file of [keyFile, join(dir, "config")]) chmodSync(file, 0o644);
}

// Secrets are never logged: only whether they came from the environment or were generated (read them through
// GET /_emulator/state when generated).
log.info(
  {
    controlUrl: emulator.controlUrl,
    dataUrl: emulator.dataUrl,
    deviceUrl: emulator.deviceUrl,
    adminUrl: emulator.adminUrl,
    tls: env.OCI_EMU_TLS,
    caFile: env.OCI_EMU_CA_FILE,
    apiKeyDir: env.OCI_EMU_API_KEY_DIR,
    domainId: emulator.domain.id,
    scope: emulator.scope,
    dataClientSecret: env.OCI_EMU_DATA_CLIENT_SECRET ? "from OCI_EMU_DATA_CLIENT_SECRET" : "generated",
    dataPassword: env.OCI_EMU_DATA_PASSWORD ? "from OCI_EMU_DATA_PASSWORD" : "generated",
    vaultSecrets: Object.keys(env.OCI_EMU_VAULT_SECRETS).length,
    simulate: env.OCI_EMU_SIMULATE,
  },
  "OCI IoT Platform emulator listening",
);

stopOnSignals(() => emulator.stop(), log);

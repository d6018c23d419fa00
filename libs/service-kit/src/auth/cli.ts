#!/usr/bin/env node
/**
 * API keys for Meridian's identities file (AUTH_IDENTITIES_FILE).
 *
 *   node libs/service-kit/dist/auth/cli.js new --name ops-console --roles routes:admin,status:read [--expires 2027-06-30T00:00:00Z]
 *     prints the key once (stderr) and the identities-file entry (stdout, JSON): store the entry, hand out the key.
 *   node libs/service-kit/dist/auth/cli.js dev-identities <dir>
 *     for `docker compose up`: when <dir>/identities.json does not exist, makes one development key holding every role,
 *     writes the identities file and <dir>/dev-api-key, and prints the key once. Later runs keep both and print where
 *     the key is. Never used by the Kubernetes manifests.
 */
import { chownSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newApiKey } from "./api-keys.js";
import { identitiesFileSchema } from "./identities.js";
import { ALL_ROLES, isRole, ROLES } from "./roles.js";

/** The uid:gid the service images run as: the files must be theirs when this runs as root in a one-shot container. */
const SERVICE_UID = 1000;

function usage(message?: string): never {
  if (message) process.stderr.write(`${message}\n`);
  process.stderr.write(
    `usage:\n  cli.js new --name <name> --roles <role,...> [--expires <ISO-8601>]\n  cli.js dev-identities <dir>\nroles: ${ROLES.join(", ")}, or ${ALL_ROLES}\n`,
  );
  process.exit(64);
}

function newKey(args: string[]): void {
  const { values } = parseArgs({ args, options: { name: { type: "string" }, roles: { type: "string" }, expires: { type: "string" } } });
  if (!values.name || !values.roles) usage("--name and --roles are required");
  const roles = values.roles.split(",").map((r) => r.trim());
  const unknown = roles.filter((r) => r !== ALL_ROLES && !isRole(r));
  if (unknown.length > 0) usage(`unknown role(s): ${unknown.join(", ")}`);
  const key = newApiKey();
  const entry = { id: key.id, name: values.name, sha256: key.sha256, roles, ...(values.expires ? { expiresAt: values.expires } : {}) };
  // The same schema the services read, so an entry printed here is one they accept.
  const check = identitiesFileSchema.safeParse({ apiKeys: [entry] });
  if (!check.success) usage(check.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n"));
  process.stderr.write(`API key for ${values.name} (shown once, store it now):\n${key.key}\n`);
  process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
}

function devIdentities(dir: string | undefined): void {
  if (!dir) usage("dev-identities needs a directory");
  const identitiesPath = join(dir, "identities.json");
  const keyPath = join(dir, "dev-api-key");
  if (existsSync(identitiesPath)) {
    process.stdout.write(`development identities exist; the development API key is in ${keyPath}\n`);
    return;
  }
  mkdirSync(dir, { recursive: true });
  const key = newApiKey();
  const identities = { apiKeys: [{ id: key.id, name: "dev-admin", sha256: key.sha256, roles: [ALL_ROLES] }] };
  writeFileSync(keyPath, `${key.key}\n`, { mode: 0o600 });
  writeFileSync(identitiesPath, `${JSON.stringify(identities, null, 2)}\n`, { mode: 0o644 });
  if (process.getuid?.() === 0) {
    for (const path of [dir, keyPath, identitiesPath]) chownSync(path, SERVICE_UID, SERVICE_UID);
  }
  process.stdout.write(
    [
      "",
      "Meridian development API key (every role; shown once, also kept in the meridian-auth volume):",
      `  ${key.key}`,
      "Use it as:  authorization: Bearer <key>",
      `Read it again:  docker compose exec gateway cat ${keyPath}`,
      "",
    ].join("\n"),
  );
}

const [command, ...rest] = process.argv.slice(2);
if (command === "new") newKey(rest);
else if (command === "dev-identities") devIdentities(rest[0]);
else usage();

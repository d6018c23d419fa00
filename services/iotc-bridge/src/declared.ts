import { readFileSync, realpathSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import { type Application, ApplicationSchema, EnrollmentGroupSchema } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { ConfigError, type Logger } from "@meridian/service-kit";
import { applicationSettings } from "./api/convert.js";
import { groupCredential, Violations, validateApplication } from "./api/index.js";
import type { Applications } from "./pipeline/applications.js";
import type { ApplicationSettings, GroupCredential } from "./pipeline/store.js";

/**
 * IOTC_APPLICATIONS_FILE: applications applied at start (compose points one at the emulator):
 * `{"applications": [{"id": "plant", "id_scope": "0ne00123456", "group_key_file": "/run/secrets/iotc-plant", ...}]}`.
 * The fields are the Application's in proto JSON (snake or camel case; `writable_property_ack` may be "completed" or
 * "accepted"), and the enrollment group's secret is one of `group_key` (the key itself, in the file), `group_key_file`
 * (a file inside IOTC_SECRET_DIR holding it), or `x509: {certificate_chain_file, private_key_file}`. The secret is read
 * at start and sealed into KV with IOTC_CREDENTIALS_KEY: a rotated secret file takes effect at the next start.
 */
export interface DeclaredApplication {
  settings: ApplicationSettings;
  credential?: GroupCredential | undefined;
}

const SECRET_FIELDS = new Set(["group_key", "groupKey", "group_key_file", "groupKeyFile", "x509"]);
const ACKS: Record<string, string> = { completed: "WRITABLE_PROPERTY_ACK_COMPLETED", accepted: "WRITABLE_PROPERTY_ACK_ACCEPTED" };

function fail(path: string, problems: string[]): never {
  throw new ConfigError(`IOTC_APPLICATIONS_FILE: ${path}: ${problems.join("; ")}`, ["IOTC_APPLICATIONS_FILE"]);
}

/** Reads a secret file that must lie inside `secretDir` (after links are followed), trimmed. */
function readSecret(file: unknown, secretDir: string): string {
  if (typeof file !== "string" || file === "") throw new Error("must be a file path");
  let real: string;
  try {
    real = realpathSync(resolve(file));
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const rel = relative(realpathSync(secretDir), real);
  // Only a step up leaves the directory: Kubernetes keeps a Secret volume's files in "..<timestamp>/" inside it.
  if (rel === ".." || rel.startsWith(`..${sep}`) || rel === "" || isAbsolute(rel))
    throw new Error(`${file} is not inside IOTC_SECRET_DIR (${secretDir})`);
  return readFileSync(real, "utf8").trim();
}

export function parseApplications(raw: unknown, options: { secretDir: string; path?: string }): DeclaredApplication[] {
  const where = options.path ?? "(inline)";
  const list = Array.isArray(raw) ? raw : (raw as { applications?: unknown } | null)?.applications;
  if (!Array.isArray(list)) fail(where, ['must be {"applications": [...]} or a JSON array of applications']);
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const out: DeclaredApplication[] = [];
  list.forEach((entry: unknown, i: number) => {
    const at = `applications[${i}]`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      problems.push(`${at}: must be an object`);
      return;
    }
    const e = entry as Record<string, unknown>;
    const fields: JsonObject = {};
    for (const [k, value] of Object.entries(e)) if (!SECRET_FIELDS.has(k)) fields[k] = value as JsonObject[string];
    for (const k of ["writable_property_ack", "writablePropertyAck"])
      if (typeof fields[k] === "string" && ACKS[fields[k] as string]) fields[k] = ACKS[fields[k] as string]!;
    let app: Application;
    try {
      app = fromJson(ApplicationSchema, fields);
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
      return;
    }
    const secrets = ["group_key", "groupKey", "group_key_file", "groupKeyFile", "x509"].filter((k) => e[k] !== undefined);
    if (secrets.length > 1) problems.push(`${at}: give one of group_key, group_key_file and x509, not ${secrets.join(" and ")}`);
    try {
      const groupKey = e["group_key"] ?? e["groupKey"];
      const groupKeyFile = e["group_key_file"] ?? e["groupKeyFile"];
      if (typeof groupKey === "string")
        app.enrollmentGroup = create(EnrollmentGroupSchema, { credential: { case: "groupKey", value: groupKey } });
      else if (groupKey !== undefined) problems.push(`${at}.group_key: must be a string (or use group_key_file)`);
      else if (groupKeyFile !== undefined) {
        const value = readSecret(groupKeyFile, options.secretDir);
        app.enrollmentGroup = create(EnrollmentGroupSchema, { credential: { case: "groupKey", value } });
      } else if (e["x509"] !== undefined) {
        const x = e["x509"] as Record<string, unknown> | null;
        if (!x || typeof x !== "object") throw new Error("x509: must be {certificate_chain_file, private_key_file}");
        const chain = readSecret(x["certificate_chain_file"] ?? x["certificateChainFile"], options.secretDir);
        const key = readSecret(x["private_key_file"] ?? x["privateKeyFile"], options.secretDir);
        app.enrollmentGroup = create(EnrollmentGroupSchema, {
          credential: { case: "x509", value: { certificateChainPem: `${chain}\n`, privateKeyPem: `${key}\n` } },
        });
      }
    } catch (err) {
      problems.push(`${at}.${e["x509"] !== undefined ? "x509" : "group_key_file"}: ${(err as Error).message}`);
      return;
    }
    const v = new Violations();
    validateApplication(app, v, `${at}.`);
    problems.push(...v.list.map((x) => `${x.path}: ${x.reason}`));
    const prior = seen.get(app.id);
    if (prior !== undefined) problems.push(`${at}.id: duplicates applications[${prior}].id`);
    seen.set(app.id, i);
    out.push({ settings: applicationSettings(app), credential: groupCredential(app.enrollmentGroup) });
  });
  if (problems.length > 0) fail(where, problems);
  return out;
}

export function readApplicationsFile(path: string, options: { secretDir: string }): DeclaredApplication[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    fail(path, [(err as Error).message]);
  }
  return parseApplications(raw, { ...options, path });
}

/**
 * Puts the declared applications (the file wins over what the API changed in them). Idempotent: an application whose
 * settings and secret are unchanged is not written again, so its devices stay connected.
 */
export async function applyApplications(
  applications: Applications,
  declared: readonly DeclaredApplication[],
  logger: Logger,
): Promise<Record<string, unknown>> {
  const result = { created: [] as string[], updated: [] as string[], unchanged: [] as string[] };
  for (const d of declared) {
    const existed = await applications.store.applications.get(d.settings.id);
    const { changed } = await applications.put(d.settings, d.credential, "file");
    const list = !changed ? result.unchanged : existed ? result.updated : result.created;
    list.push(d.settings.id);
    if (changed)
      logger.info(
        { application: d.settings.id, idScope: d.settings.idScope, credentialKind: d.credential?.kind ?? "" },
        existed ? "application updated from file" : "application from file",
      );
  }
  return result;
}

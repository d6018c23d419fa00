import { readFileSync } from "node:fs";
import { ConfigError } from "@meridian/service-kit";
import {
  CredentialsError,
  ENDPOINT_ID,
  type EndpointRegistry,
  type EndpointSettings,
  resolveSecretRef,
  type SecretRef,
  type StoredEndpoint,
  validateSettings,
} from "./pipeline/endpoints.js";

/**
 * OMF_ENDPOINTS_FILE: endpoints declared at start (compose points it at the emulator), in the platform client's
 * input shape plus an `id`: `[{"id": "pi", "kind": "pi", "url": "https://omf-emulator:8443/piwebapi",
 * "username": "meridian", "password": {"file": "/run/secrets/pi"}}]` (or `{"endpoints": [...]}`).
 * Secrets (`password`, `clientSecret`) are a string, `{"file": path}` or `{"env": NAME}`; a reference is stored
 * as the reference (each replica reads its own mounted file), a literal string is sealed with OMF_CREDENTIALS_KEY.
 */
export interface DeclaredEndpoint {
  id: string;
  settings: EndpointSettings;
  secret?: { literal: string } | { ref: SecretRef };
}

const SETTINGS_KEYS = new Set([
  "kind",
  "url",
  "omfVersion",
  "username",
  "dataServerName",
  "tenantId",
  "namespaceId",
  "clientId",
  "apiVersion",
  "tokenUrl",
  "caPemPath",
  "verifySsl",
  "allowHttp",
  "compression",
  "timeoutMs",
  "maxBodyBytes",
  "maxValuesPerRequest",
]);
const SECRET_KEYS = new Set(["password", "clientSecret"]);
const KINDS: Record<string, EndpointSettings["kind"]> = { pi: "pi", adh: "adh", ocs: "adh", cds: "adh", eds: "eds" };

function fail(path: string, problems: string[]): never {
  throw new ConfigError(`OMF_ENDPOINTS_FILE: ${path}: ${problems.join("; ")}`, ["OMF_ENDPOINTS_FILE"]);
}

export function parseEndpoints(raw: unknown, options: { hasKey: boolean; path?: string }): DeclaredEndpoint[] {
  const where = options.path ?? "(inline)";
  const list = Array.isArray(raw) ? raw : (raw as { endpoints?: unknown })?.endpoints;
  if (!Array.isArray(list)) fail(where, ['must be a JSON array of endpoints or {"endpoints": [...]}']);
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const out: DeclaredEndpoint[] = [];
  list.forEach((entry: unknown, i: number) => {
    const at = `endpoints[${i}]`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      problems.push(`${at}: must be an object`);
      return;
    }
    const e = entry as Record<string, unknown>;
    const id = e["id"];
    if (typeof id !== "string" || !ENDPOINT_ID.test(id)) {
      problems.push(`${at}.id: must be 1-63 lower-case letters, digits or '-', starting with a letter`);
      return;
    }
    const prior = seen.get(id);
    if (prior !== undefined) problems.push(`${at}.id: duplicates endpoints[${prior}].id`);
    seen.set(id, i);
    const settings: Record<string, unknown> = {};
    let secret: DeclaredEndpoint["secret"];
    let secretValue: string | undefined;
    for (const [k, v] of Object.entries(e)) {
      if (k === "id" || k === "name") continue;
      if (SECRET_KEYS.has(k)) {
        if (typeof v === "string") {
          if (!options.hasKey)
            problems.push(`${at}.${k}: a literal secret needs OMF_CREDENTIALS_KEY; give {"file": path} or {"env": NAME} instead`);
          secret = { literal: v };
          secretValue = v;
        } else if (v && typeof v === "object" && typeof (v as { file?: unknown }).file === "string") {
          secret = { ref: { file: (v as { file: string }).file } };
        } else if (v && typeof v === "object" && typeof (v as { env?: unknown }).env === "string") {
          secret = { ref: { env: (v as { env: string }).env } };
        } else problems.push(`${at}.${k}: must be a string, {"file": path} or {"env": NAME}`);
        if (secret && "ref" in secret) {
          try {
            secretValue = resolveSecretRef(secret.ref);
          } catch (err) {
            problems.push(`${at}.${k}: ${(err as Error).message}`);
            secretValue = "unresolved";
          }
        }
      } else if (SETTINGS_KEYS.has(k)) settings[k] = k === "kind" && typeof v === "string" ? (KINDS[v.toLowerCase()] ?? v) : v;
      else problems.push(`${at}.${k}: unknown setting`);
    }
    problems.push(...validateSettings(id, settings as unknown as EndpointSettings, secretValue, at));
    out.push({ id, settings: settings as unknown as EndpointSettings, ...(secret ? { secret } : {}) });
  });
  if (problems.length > 0) fail(where, problems);
  return out;
}

export function readEndpointsFile(path: string, options: { hasKey: boolean }): DeclaredEndpoint[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    fail(path, [(err as Error).message]);
  }
  return parseEndpoints(raw, { ...options, path });
}

/**
 * Puts declared endpoints into the bucket: created when absent, replaced when the settings or the secret changed;
 * endpoints not in the file are left alone.
 */
export async function applyEndpoints(
  registry: EndpointRegistry,
  declared: DeclaredEndpoint[],
): Promise<{ created: string[]; updated: string[]; unchanged: string[] }> {
  const result = { created: [] as string[], updated: [] as string[], unchanged: [] as string[] };
  for (const d of declared) {
    const existing = await registry.get(d.id);
    let sameSecret = false;
    if (existing) {
      if (!d.secret) sameSecret = !existing.secret;
      else if ("ref" in d.secret) sameSecret = !!existing.secret && "ref" in existing.secret && sameRef(existing.secret.ref, d.secret.ref);
      else {
        try {
          sameSecret = !!existing.secret && !("ref" in existing.secret) && registry.revealSecret(existing) === d.secret.literal;
        } catch (err) {
          if (!(err instanceof CredentialsError)) throw err;
        }
      }
    }
    if (existing && existing.origin === "file" && sameSecret && JSON.stringify(existing.settings) === JSON.stringify(d.settings)) {
      result.unchanged.push(d.id);
      continue;
    }
    const next: StoredEndpoint = {
      id: d.id,
      origin: "file",
      createTime: existing?.createTime ?? new Date().toISOString(),
      settings: d.settings,
      ...(d.secret ? { secret: "ref" in d.secret ? { ref: d.secret.ref } : registry.seal(d.id, d.secret.literal) } : {}),
    };
    await registry.bucket.put(d.id, next);
    (existing ? result.updated : result.created).push(d.id);
  }
  return result;
}

function sameRef(a: SecretRef, b: SecretRef): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

import { readFileSync } from "node:fs";
import { ConfigError } from "@meridian/service-kit";
import type { Logger } from "pino";
import { isSealed } from "./pipeline/credentials.js";
import {
  CredentialsError,
  type DeclaredDefinition,
  ENDPOINT_ID,
  type EndpointRegistry,
  type EndpointSettings,
  type StoredEndpoint,
  validateSettings,
} from "./pipeline/endpoints.js";
import { EndpointPolicy, type EndpointPolicyOptions, type SecretRef } from "./pipeline/policy.js";

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
  "acceptVerbosity",
  "producerToken",
]);
const SECRET_KEYS = new Set(["password", "clientSecret"]);
const KINDS: Record<string, EndpointSettings["kind"]> = { pi: "pi", adh: "adh", ocs: "adh", cds: "adh", eds: "eds" };

function fail(path: string, problems: string[]): never {
  throw new ConfigError(`OMF_ENDPOINTS_FILE: ${path}: ${problems.join("; ")}`, ["OMF_ENDPOINTS_FILE"]);
}

/** What the operator's settings permit of the file's own entries (its hosts are allowed by being declared). */
export type DeclaredRules = Omit<EndpointPolicyOptions, "allowedHosts" | "declaredUrls">;

export function parseEndpoints(raw: unknown, options: { hasKey: boolean; path?: string; rules: DeclaredRules }): DeclaredEndpoint[] {
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
    let secretKey = "";
    for (const [k, v] of Object.entries(e)) {
      if (k === "id" || k === "name") continue;
      if (SECRET_KEYS.has(k)) {
        secretKey = k;
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
      } else if (SETTINGS_KEYS.has(k)) settings[k] = k === "kind" && typeof v === "string" ? (KINDS[v.toLowerCase()] ?? v) : v;
      else problems.push(`${at}.${k}: unknown setting`);
    }
    const s = settings as unknown as EndpointSettings;
    // The entry's own hosts are allowed by being declared; what else the operator's settings say still applies.
    const policy = new EndpointPolicy({
      ...options.rules,
      allowedHosts: [],
      declaredUrls: [s.url, s.tokenUrl].filter((u): u is string => typeof u === "string"),
    });
    if (secret && "ref" in secret) {
      try {
        secretValue = policy.resolveRef(secret.ref);
      } catch (err) {
        problems.push(`${at}.${secretKey}: ${(err as Error).message}`);
        secretValue = "unresolved";
      }
    }
    const invalid = validateSettings(id, s, secretValue, at);
    problems.push(...invalid);
    if (invalid.length === 0) for (const v of policy.violations(s)) problems.push(`${at}.${v.field}: ${v.reason}`);
    out.push({ id, settings: s, ...(secret ? { secret } : {}) });
  });
  if (problems.length > 0) fail(where, problems);
  return out;
}

export function readEndpointsFile(path: string, options: { hasKey: boolean; rules: DeclaredRules }): DeclaredEndpoint[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    fail(path, [(err as Error).message]);
  }
  return parseEndpoints(raw, { ...options, path });
}

/** The file's endpoints as the registry checks records against them (a secret reference is honoured for these only). */
export function declaredDefinitions(declared: readonly DeclaredEndpoint[]): Map<string, DeclaredDefinition> {
  return new Map(
    declared.map((d) => [d.id, { settings: d.settings, ...(d.secret && "ref" in d.secret ? { ref: d.secret.ref } : {}) }] as const),
  );
}

/** The URLs of the file's endpoints (and their token URLs): their hosts are allowed by being declared. */
export function declaredUrls(declared: readonly DeclaredEndpoint[]): string[] {
  return declared.flatMap((d) => [d.settings.url, ...(d.settings.tokenUrl ? [d.settings.tokenUrl] : [])]);
}

/**
 * Puts declared endpoints into the bucket: created when absent, replaced when the settings or the secret changed, or
 * the secret was sealed under a previous key or in the old format (the file has the plaintext, so it seals it again);
 * endpoints not in the file are left alone. Each write names the revision it read, and is logged with its URL.
 */
export async function applyEndpoints(
  registry: EndpointRegistry,
  declared: DeclaredEndpoint[],
  logger?: Logger,
): Promise<{ created: string[]; updated: string[]; unchanged: string[] }> {
  const result = { created: [] as string[], updated: [] as string[], unchanged: [] as string[] };
  for (const d of declared) {
    const entry = await registry.entry(d.id);
    const existing = entry?.endpoint;
    let sameSecret = false;
    if (existing) {
      if (!d.secret) sameSecret = !existing.secret;
      else if ("ref" in d.secret) sameSecret = !!existing.secret && "ref" in existing.secret && sameRef(existing.secret.ref, d.secret.ref);
      else if (existing.secret && isSealed(existing.secret) && registry.keyring && !registry.keyring.isStale(existing.secret)) {
        try {
          sameSecret = registry.revealSecret(existing) === d.secret.literal;
        } catch (err) {
          if (!(err instanceof CredentialsError)) throw err;
        }
      }
    }
    if (existing && existing.origin === "file" && sameSecret && JSON.stringify(existing.settings) === JSON.stringify(d.settings)) {
      result.unchanged.push(d.id);
      continue;
    }
    const now = new Date().toISOString();
    const next: StoredEndpoint = {
      id: d.id,
      origin: "file",
      createTime: existing?.createTime ?? now,
      ...(existing ? { updateTime: now } : {}),
      settings: d.settings,
      ...(d.secret ? { secret: "ref" in d.secret ? { ref: d.secret.ref } : registry.seal(d.id, d.settings, d.secret.literal) } : {}),
    };
    const revision = entry ? await registry.update(next, entry.revision) : await registry.create(next);
    registry.forget(d.id);
    (existing ? result.updated : result.created).push(d.id);
    logger?.info(
      {
        endpointId: d.id,
        changedBy: "OMF_ENDPOINTS_FILE",
        revision,
        ...(existing ? { fromRevision: entry?.revision, fromUrl: existing.settings.url } : {}),
        url: d.settings.url,
      },
      existing ? "endpoint updated" : "endpoint created",
    );
  }
  return result;
}

function sameRef(a: SecretRef, b: SecretRef): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import * as common from "oci-common";
import { OciInvalidArgumentError, OciUnavailableError } from "./errors.js";
import type { OciAuth } from "./types.js";

export const DEFAULT_CONFIG_FILE = "~/.oci/config";
export const DEFAULT_PROFILE = "DEFAULT";

/** The signer's key source, and the region it names (profile or inline), if any. */
export interface AuthSource {
  /** A promise for instance principals, whose provider is built from the metadata service. */
  provider: common.AuthenticationDetailsProvider | Promise<common.AuthenticationDetailsProvider>;
  region?: string;
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? homedir() + path.slice(1) : path;
}

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : err instanceof Error ? err.message : "unreadable";
}

/**
 * The profiles of an OCI config file (INI: `[PROFILE]`, `key=value`, `#` comments). Values of DEFAULT apply to every
 * profile that does not set them, as in the SDK and CLI.
 */
export function parseOciConfig(text: string): Map<string, Map<string, string>> {
  const profiles = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (section?.[1]) {
      current = profiles.get(section[1]) ?? new Map();
      profiles.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0 && current) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return profiles;
}

interface Profile {
  file: string;
  name: string;
  get(key: string): string | undefined;
}

/** The profile, checked: a missing or unreadable file or profile names the setting and the file, never a value. */
function readProfile(configFile: string | undefined, profile: string | undefined): Profile {
  const file = expandHome(configFile ?? DEFAULT_CONFIG_FILE);
  const name = profile ?? DEFAULT_PROFILE;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new OciInvalidArgumentError("auth.configFile", `the OCI config file ${file} cannot be read (${errnoOf(err)})`);
  }
  const profiles = parseOciConfig(text);
  const values = profiles.get(name);
  if (!values) {
    const known = [...profiles.keys()].join(", ") || "none";
    throw new OciInvalidArgumentError("auth.profile", `no profile [${name}] in the OCI config file ${file} (profiles: ${known})`);
  }
  const defaults = profiles.get(DEFAULT_PROFILE);
  return { file, name, get: (key) => values.get(key) || defaults?.get(key) || undefined };
}

function required(p: Profile, key: string): string {
  const value = p.get(key);
  if (!value) throw new OciInvalidArgumentError("auth.profile", `profile [${p.name}] of the OCI config file ${p.file} has no ${key}`);
  return value;
}

/** A file the profile names (key_file, security_token_file), read; the error names the key and the file, not content. */
function readNamedFile(p: Profile, key: string): string {
  const path = expandHome(required(p, key));
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new OciInvalidArgumentError(
      "auth.profile",
      `${key} ${path} of profile [${p.name}] in the OCI config file ${p.file} cannot be read (${errnoOf(err)})`,
    );
  }
}

/** A provider constructor's failure, without what it might quote (the SDK sanitises, but says more than needed). */
function providerError(kind: string, err: unknown): OciInvalidArgumentError {
  const said = err instanceof Error ? err.message : String(err);
  return new OciInvalidArgumentError("auth", `${kind}: ${said.split("\n")[0]?.slice(0, 300)}`, { cause: err });
}

/**
 * The oci-common AuthenticationDetailsProvider for an OciAuth. Files are read here, so that a bad config file, a
 * missing profile or an unreadable key is an OciInvalidArgumentError at start rather than a 401 at the first call.
 */
export function createAuthSource(auth: OciAuth): AuthSource {
  switch (auth.kind) {
    case "api_key": {
      const p = readProfile(auth.configFile, auth.profile);
      const tenancy = required(p, "tenancy");
      const user = required(p, "user");
      const fingerprint = required(p, "fingerprint");
      const key = readNamedFile(p, "key_file");
      const region = p.get("region");
      if (region) {
        try {
          return { provider: new common.ConfigFileAuthenticationDetailsProvider(p.file, p.name), region };
        } catch (err) {
          throw providerError("api_key", err);
        }
      }
      // The SDK's config-file provider refuses a profile without a region; the region can come from the options.
      return { provider: new common.SimpleAuthenticationDetailsProvider(tenancy, user, fingerprint, key, p.get("pass_phrase") ?? null) };
    }
    case "api_key_inline": {
      for (const field of ["tenancy", "user", "fingerprint", "privateKeyPem"] as const) {
        if (!auth[field]) throw new OciInvalidArgumentError(`auth.${field}`, "required for api_key_inline");
      }
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(auth.privateKeyPem)) {
        throw new OciInvalidArgumentError("auth.privateKeyPem", "not a PEM private key (-----BEGIN ... PRIVATE KEY-----)");
      }
      return {
        provider: new common.SimpleAuthenticationDetailsProvider(
          auth.tenancy,
          auth.user,
          auth.fingerprint,
          auth.privateKeyPem,
          auth.passphrase ?? null,
        ),
        ...(auth.region ? { region: auth.region } : {}),
      };
    }
    case "security_token": {
      const p = readProfile(auth.configFile, auth.profile);
      required(p, "tenancy");
      required(p, "fingerprint");
      readNamedFile(p, "key_file");
      readNamedFile(p, "security_token_file");
      const region = required(p, "region");
      try {
        return { provider: new common.SessionAuthDetailProvider(p.file, p.name), region };
      } catch (err) {
        throw providerError("security_token", err);
      }
    }
    case "instance_principal":
      return {
        provider: new common.InstancePrincipalsAuthenticationDetailsProviderBuilder().build().catch((err: unknown) => {
          throw new OciUnavailableError(
            `instance_principal: the instance metadata service gave no identity (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`,
            { code: "InstancePrincipal", cause: err },
          );
        }),
      };
    case "resource_principal":
      try {
        const provider = common.ResourcePrincipalAuthenticationDetailsProvider.builder();
        return { provider, region: provider.getRegion()?.regionId };
      } catch (err) {
        throw providerError("resource_principal (OCI_RESOURCE_PRINCIPAL_* environment)", err);
      }
    case "workload_identity":
      try {
        return {
          provider:
            new common.OkeWorkloadIdentityAuthenticationDetailsProvider.OkeWorkloadIdentityAuthenticationDetailsProviderBuilder().build(),
        };
      } catch (err) {
        throw providerError("workload_identity (OKE service account token)", err);
      }
    default:
      throw new OciInvalidArgumentError("auth.kind", `unknown kind ${JSON.stringify((auth as { kind?: unknown }).kind)}`);
  }
}

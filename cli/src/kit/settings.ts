import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { CliError, EXIT } from "./exit.js";
import { lazy } from "./lazy.js";

export const DEFAULT_GATEWAY = "http://127.0.0.1:8080";
export const DEFAULT_TIMEOUT_SECONDS = 30;
export const MAX_TIMEOUT_SECONDS = 3600;
export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export const PROTOCOLS = ["connect", "grpc", "grpc-web"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export type Protocol = (typeof PROTOCOLS)[number];

/** The global flags as commander gives them (undefined when not given). */
export interface GlobalFlags {
  gateway?: string;
  apiKey?: string;
  apiKeyFile?: string;
  token?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecure?: boolean;
  profile?: string;
  output?: string;
  color?: boolean;
  timeout?: string;
  protocol?: string;
}

/** One profile of the profile file: the same settings as the flags, in camelCase. */
export interface Profile {
  gateway?: string;
  apiKey?: string;
  apiKeyFile?: string;
  token?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecure?: boolean;
  output?: OutputFormat;
  timeout?: number;
  protocol?: Protocol;
}

export interface ProfileFile {
  current?: string;
  profiles: Record<string, Profile>;
}

export type Credential = { kind: "api-key"; value: string } | { kind: "token"; value: string } | { kind: "none" };

/** What the CLI runs with, every value decided: flag > environment > profile > default. */
export interface Settings {
  gateway: URL;
  credential: Credential;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecure: boolean;
  output: OutputFormat;
  colour: boolean;
  timeoutMs: number;
  protocol: Protocol;
  /** The profile used, if any, and the file it came from. */
  profile?: { name: string; file: string };
}

/** The profile file's path: $MERIDIAN_CONFIG, else ~/.config/meridian/config.yaml ($XDG_CONFIG_HOME respected). */
export function profileFilePath(env: NodeJS.ProcessEnv): string {
  if (env.MERIDIAN_CONFIG) return env.MERIDIAN_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "meridian", "config.yaml");
}

const PROFILE_KEYS: Record<keyof Profile, "string" | "boolean" | "number" | "output" | "protocol"> = {
  gateway: "string",
  apiKey: "string",
  apiKeyFile: "string",
  token: "string",
  caFile: "string",
  certFile: "string",
  keyFile: "string",
  insecure: "boolean",
  output: "output",
  timeout: "number",
  protocol: "protocol",
};
const MAX_PROFILE_FILE_BYTES = 1024 * 1024;
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) {
    throw new CliError(`profile name ${JSON.stringify(name)} is not valid: letters, digits, ".", "_", "-", at most 64`, EXIT.usage);
  }
  return name;
}

/**
 * Reads and checks the profile file; a missing file is an empty one. Every error names the file and the key, since the
 * file is edited by hand as well as by `meridian config`.
 */
export function readProfileFile(file: string): ProfileFile {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_PROFILE_FILE_BYTES) throw new CliError(`${file}: larger than 1 MiB, not a profile file`, EXIT.usage);
    text = buf.toString("utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { profiles: {} };
    if (err instanceof CliError) throw err;
    throw new CliError(`${file}: cannot be read: ${(err as Error).message}`, EXIT.usage);
  }
  return parseProfileFile(text, file);
}

export function parseProfileFile(text: string, file: string): ProfileFile {
  let doc: unknown;
  try {
    doc = lazy.yaml().parse(text);
  } catch (err) {
    throw new CliError(`${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`, EXIT.usage);
  }
  if (doc === null || doc === undefined) return { profiles: {} };
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new CliError(`${file}: must be a mapping with "profiles" and "current"`, EXIT.usage);
  const raw = doc as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (key !== "current" && key !== "profiles")
      throw new CliError(`${file}: unknown key "${key}" (expected "current", "profiles")`, EXIT.usage);
  }
  if (raw.current !== undefined && typeof raw.current !== "string")
    throw new CliError(`${file}: "current" must be a profile name`, EXIT.usage);
  const profiles: Record<string, Profile> = {};
  if (raw.profiles !== undefined && raw.profiles !== null) {
    if (typeof raw.profiles !== "object" || Array.isArray(raw.profiles)) {
      throw new CliError(`${file}: "profiles" must be a mapping of name to settings`, EXIT.usage);
    }
    for (const [name, value] of Object.entries(raw.profiles as Record<string, unknown>)) {
      if (!PROFILE_NAME.test(name)) throw new CliError(`${file}: profiles.${name}: not a valid profile name`, EXIT.usage);
      profiles[name] = checkProfile(value, `${file}: profiles.${name}`);
    }
  }
  const current = raw.current as string | undefined;
  if (current !== undefined && !(current in profiles)) {
    throw new CliError(`${file}: current: profile "${current}" is not in "profiles"`, EXIT.usage);
  }
  return { current, profiles };
}

function checkProfile(value: unknown, where: string): Profile {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new CliError(`${where}: must be a mapping of settings`, EXIT.usage);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const kind = PROFILE_KEYS[key as keyof Profile];
    if (!kind) throw new CliError(`${where}.${key}: unknown setting (known: ${Object.keys(PROFILE_KEYS).join(", ")})`, EXIT.usage);
    const bad = (what: string) => new CliError(`${where}.${key}: must be ${what}, got ${JSON.stringify(v)}`, EXIT.usage);
    switch (kind) {
      case "string":
        if (typeof v !== "string" || v === "" || v.length > 4096) throw bad("a non-empty string");
        break;
      case "boolean":
        if (typeof v !== "boolean") throw bad("true or false");
        break;
      case "number":
        if (typeof v !== "number" || !(v > 0 && v <= MAX_TIMEOUT_SECONDS)) throw bad(`seconds, above 0 and at most ${MAX_TIMEOUT_SECONDS}`);
        break;
      case "output":
        if (!OUTPUT_FORMATS.includes(v as OutputFormat)) throw bad(OUTPUT_FORMATS.join(" | "));
        break;
      case "protocol":
        if (!PROTOCOLS.includes(v as Protocol)) throw bad(PROTOCOLS.join(" | "));
        break;
    }
    out[key] = v;
  }
  const credentials = ["apiKey", "apiKeyFile", "token"].filter((k) => k in out);
  if (credentials.length > 1)
    throw new CliError(`${where}: one of apiKey, apiKeyFile, token, not ${credentials.join(" and ")}`, EXIT.usage);
  return out as Profile;
}

export interface ResolveInput {
  flags: GlobalFlags;
  env: NodeJS.ProcessEnv;
  /** Reads a file (the profile file, an API key file); injectable for tests. */
  readFile?: (path: string) => string;
}

function parseTimeout(value: string, where: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0 || n > MAX_TIMEOUT_SECONDS) {
    throw new CliError(`${where}: must be seconds above 0 and at most ${MAX_TIMEOUT_SECONDS}, got ${JSON.stringify(value)}`, EXIT.usage);
  }
  return Math.round(n * 1000);
}

function parseGateway(value: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError(`${where}: not a URL: ${JSON.stringify(value)} (e.g. http://127.0.0.1:8080)`, EXIT.usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new CliError(`${where}: must be http:// or https://, got ${value}`, EXIT.usage);
  return url;
}

function readKeyFile(path: string, where: string, readFile: (path: string) => string): string {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new CliError(`${where}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
  }
  const key = text.trim();
  if (key === "" || key.length > 8192 || /\s/.test(key))
    throw new CliError(`${where}: ${path} must hold one credential on one line`, EXIT.usage);
  return key;
}

/** Decides every setting: flag > environment > profile > default. */
export function resolveSettings({ flags, env, readFile = (p) => readFileSync(p, "utf8") }: ResolveInput): Settings {
  const file = profileFilePath(env);
  const wantProfile = flags.profile ?? (env.MERIDIAN_PROFILE || undefined);
  let profile: Profile = {};
  let profileRef: Settings["profile"];
  let profiles: ProfileFile | undefined;
  const loadProfiles = (): ProfileFile => {
    if (!profiles) {
      let text: string | undefined;
      try {
        text = readFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
          throw new CliError(`${file}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
        }
      }
      profiles = text === undefined ? { profiles: {} } : parseProfileFile(text, file);
    }
    return profiles;
  };
  const loaded = loadProfiles();
  const name = wantProfile ?? loaded.current;
  if (name !== undefined) {
    const p = loaded.profiles[name];
    if (!p) {
      const known = Object.keys(loaded.profiles);
      throw new CliError(
        `profile "${name}" is not in ${file} (${known.length ? `known: ${known.join(", ")}` : "it has no profiles; meridian config set-profile"})`,
        EXIT.usage,
      );
    }
    profile = p;
    profileRef = { name, file };
  }
  const fromProfile = (key: string) => `${file}: profiles.${name}.${key}`;

  const gateway = flags.gateway
    ? parseGateway(flags.gateway, "--gateway")
    : env.MERIDIAN_GATEWAY_URL
      ? parseGateway(env.MERIDIAN_GATEWAY_URL, "MERIDIAN_GATEWAY_URL")
      : profile.gateway
        ? parseGateway(profile.gateway, fromProfile("gateway"))
        : new URL(DEFAULT_GATEWAY);

  const credential = resolveCredential(flags, env, profile, readFile, fromProfile);

  const output = (flags.output ?? (env.MERIDIAN_OUTPUT || undefined) ?? profile.output ?? "table") as OutputFormat;
  if (!OUTPUT_FORMATS.includes(output)) {
    throw new CliError(
      `${flags.output ? "--output" : "MERIDIAN_OUTPUT"}: must be ${OUTPUT_FORMATS.join(" | ")}, got ${output}`,
      EXIT.usage,
    );
  }
  const protocol = (flags.protocol ?? (env.MERIDIAN_PROTOCOL || undefined) ?? profile.protocol ?? "connect") as Protocol;
  if (!PROTOCOLS.includes(protocol)) {
    throw new CliError(
      `${flags.protocol ? "--protocol" : "MERIDIAN_PROTOCOL"}: must be ${PROTOCOLS.join(" | ")}, got ${protocol}`,
      EXIT.usage,
    );
  }
  const timeoutMs =
    flags.timeout !== undefined
      ? parseTimeout(flags.timeout, "--timeout")
      : env.MERIDIAN_TIMEOUT
        ? parseTimeout(env.MERIDIAN_TIMEOUT, "MERIDIAN_TIMEOUT")
        : profile.timeout !== undefined
          ? Math.round(profile.timeout * 1000)
          : DEFAULT_TIMEOUT_SECONDS * 1000;

  const pick = (flag: string | undefined, envName: string, key: "caFile" | "certFile" | "keyFile") =>
    flag ?? (env[envName] || undefined) ?? profile[key];
  const caFile = pick(flags.caFile, "MERIDIAN_CA_FILE", "caFile");
  const certFile = pick(flags.certFile, "MERIDIAN_CERT_FILE", "certFile");
  const keyFile = pick(flags.keyFile, "MERIDIAN_KEY_FILE", "keyFile");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new CliError("--cert-file and --key-file go together (a client certificate and its key)", EXIT.usage);
  }
  const insecure =
    flags.insecure === true || env.MERIDIAN_INSECURE === "1" || env.MERIDIAN_INSECURE === "true" || profile.insecure === true;
  // NO_COLOR (https://no-color.org): any non-empty value turns colour off; the TTY check is the output's.
  const colour = flags.color !== false && !env.NO_COLOR;

  return { gateway, credential, caFile, certFile, keyFile, insecure, output, colour, timeoutMs, protocol, profile: profileRef };
}

function resolveCredential(
  flags: GlobalFlags,
  env: NodeJS.ProcessEnv,
  profile: Profile,
  readFile: (path: string) => string,
  fromProfile: (key: string) => string,
): Credential {
  // The first level that names a credential decides; two kinds on one level are a mistake worth stopping for.
  const levels: Array<{ apiKey?: string; apiKeyFile?: string; token?: string; names: [string, string, string] }> = [
    { apiKey: flags.apiKey, apiKeyFile: flags.apiKeyFile, token: flags.token, names: ["--api-key", "--api-key-file", "--token"] },
    {
      apiKey: env.MERIDIAN_API_KEY || undefined,
      apiKeyFile: env.MERIDIAN_API_KEY_FILE || undefined,
      token: env.MERIDIAN_TOKEN || undefined,
      names: ["MERIDIAN_API_KEY", "MERIDIAN_API_KEY_FILE", "MERIDIAN_TOKEN"],
    },
    {
      apiKey: profile.apiKey,
      apiKeyFile: profile.apiKeyFile,
      token: profile.token,
      names: [fromProfile("apiKey"), fromProfile("apiKeyFile"), fromProfile("token")],
    },
  ];
  for (const level of levels) {
    const given = [level.apiKey, level.apiKeyFile, level.token].map((v) => v !== undefined);
    const count = given.filter(Boolean).length;
    if (count === 0) continue;
    if (count > 1) {
      throw new CliError(`${level.names.filter((_, i) => given[i]).join(" and ")}: give one credential, not both`, EXIT.usage);
    }
    if (level.apiKey !== undefined) return { kind: "api-key", value: checkCredential(level.apiKey, level.names[0]) };
    if (level.token !== undefined) return { kind: "token", value: checkCredential(level.token, level.names[2]) };
    return { kind: "api-key", value: readKeyFile(level.apiKeyFile!, level.names[1], readFile) };
  }
  return { kind: "none" };
}

function checkCredential(value: string, where: string): string {
  if (value === "") throw new CliError(`${where}: is empty`, EXIT.usage);
  if (value.length > 8192 || /\s/.test(value))
    throw new CliError(`${where}: must be one word without spaces, at most 8192 characters`, EXIT.usage);
  return value;
}

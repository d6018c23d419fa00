import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import YAML from "yaml";
import { CliError, EXIT } from "../kit/exit.js";
import { createOutput } from "../kit/output.js";
import type { Io } from "../kit/runtime.js";
import {
  checkProfileName,
  type GlobalFlags,
  MAX_TIMEOUT_SECONDS,
  type OutputFormat,
  type Profile,
  type ProfileFile,
  profileFilePath,
  readProfileFile,
} from "../kit/settings.js";

function write(file: string, doc: ProfileFile): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const body: Record<string, unknown> = {};
  if (doc.current) body.current = doc.current;
  body.profiles = doc.profiles;
  writeFileSync(tmp, YAML.stringify(body), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The profile's settings from the global flags given on this command line. */
export function profileFromFlags(flags: GlobalFlags): Profile {
  const p: Profile = {};
  if (flags.gateway) {
    try {
      const u = new URL(flags.gateway);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    } catch {
      throw new CliError(`--gateway: not an http:// or https:// URL: ${flags.gateway}`, EXIT.usage);
    }
    p.gateway = flags.gateway;
  }
  if (flags.apiKey) p.apiKey = flags.apiKey;
  if (flags.apiKeyFile) p.apiKeyFile = flags.apiKeyFile;
  if (flags.token) p.token = flags.token;
  if (flags.caFile) p.caFile = flags.caFile;
  if (flags.certFile) p.certFile = flags.certFile;
  if (flags.keyFile) p.keyFile = flags.keyFile;
  if (flags.insecure) p.insecure = true;
  if (flags.output) p.output = flags.output as OutputFormat;
  if (flags.protocol) p.protocol = flags.protocol as Profile["protocol"];
  if (flags.timeout !== undefined) {
    const t = Number(flags.timeout);
    if (!(t > 0 && t <= MAX_TIMEOUT_SECONDS))
      throw new CliError(`--timeout: seconds above 0 and at most ${MAX_TIMEOUT_SECONDS}`, EXIT.usage);
    p.timeout = t;
  }
  return p;
}

export function setProfile(io: Io, name: string, flags: GlobalFlags, use: boolean): void {
  checkProfileName(name);
  const file = profileFilePath(io.env);
  const doc = readProfileFile(file);
  const given = profileFromFlags(flags);
  const merged: Profile = { ...doc.profiles[name] };
  // A new credential replaces the old one of any kind: a profile holds one.
  if (given.apiKey || given.apiKeyFile || given.token) {
    delete merged.apiKey;
    delete merged.apiKeyFile;
    delete merged.token;
  }
  Object.assign(merged, given);
  const credentials = [merged.apiKey, merged.apiKeyFile, merged.token].filter(Boolean).length;
  if (credentials > 1) throw new CliError("give one of --api-key, --api-key-file, --token", EXIT.usage);
  doc.profiles[name] = merged;
  if (use || !doc.current) doc.current = name;
  write(file, doc);
  io.stderr.write(`profile ${name} saved in ${file}${doc.current === name ? " (current)" : ""}\n`);
}

export function useProfile(io: Io, name: string): void {
  const file = profileFilePath(io.env);
  const doc = readProfileFile(file);
  if (!doc.profiles[name]) {
    const known = Object.keys(doc.profiles);
    throw new CliError(`profile "${name}" is not in ${file}${known.length ? ` (known: ${known.join(", ")})` : ""}`, EXIT.notFound);
  }
  doc.current = name;
  write(file, doc);
  io.stderr.write(`current profile: ${name}\n`);
}

export function deleteProfile(io: Io, name: string): void {
  const file = profileFilePath(io.env);
  const doc = readProfileFile(file);
  if (!doc.profiles[name]) throw new CliError(`profile "${name}" is not in ${file}`, EXIT.notFound);
  delete doc.profiles[name];
  if (doc.current === name) doc.current = undefined;
  write(file, doc);
  io.stderr.write(`profile ${name} deleted\n`);
}

function credentialOf(p: Profile): string {
  if (p.apiKey) return `api key ${p.apiKey.slice(0, 16)}…`;
  if (p.apiKeyFile) return `api key file ${p.apiKeyFile}`;
  if (p.token) return "token";
  return "";
}

export function listProfiles(io: Io, flags: GlobalFlags): void {
  const file = profileFilePath(io.env);
  const doc = readProfileFile(file);
  const out = createOutput({
    format: (flags.output as OutputFormat) ?? "table",
    stdout: io.stdout,
    stderr: io.stderr,
    colour: flags.color !== false && !io.env.NO_COLOR,
  });
  const rows = Object.entries(doc.profiles).map(([name, p]) => ({ name, current: doc.current === name, ...p }));
  out.list(
    rows,
    [
      { header: "current", value: (r) => (r.current ? "*" : "") },
      { header: "name", value: (r) => r.name },
      { header: "gateway", value: (r) => r.gateway },
      { header: "credential", value: (r) => credentialOf(r) },
      { header: "tls", value: (r) => [r.caFile && "ca", r.certFile && "client cert", r.insecure && "insecure"].filter(Boolean).join(", ") },
    ],
    {
      file,
      current: doc.current ?? null,
      profiles: rows.map(({ apiKey, token, ...r }) => ({
        ...r,
        ...(apiKey ? { apiKey: "(set)" } : {}),
        ...(token ? { token: "(set)" } : {}),
      })),
    },
  );
}

import { readFileSync, realpathSync } from "node:fs";
import { isAbsolute, resolve, sep } from "node:path";
import { CredentialsError } from "./credentials.js";

/**
 * What the operator permits an endpoint to be, whoever defines it: the hosts omf-sender may send to
 * (OMF_ALLOWED_HOSTS plus the endpoints file's own), the settings that weaken transport security
 * (OMF_ALLOW_INSECURE_ENDPOINTS), where CA bundles are read (OMF_CA_DIR), and what a secret reference of the
 * endpoints file may read (OMF_SECRET_ENV_PREFIX, OMF_SECRET_DIR). Checked when an endpoint is written through the API,
 * and again before every send, because the KV record may have been written by anyone with bus access.
 */

/** The settings the policy looks at (a subset of the stored endpoint's, in the platform client's names). */
export interface PolicedSettings {
  kind: string;
  url: string;
  tokenUrl?: string | undefined;
  verifySsl?: boolean | undefined;
  allowHttp?: boolean | undefined;
  caPemPath?: string | undefined;
}

/** A secret given by reference (endpoints file only): resolved on each replica when the client is built. */
export type SecretRef = { file: string } | { env: string };

/** The settings that weaken transport security, by the API's field names (shown in status and logged at start). */
export type InsecureSetting = "insecure_skip_tls_verify" | "allow_http" | "ca_pem_path" | "http_url";

export interface PolicyViolation {
  /** The platform setting at fault (`url`, `tokenUrl`, `verifySsl`, `allowHttp`, `caPemPath`). */
  field: "url" | "tokenUrl" | "verifySsl" | "allowHttp" | "caPemPath";
  reason: string;
}

/** An endpoint the operator's settings do not permit; `violations` name the fields. */
export class EndpointPolicyError extends Error {
  constructor(
    readonly endpointId: string,
    readonly violations: readonly PolicyViolation[],
  ) {
    super(`endpoint "${endpointId}" is not permitted: ${violations.map((v) => `${v.field}: ${v.reason}`).join("; ")}`);
    this.name = "EndpointPolicyError";
  }
}

export interface EndpointPolicyOptions {
  /** OMF_ALLOWED_HOSTS: `host`, `*.domain`, `[v6]`, each optionally `:port`. */
  allowedHosts: readonly string[];
  /** URLs (url, tokenUrl) of the endpoints file: their host:port is allowed as declared. */
  declaredUrls: readonly string[];
  allowInsecure: boolean;
  caDir?: string | undefined;
  secretEnvPrefix: string;
  secretDir: string;
  /** Files no reference may read, whatever the directory: the credentials key files. */
  protectedFiles?: readonly string[];
}

interface HostPort {
  host: string;
  port: string;
}

function hostPortOf(url: string): HostPort | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  return { host: u.hostname.toLowerCase().replace(/\.$/, ""), port: u.port || (u.protocol === "https:" ? "443" : "80") };
}

function parsePattern(pattern: string): { host: string; port?: string } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(pattern.toLowerCase());
  if (!m) return { host: pattern.toLowerCase() };
  return m[2] === undefined ? { host: m[1]! } : { host: m[1]!, port: m[2] };
}

function matches(pattern: { host: string; port?: string }, target: HostPort): boolean {
  if (pattern.port !== undefined && pattern.port !== target.port) return false;
  if (pattern.host.startsWith("*.")) return target.host.endsWith(pattern.host.slice(1)) && target.host.length > pattern.host.length - 1;
  return pattern.host === target.host;
}

const isLoopback = (host: string) => host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);

/** The real path when the file exists (symbolic links followed), else the lexical one. */
function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function inside(path: string, dir: string): boolean {
  const d = realOrResolved(dir);
  const p = realOrResolved(path);
  return p.startsWith(d.endsWith(sep) ? d : `${d}${sep}`);
}

export class EndpointPolicy {
  private readonly patterns: Array<{ host: string; port?: string }>;
  private readonly protectedFiles: string[];

  constructor(readonly options: EndpointPolicyOptions) {
    this.patterns = options.allowedHosts.map(parsePattern);
    for (const url of options.declaredUrls) {
      const hp = hostPortOf(url);
      if (hp) this.patterns.push({ host: hp.host, port: hp.port });
    }
    this.protectedFiles = (options.protectedFiles ?? []).map(realOrResolved);
  }

  hostAllowed(url: string): boolean {
    const hp = hostPortOf(url);
    return hp !== undefined && this.patterns.some((p) => matches(p, hp));
  }

  /** The settings in use that weaken transport security. */
  insecureSettings(s: PolicedSettings): InsecureSetting[] {
    const out: InsecureSetting[] = [];
    if (s.verifySsl === false) out.push("insecure_skip_tls_verify");
    if (s.allowHttp === true) out.push("allow_http");
    if (s.caPemPath !== undefined) out.push("ca_pem_path");
    const hp = hostPortOf(s.url);
    // Edge Data Store speaks plain http by design, on the same host; anywhere else the telemetry crosses a network in clear.
    if (s.kind === "eds" && s.url.toLowerCase().startsWith("http:") && hp && !isLoopback(hp.host)) out.push("http_url");
    return out;
  }

  /** Every way the settings go beyond what the operator permits (empty when they do not). */
  violations(s: PolicedSettings): PolicyViolation[] {
    const out: PolicyViolation[] = [];
    const hostReason = (url: string) => {
      const hp = hostPortOf(url);
      const where = hp ? `"${hp.host}:${hp.port}"` : "of this URL";
      return `host ${where} is not allowed: neither OMF_ALLOWED_HOSTS nor an endpoint of OMF_ENDPOINTS_FILE names it`;
    };
    if (!this.hostAllowed(s.url)) out.push({ field: "url", reason: hostReason(s.url) });
    if (s.tokenUrl !== undefined && !this.hostAllowed(s.tokenUrl)) out.push({ field: "tokenUrl", reason: hostReason(s.tokenUrl) });
    if (!this.options.allowInsecure) {
      const insecure = this.insecureSettings(s);
      const needs = "is refused unless the operator sets OMF_ALLOW_INSECURE_ENDPOINTS=true";
      if (insecure.includes("insecure_skip_tls_verify")) out.push({ field: "verifySsl", reason: `turning TLS verification off ${needs}` });
      if (insecure.includes("allow_http")) out.push({ field: "allowHttp", reason: `plain http ${needs}` });
      if (insecure.includes("http_url")) out.push({ field: "url", reason: `plain http to an Edge Data Store on another host ${needs}` });
    }
    if (s.caPemPath !== undefined) {
      if (this.options.caDir === undefined)
        out.push({
          field: "caPemPath",
          reason: "a private CA is refused unless the operator sets OMF_CA_DIR (where CA bundles may be read)",
        });
      else if (!isAbsolute(s.caPemPath) || !inside(s.caPemPath, this.options.caDir))
        out.push({ field: "caPemPath", reason: "must be a file inside OMF_CA_DIR" });
    }
    return out;
  }

  /** Why a reference of the endpoints file may not be read, or undefined when it may. */
  refProblem(ref: SecretRef): string | undefined {
    if ("env" in ref) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref.env)) return "must name an environment variable";
      if (!ref.env.startsWith(this.options.secretEnvPrefix))
        return `environment variable ${ref.env} does not start with OMF_SECRET_ENV_PREFIX (${this.options.secretEnvPrefix})`;
      return undefined;
    }
    if (!isAbsolute(ref.file) || !inside(ref.file, this.options.secretDir)) return "the secret file must lie inside OMF_SECRET_DIR";
    const real = realOrResolved(ref.file);
    if (this.protectedFiles.includes(real)) return "the secret file is a credentials key file";
    return undefined;
  }

  /** Reads a reference of the endpoints file; CredentialsError when it may not be read or is empty. */
  resolveRef(ref: SecretRef): string {
    const problem = this.refProblem(ref);
    if (problem) throw new CredentialsError(problem);
    if ("file" in ref) {
      let v: string;
      try {
        v = readFileSync(ref.file, "utf8").trim();
      } catch (err) {
        throw new CredentialsError(`secret file ${ref.file} cannot be read (${(err as { code?: string }).code ?? "error"})`);
      }
      if (v === "") throw new CredentialsError(`secret file ${ref.file} is empty`);
      return v;
    }
    const v = process.env[ref.env];
    if (v === undefined || v === "") throw new CredentialsError(`secret environment variable ${ref.env} is not set`);
    return v;
  }
}

import { OMF_VERSIONS, type OmfEndpointKind, type OmfVersion } from "./messages.js";
import { isSecret, Secret } from "./secret.js";

/** Spec body limit (192 KB; read as 192,000 bytes so either reading of "KB" is respected). */
export const OMF_SPEC_MAX_BODY_BYTES = 192_000;
/** PI Web API `MaxRequestContentLength` default. */
export const PI_DEFAULT_MAX_BODY_BYTES = 4_194_304;

export const DEFAULT_MAX_BODY_BYTES: Readonly<Record<OmfEndpointKind, number>> = {
  pi: PI_DEFAULT_MAX_BODY_BYTES,
  // ADH/EDS: the OMF ingress limit is the spec's 192 KB (the 28.6 MB figure is the SDS write API).
  adh: OMF_SPEC_MAX_BODY_BYTES,
  eds: OMF_SPEC_MAX_BODY_BYTES,
};
export const DEFAULT_MAX_VALUES_PER_REQUEST = 10_000;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_OMF_VERSION: OmfVersion = "1.2";
export const MAX_PRODUCER_TOKEN_LENGTH = 256;
export const MAX_ACCEPT_VERBOSITY_LENGTH = 100;
/** PI's values are words (`verbose`, `parameters`, `exceptions`, `inner events`), comma-separated. */
const ACCEPT_VERBOSITY = /^[A-Za-z][A-Za-z ,]*$/;

type SecretInput = string | Secret;

interface CommonInput {
  /** A label for logs and results (defaults to `<kind>:<host>`). */
  name?: string;
  /** PI: the PI Web API root (`https://host/piwebapi`). ADH: the resource (`https://uswe.datahub.connect.aveva.com`). EDS: `http://localhost:5590`. */
  url: string;
  omfVersion?: OmfVersion;
  /** true (default) / false, or — like the reference sample — a path to a CA PEM file. */
  verifySsl?: boolean | string;
  /** CA bundle (PEM) to trust, e.g. for a self-signed PI Web API certificate. */
  caPemPath?: string;
  /** Per request (each attempt), ms. Default 30 000. */
  timeoutMs?: number;
  /** Serialized (pre-compression) body budget. Default per kind: PI 4 MiB, ADH/EDS 192 KB. */
  maxBodyBytes?: number;
  /** Values per data request. */
  maxValuesPerRequest?: number;
  /** gzip request bodies. Default true. */
  compression?: boolean;
  /** Permit plain http for PI/ADH (lab / emulator only; credentials travel in clear text). */
  allowHttp?: boolean;
  /** `producertoken` header, sent on 1.0/1.1 only (PI Connector Relay era; obsolete in 1.2, receivers ignore it). */
  producerToken?: string;
  /** `Accept-Verbosity` on OMF POSTs to PI Web API, e.g. `verbose` (≥ 2021 SP2; not sent to Data Hub or EDS). */
  acceptVerbosity?: string;
}

export interface PiEndpointInput extends CommonInput {
  kind: "pi";
  username: string;
  password: SecretInput;
  /** PI Data Archive name: where read-back looks for points (`/dataservers?name=`); without it, the only one listed. */
  dataServerName?: string;
}

export interface AdhEndpointInput extends CommonInput {
  /** AVEVA Data Hub / OCS / CONNECT data services (`ocs`, `cds` accepted as aliases). */
  kind: "adh" | "ocs" | "cds";
  tenantId: string;
  namespaceId: string;
  clientId: string;
  clientSecret: SecretInput;
  apiVersion?: string;
  /** Skip discovery and use this token endpoint. */
  tokenUrl?: string;
}

export interface EdsEndpointInput extends CommonInput {
  kind: "eds";
  apiVersion?: string;
}

export type OmfEndpointInput = PiEndpointInput | AdhEndpointInput | EdsEndpointInput;

interface CommonConfig {
  readonly name: string;
  readonly url: string;
  /** Where messages are POSTed. */
  readonly omfUrl: string;
  /** The version set in the configuration, else DEFAULT_OMF_VERSION (the client probes the endpoint when not set). */
  readonly omfVersion: OmfVersion;
  /** Whether omfVersion was set: only then is it used without asking the endpoint (client.ts `omfVersion()`). */
  readonly omfVersionSet: boolean;
  readonly verifySsl: boolean;
  readonly caPemPath: string | undefined;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  readonly maxValuesPerRequest: number;
  readonly compression: boolean;
  readonly allowHttp: boolean;
  readonly producerToken: Secret | undefined;
  /** `Accept-Verbosity` on OMF POSTs to PI Web API (≥ 2021 SP2 reads it; Data Hub and EDS do not document it: not sent). */
  readonly acceptVerbosity: string | undefined;
}

export interface PiEndpointConfig extends CommonConfig {
  readonly kind: "pi";
  readonly username: string;
  readonly password: Secret;
  readonly dataServerName: string | undefined;
}

export interface AdhEndpointConfig extends CommonConfig {
  readonly kind: "adh";
  readonly tenantId: string;
  readonly namespaceId: string;
  readonly clientId: string;
  readonly clientSecret: Secret;
  readonly apiVersion: string;
  readonly tokenUrl: string | undefined;
}

export interface EdsEndpointConfig extends CommonConfig {
  readonly kind: "eds";
  readonly apiVersion: string;
}

/** A validated endpoint; credentials are `Secret`s, so JSON/inspect of it never shows them. */
export type OmfEndpointConfig = PiEndpointConfig | AdhEndpointConfig | EdsEndpointConfig;

export type ValidationResult = { ok: true; config: OmfEndpointConfig } | { ok: false; errors: string[] };

const KIND_ALIASES: Record<string, OmfEndpointKind> = { pi: "pi", adh: "adh", ocs: "adh", cds: "adh", eds: "eds" };
const KIND_LABEL: Record<OmfEndpointKind, string> = { pi: "PI Web API", adh: "AVEVA Data Hub", eds: "Edge Data Store" };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Validates and normalises an endpoint configuration. Errors name the field (`endpoint.url: …`) and never contain
 * a credential value (nor the URL, which could carry userinfo).
 */
export function validateEndpointConfig(input: unknown, path = "endpoint"): ValidationResult {
  const errors: string[] = [];
  const f = (field: string) => `${path}.${field}`;
  if (!isRecord(input)) return { ok: false, errors: [`${path}: must be an object`] };

  const rawKind = typeof input["kind"] === "string" ? input["kind"].toLowerCase() : undefined;
  const kind = rawKind === undefined ? undefined : KIND_ALIASES[rawKind];
  if (kind === undefined) {
    errors.push(`${f("kind")}: must be one of pi, adh (ocs, cds), eds`);
    return { ok: false, errors };
  }
  const label = KIND_LABEL[kind];

  const optString = (field: string): string | undefined => {
    const v = input[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || v.trim() === "") {
      errors.push(`${f(field)}: must be a non-empty string`);
      return undefined;
    }
    return v;
  };
  const reqString = (field: string): string => {
    const v = optString(field);
    if (v === undefined && (input[field] === undefined || input[field] === null)) errors.push(`${f(field)}: required for ${label}`);
    return v ?? "";
  };
  const reqSecret = (field: string): Secret => {
    const v = input[field];
    if (isSecret(v)) {
      if (v.isEmpty) errors.push(`${f(field)}: must not be empty`);
      return v;
    }
    if (v === undefined || v === null) errors.push(`${f(field)}: required for ${label}`);
    else if (typeof v !== "string") errors.push(`${f(field)}: must be a string`);
    else if (v === "") errors.push(`${f(field)}: must not be empty`);
    return new Secret(typeof v === "string" ? v : "");
  };
  const optInt = (field: string, min: number, max: number, fallback: number): number => {
    const v = input[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      errors.push(`${f(field)}: must be an integer between ${min} and ${max}`);
      return fallback;
    }
    return v;
  };
  const optBool = (field: string, fallback: boolean): boolean => {
    const v = input[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") {
      errors.push(`${f(field)}: must be a boolean`);
      return fallback;
    }
    return v;
  };

  const allowHttp = optBool("allowHttp", false);
  let url = "";
  const rawUrl = input["url"];
  if (typeof rawUrl !== "string" || rawUrl.trim() === "") {
    errors.push(`${f("url")}: required`);
  } else {
    let parsed: URL | undefined;
    try {
      parsed = new URL(rawUrl);
    } catch {
      errors.push(`${f("url")}: must be an absolute http(s) URL`);
    }
    if (parsed) {
      const httpsOnly = kind !== "eds" && !allowHttp;
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:") errors.push(`${f("url")}: must be an absolute http(s) URL`);
      else if (httpsOnly && parsed.protocol !== "https:")
        errors.push(`${f("url")}: must be an https URL for ${label} (allowHttp permits http for a lab)`);
      if (parsed.username !== "" || parsed.password !== "")
        errors.push(`${f("url")}: must not contain credentials (use the credential fields)`);
      if (parsed.search !== "" || parsed.hash !== "") errors.push(`${f("url")}: must not have a query or fragment`);
      url = `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, "");
    }
  }

  let omfVersion: OmfVersion = DEFAULT_OMF_VERSION;
  let omfVersionSet = false;
  const rawVersion = input["omfVersion"];
  if (rawVersion !== undefined && rawVersion !== null) {
    if (typeof rawVersion === "string" && (OMF_VERSIONS as readonly string[]).includes(rawVersion)) {
      omfVersion = rawVersion as OmfVersion;
      omfVersionSet = true;
    } else errors.push(`${f("omfVersion")}: must be one of ${OMF_VERSIONS.join(", ")}`);
  }

  let verifySsl = true;
  let caPemPath = optString("caPemPath");
  const rawVerify = input["verifySsl"];
  if (typeof rawVerify === "boolean") verifySsl = rawVerify;
  else if (typeof rawVerify === "string" && rawVerify.trim() !== "") {
    if (caPemPath !== undefined && caPemPath !== rawVerify)
      errors.push(`${f("verifySsl")}: a CA path here conflicts with ${f("caPemPath")}`);
    caPemPath = rawVerify;
  } else if (rawVerify !== undefined && rawVerify !== null) errors.push(`${f("verifySsl")}: must be a boolean or a CA PEM file path`);
  if (!verifySsl && caPemPath !== undefined) errors.push(`${f("caPemPath")}: must not be set when ${f("verifySsl")} is false`);

  const timeoutMs = optInt("timeoutMs", 1, 600_000, DEFAULT_TIMEOUT_MS);
  const maxBodyBytes = optInt("maxBodyBytes", 1024, 512 * 1024 * 1024, DEFAULT_MAX_BODY_BYTES[kind]);
  const maxValuesPerRequest = optInt("maxValuesPerRequest", 1, 10_000_000, DEFAULT_MAX_VALUES_PER_REQUEST);
  const compression = optBool("compression", true);
  const rawToken = input["producerToken"];
  let producerToken: Secret | undefined;
  if (rawToken !== undefined && rawToken !== null) {
    if (typeof rawToken === "string" || isSecret(rawToken)) producerToken = isSecret(rawToken) ? rawToken : new Secret(rawToken);
    else errors.push(`${f("producerToken")}: must be a string`);
    // A header value: printable ASCII only, so it can neither break the request nor smuggle another header.
    const t = producerToken?.reveal();
    if (t !== undefined && (t.length === 0 || t.length > MAX_PRODUCER_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(t)))
      errors.push(`${f("producerToken")}: must be 1 to ${MAX_PRODUCER_TOKEN_LENGTH} printable ASCII characters without spaces`);
  }
  const acceptVerbosity = optString("acceptVerbosity");
  if (acceptVerbosity !== undefined && (acceptVerbosity.length > MAX_ACCEPT_VERBOSITY_LENGTH || !ACCEPT_VERBOSITY.test(acceptVerbosity)))
    errors.push(
      `${f("acceptVerbosity")}: must be at most ${MAX_ACCEPT_VERBOSITY_LENGTH} characters of letters, spaces and commas (e.g. "verbose", "parameters, inner events")`,
    );
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return "?";
    }
  })();
  const name = optString("name") ?? `${kind}:${host}`;
  const common = {
    name,
    url,
    omfVersion,
    omfVersionSet,
    verifySsl,
    caPemPath,
    timeoutMs,
    maxBodyBytes,
    maxValuesPerRequest,
    compression,
    allowHttp,
    producerToken,
    acceptVerbosity,
  };

  let config: OmfEndpointConfig;
  if (kind === "pi") {
    const username = reqString("username");
    const password = reqSecret("password");
    if (username.includes(":")) errors.push(`${f("username")}: must not contain ":" (Basic auth)`);
    config = {
      ...common,
      kind,
      omfUrl: `${url}/omf`,
      username,
      password,
      dataServerName: optString("dataServerName"),
    };
  } else if (kind === "adh") {
    const tenantId = reqString("tenantId");
    const namespaceId = reqString("namespaceId");
    const clientId = reqString("clientId");
    const clientSecret = reqSecret("clientSecret");
    const apiVersion = optString("apiVersion") ?? "v1";
    const tokenUrl = optString("tokenUrl");
    if (tokenUrl !== undefined) {
      try {
        const t = new URL(tokenUrl);
        if (t.protocol !== "https:" && !(allowHttp && t.protocol === "http:")) errors.push(`${f("tokenUrl")}: must be an https URL`);
      } catch {
        errors.push(`${f("tokenUrl")}: must be an absolute URL`);
      }
    }
    const seg = encodeURIComponent;
    config = {
      ...common,
      kind,
      omfUrl: `${url}/api/${seg(apiVersion)}/tenants/${seg(tenantId)}/namespaces/${seg(namespaceId)}/omf`,
      tenantId,
      namespaceId,
      clientId,
      clientSecret,
      apiVersion,
      tokenUrl,
    };
  } else {
    const apiVersion = optString("apiVersion") ?? "v1";
    config = { ...common, kind, omfUrl: `${url}/api/${encodeURIComponent(apiVersion)}/tenants/default/namespaces/default/omf`, apiVersion };
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config: Object.freeze(config) };
}

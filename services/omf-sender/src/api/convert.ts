import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Endpoint, EndpointKind, EndpointSchema } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { FieldViolation } from "@meridian/service-kit";
import {
  ENDPOINT_ID,
  type EndpointEntry,
  type EndpointKindName,
  type EndpointSettings,
  type InsecureSetting,
  type StoredEndpoint,
  validateSettings,
} from "../pipeline/endpoints.js";
import type { PolicyViolation } from "../pipeline/policy.js";

const KIND_NAME: Partial<Record<EndpointKind, EndpointKindName>> = {
  [EndpointKind.PI]: "pi",
  [EndpointKind.ADH]: "adh",
  [EndpointKind.EDS]: "eds",
};
const KIND_ENUM: Record<EndpointKindName, EndpointKind> = { pi: EndpointKind.PI, adh: EndpointKind.ADH, eds: EndpointKind.EDS };

/** Platform setting name → proto field name, so errors name the field the caller sent. */
const FIELD_NAMES: Record<string, string> = {
  kind: "kind",
  url: "url",
  omfVersion: "omf_version",
  username: "username",
  password: "secret",
  clientSecret: "secret",
  dataServerName: "data_server_name",
  tenantId: "tenant_id",
  namespaceId: "namespace_id",
  clientId: "client_id",
  apiVersion: "api_version",
  tokenUrl: "token_url",
  caPemPath: "ca_pem_path",
  verifySsl: "insecure_skip_tls_verify",
  allowHttp: "allow_http",
  compression: "disable_compression",
  timeoutMs: "timeout_ms",
  maxBodyBytes: "max_body_bytes",
  maxValuesPerRequest: "max_values_per_request",
  acceptVerbosity: "accept_verbosity",
  producerToken: "producer_token",
};

/** The proto endpoint's non-secret settings in the platform client's shape (unset proto fields stay unset). */
export function settingsFromProto(e: Endpoint): EndpointSettings {
  const s: Record<string, unknown> = { kind: KIND_NAME[e.kind], url: e.url };
  const str = (k: keyof EndpointSettings, v: string) => {
    if (v !== "") s[k] = v;
  };
  str("omfVersion", e.omfVersion);
  str("username", e.username);
  str("dataServerName", e.dataServerName);
  str("tenantId", e.tenantId);
  str("namespaceId", e.namespaceId);
  str("clientId", e.clientId);
  str("apiVersion", e.apiVersion);
  str("tokenUrl", e.tokenUrl);
  str("caPemPath", e.caPemPath);
  str("acceptVerbosity", e.acceptVerbosity);
  str("producerToken", e.producerToken);
  if (e.insecureSkipTlsVerify) s["verifySsl"] = false;
  if (e.allowHttp) s["allowHttp"] = true;
  if (e.disableCompression) s["compression"] = false;
  if (e.timeoutMs) s["timeoutMs"] = e.timeoutMs;
  if (e.maxBodyBytes) s["maxBodyBytes"] = e.maxBodyBytes;
  if (e.maxValuesPerRequest) s["maxValuesPerRequest"] = e.maxValuesPerRequest;
  return s as unknown as EndpointSettings;
}

/** What the API returns: settings, never the secret; its revision, and the settings that weaken transport security. */
export function endpointToProto(entry: EndpointEntry, insecureSettings: readonly InsecureSetting[]): Endpoint {
  const stored: StoredEndpoint = entry.endpoint;
  const s = stored.settings;
  return create(EndpointSchema, {
    id: stored.id,
    kind: KIND_ENUM[s.kind] ?? EndpointKind.UNSPECIFIED,
    url: s.url,
    omfVersion: s.omfVersion ?? "",
    username: s.username ?? "",
    dataServerName: s.dataServerName ?? "",
    tenantId: s.tenantId ?? "",
    namespaceId: s.namespaceId ?? "",
    clientId: s.clientId ?? "",
    apiVersion: s.apiVersion ?? "",
    tokenUrl: s.tokenUrl ?? "",
    caPemPath: s.caPemPath ?? "",
    insecureSkipTlsVerify: s.verifySsl === false,
    allowHttp: s.allowHttp === true,
    disableCompression: s.compression === false,
    timeoutMs: s.timeoutMs ?? 0,
    maxBodyBytes: s.maxBodyBytes ?? 0,
    maxValuesPerRequest: s.maxValuesPerRequest ?? 0,
    acceptVerbosity: s.acceptVerbosity ?? "",
    producerToken: s.producerToken ?? "",
    hasSecret: stored.secret !== undefined,
    origin: stored.origin,
    createTime: timestampFromDate(new Date(stored.createTime)),
    revision: BigInt(entry.revision),
    insecureSettings: [...insecureSettings],
  });
}

/** The operator's refusals by proto field path (`endpoint.url: host "x:443" is not allowed: …`). */
export function policyViolationsToProto(violations: readonly PolicyViolation[], path = "endpoint"): FieldViolation[] {
  return violations.map((v) => ({ path: `${path}.${FIELD_NAMES[v.field] ?? v.field}`, reason: v.reason }));
}

/**
 * A secret that is an {"env": …} or {"file": …} reference rather than a secret. References are the endpoints file's
 * (the operator's); through the API they would let a caller read omf-sender's environment or files into a password.
 */
export function isSecretReference(secret: string): boolean {
  const t = secret.trim();
  if (!t.startsWith("{")) return false;
  try {
    const v = JSON.parse(t) as Record<string, unknown>;
    return v !== null && typeof v === "object" && ("env" in v || "file" in v);
  } catch {
    return false;
  }
}

/**
 * Every problem of an endpoint in the request, by proto field path (`endpoint.tenant_id: required for AVEVA Data Hub`).
 * `keepsSecret`: an update that keeps the stored secret (none given), so a missing one is not a problem.
 */
export function endpointViolations(e: Endpoint, path = "endpoint", keepsSecret = false): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (e.id !== "" && !ENDPOINT_ID.test(e.id))
    out.push({ path: `${path}.id`, reason: "must be 1-63 lower-case letters, digits or '-', starting with a letter" });
  if (e.kind === EndpointKind.UNSPECIFIED || KIND_NAME[e.kind] === undefined) {
    out.push({ path: `${path}.kind`, reason: "required: ENDPOINT_KIND_PI, ENDPOINT_KIND_ADH or ENDPOINT_KIND_EDS" });
    return out;
  }
  if (e.kind === EndpointKind.EDS && e.secret !== "") out.push({ path: `${path}.secret`, reason: "Edge Data Store takes no credentials" });
  if (isSecretReference(e.secret))
    out.push({
      path: `${path}.secret`,
      reason: 'an {"env": …} or {"file": …} reference is honoured only in OMF_ENDPOINTS_FILE; give the secret itself',
    });
  const secret = e.secret !== "" ? e.secret : keepsSecret ? "(stored)" : undefined;
  for (const err of validateSettings(e.id || "endpoint", settingsFromProto(e), secret, path)) {
    const m = /^([^:]+): (.*)$/s.exec(err);
    if (!m) {
      out.push({ path, reason: err });
      continue;
    }
    const [, at, reason] = m as unknown as [string, string, string];
    const field = at.slice(path.length + 1);
    const proto = FIELD_NAMES[field] ?? field;
    if (out.some((v) => v.path === `${path}.${proto}`)) continue;
    // The platform's texts name its own fields; say it in the proto's terms.
    out.push({
      path: `${path}.${proto}`,
      reason: reason.replaceAll(/\bendpoint\.(\w+)/g, (_, f: string) => `${path}.${FIELD_NAMES[f] ?? f}`),
    });
  }
  return out;
}

import { OmniaConfigError } from "./errors.js";

export type OmniaEnvironmentName = "dev" | "test" | "prod";
/** v1.6 was removed in Aug 2022; kept selectable for emulators and old gateways. */
export type OmniaApiVersion = "1.7" | "1.6";

/** Equinor's tenant (Postman environments, the archived SDK's default). */
export const EQUINOR_TENANT_ID = "3aa4a235-b6e2-48d5-9195-7fcf05b459b0";
export const DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com";

export interface OmniaEnvironmentDefaults {
  /** Without the `/v{version}` segment. */
  gatewayUrl: string;
  /** The API's app id: the token scope is `<resourceId>/.default` (a bare GUID, no `api://`). */
  resourceId: string;
  /** Public client for user sign-in (device code) without a secret. */
  publicClientId: string;
}

export const OMNIA_ENVIRONMENTS: Readonly<Record<OmniaEnvironmentName, OmniaEnvironmentDefaults>> = {
  dev: {
    gatewayUrl: "https://api-dev.gateway.equinor.com/plant/timeseries",
    resourceId: "32f2a909-8a98-4eb8-b22d-1208d9350cb0",
    publicClientId: "675bd975-260f-498e-82cd-65f67b34fe7d",
  },
  test: {
    gatewayUrl: "https://api-test.gateway.equinor.com/plant/timeseries",
    resourceId: "32f2a909-8a98-4eb8-b22d-1208d9350cb0",
    publicClientId: "675bd975-260f-498e-82cd-65f67b34fe7d",
  },
  prod: {
    gatewayUrl: "https://api.gateway.equinor.com/plant/timeseries",
    resourceId: "141369bd-3dca-4b55-825b-56ad4a69b1fc",
    publicClientId: "67da184b-6bde-43fd-a155-30ed4ff162d2",
  },
};

export interface OmniaEnvironmentInput {
  environment: OmniaEnvironmentName;
  version?: OmniaApiVersion;
  /** Replaces the whole base URL, version included (an emulator, a sovereign cloud's gateway). */
  baseUrl?: string;
  /** Replaces the resource id the token is asked for. */
  resourceId?: string;
  /** Replaces Entra ID's host (`https://login.microsoftonline.us`, an emulator). */
  authorityHost?: string;
  tenantId?: string;
}

export interface ResolvedOmniaEnvironment {
  name: OmniaEnvironmentName;
  version: OmniaApiVersion;
  /** No trailing slash. */
  baseUrl: string;
  resourceId: string;
  /** `<resourceId>/.default`. */
  scope: string;
  publicClientId: string;
  authorityHost: string;
  tenantId: string;
}

function checkUrl(field: string, value: string, problems: string[]): string {
  try {
    const u = new URL(value);
    if (u.protocol !== "https:" && u.protocol !== "http:") problems.push(`${field}: must be http(s), got ${u.protocol}`);
    else if (u.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(u.hostname))
      problems.push(`${field}: plain http only on loopback (a token would travel in clear)`);
    if (u.username || u.password) problems.push(`${field}: must not carry credentials`);
  } catch {
    problems.push(`${field}: not a URL`);
  }
  return value.replace(/\/+$/, "");
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The environment's URLs and ids with the overrides applied; OmniaConfigError names every bad field. */
export function resolveEnvironment(input: OmniaEnvironmentInput): ResolvedOmniaEnvironment {
  const problems: string[] = [];
  const defaults = OMNIA_ENVIRONMENTS[input.environment];
  if (defaults === undefined) throw new OmniaConfigError([`environment: must be dev, test or prod, got ${String(input.environment)}`]);
  const version = input.version ?? "1.7";
  if (version !== "1.7" && version !== "1.6") problems.push(`version: must be 1.7 or 1.6, got ${String(version)}`);
  const baseUrl = checkUrl("baseUrl", input.baseUrl ?? `${defaults.gatewayUrl}/v${version}`, problems);
  const authorityHost = checkUrl("authorityHost", input.authorityHost ?? DEFAULT_AUTHORITY_HOST, problems);
  const resourceId = input.resourceId ?? defaults.resourceId;
  if (resourceId.trim() === "" || /\s/.test(resourceId)) problems.push("resourceId: must be a GUID or an app id URI without spaces");
  const tenantId = input.tenantId ?? EQUINOR_TENANT_ID;
  if (!GUID.test(tenantId) && !/^[a-z0-9.-]+$/i.test(tenantId)) problems.push("tenantId: must be a GUID or a domain");
  if (problems.length > 0) throw new OmniaConfigError(problems);
  return {
    name: input.environment,
    version,
    baseUrl,
    resourceId,
    scope: `${resourceId.replace(/\/+$/, "")}/.default`,
    publicClientId: defaults.publicClientId,
    authorityHost,
    tenantId,
  };
}

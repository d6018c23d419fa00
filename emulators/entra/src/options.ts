/**
 * What the emulator knows: its tenant, the APIs (resources) tokens can be for, the applications that ask for them
 * and the users who approve device codes. Defaults are Omnia's real resource and public client ids (so a client
 * configured for Equinor runs unchanged apart from the authority host) and one confidential client for the stack.
 */
import type { HttpFaultConfig } from "@meridian/emulator-kit";

/** An API that tokens are issued for (`aud`): what `<appId>/.default` or `api://<appId>/.default` names. */
export interface ResourceApp {
  /** Application (client) id of the API: the GUID in the scope and, by default, the token's `aud`. */
  appId: string;
  displayName?: string;
  /** Other identifiers the scope may use, e.g. `api://<appId>`. `api://<appId>` is always accepted. */
  identifierUris?: string[];
  /** App roles an application may be granted (client credentials → `roles`). */
  appRoles?: string[];
  /** Delegated permissions (device code / refresh → `scp`). */
  scopes?: string[];
  /** `aud` as `guid` (Entra v2 tokens, the default) or `uri` (`api://<appId>`), for a verifier that must accept both. */
  audience?: "guid" | "uri";
}

/** What an application is granted on one resource. */
export interface ResourceGrant {
  /** App roles for client-credentials tokens (`roles`). */
  roles?: string[];
  /** Delegated permissions consented for users (`scp`). */
  scopes?: string[];
}

export interface ApplicationRegistration {
  clientId: string;
  displayName?: string;
  /** Client secrets (confidential client). */
  secrets?: string[];
  /** PEM certificates whose private key may sign a client assertion (ClientCertificateCredential). */
  certificates?: string[];
  /** A public client (device code) may call the token endpoint without a credential. */
  publicClient?: boolean;
  /** Resource appId → what the application may get on it. A resource not listed is refused (AADSTS65001). */
  grants?: Record<string, ResourceGrant>;
  /**
   * Redirect URIs of the "Single-page application" platform: the authorization code flow with PKCE, redeemed by the
   * browser across origins (CORS). Exact match, as Entra compares them.
   */
  spaRedirectUris?: string[];
}

export interface UserAccount {
  username: string;
  displayName?: string;
  /** Object id; default derived from the username. */
  oid?: string;
  /** Resource appId → the app roles assigned to the user on that API: the `roles` of the user's tokens for it. */
  appRoles?: Record<string, string[]>;
}

export interface EntraEmulatorOptions {
  /** Port; 0 (default in-process) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1 in-process, main.ts uses 0.0.0.0. */
  host?: string;
  /** Optional plain-HTTP port serving only `/_emulator/*` (health checks without the CA). */
  adminPort?: number;
  /** Server certificate and key (PEM). Default: a CA and a certificate generated at start. */
  tlsCertPem?: string;
  tlsKeyPem?: string;
  /** CA of a given certificate, served at /_emulator/ca.pem. */
  tlsCaPem?: string;
  /** Extra DNS names / IPs for a generated certificate (localhost, 127.0.0.1, ::1 always in). */
  tlsHostnames?: string[];
  /** Write the CA PEM here at start (a volume other containers read). */
  caFile?: string;
  /**
   * Base URL in metadata and token `iss`, e.g. `https://entra:8443`. Default from the request's Host header, because
   * MSAL refuses metadata whose issuer host differs from the authority it was given.
   */
  publicUrl?: string;
  /** Tenant that `common` / `organizations` resolve to and users belong to. */
  tenantId?: string;
  /** Tenants served; default any GUID-shaped or named tenant. A listed set refuses others (AADSTS90002). */
  tenants?: string[];
  resources?: ResourceApp[];
  applications?: ApplicationRegistration[];
  users?: UserAccount[];
  /** Access token lifetime (seconds). Default 3600; short values for expiry tests. */
  tokenLifetimeSeconds?: number;
  /** Refresh token lifetime (seconds). Default 90 days. */
  refreshTokenLifetimeSeconds?: number;
  /** Device code lifetime (seconds). Default 900, as Entra. */
  deviceCodeLifetimeSeconds?: number;
  /** Polling interval the device code answer asks for (seconds). Default 5, as Entra; tests use 1. */
  deviceCodeIntervalSeconds?: number;
  /** Answer `slow_down` to a poll sooner than the interval. Default false: MSAL treats it as fatal. */
  enforcePollingInterval?: boolean;
  /** How long an authorization code may be redeemed (seconds). Default 60: Entra's codes live about a minute. */
  authorizationCodeLifetimeSeconds?: number;
  /** Fault switch at start (same shape as POST /_emulator/faults). */
  faults?: HttpFaultConfig;
  /** Called for each answered request (main.ts logs through it). Never carries a secret. */
  onRequest?: (entry: RequestLogEntry) => void;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  ms: number;
  grantType?: string;
  clientId?: string;
  error?: string;
  fault?: string;
}

/** Equinor's tenant (protocol notes 1.2). */
export const EQUINOR_TENANT_ID = "3aa4a235-b6e2-48d5-9195-7fcf05b459b0";
export const OMNIA_RESOURCE_NONPROD = "32f2a909-8a98-4eb8-b22d-1208d9350cb0";
export const OMNIA_RESOURCE_PROD = "141369bd-3dca-4b55-825b-56ad4a69b1fc";
export const OMNIA_PUBLIC_CLIENT_NONPROD = "675bd975-260f-498e-82cd-65f67b34fe7d";
export const OMNIA_PUBLIC_CLIENT_PROD = "67da184b-6bde-43fd-a155-30ed4ff162d2";

export const DEFAULTS = {
  tenantId: EQUINOR_TENANT_ID,
  /** The compose stack's confidential client (omnia-reader with a client secret). */
  confidentialClient: {
    clientId: "6f1c1b9e-2d6c-4f7a-9f0e-4d1b8c3a7e21",
    secret: "meridian-entra-secret",
  },
  user: { username: "operator@meridian.test", displayName: "Meridian Operator" },
  tokenLifetimeSeconds: 3600,
  refreshTokenLifetimeSeconds: 90 * 86_400,
  deviceCodeLifetimeSeconds: 900,
  deviceCodeIntervalSeconds: 5,
  authorizationCodeLifetimeSeconds: 60,
} as const;

const omniaGrant: ResourceGrant = { roles: ["Timeseries.Read"], scopes: ["user_impersonation"] };

export function defaultResources(): ResourceApp[] {
  return [
    {
      appId: OMNIA_RESOURCE_NONPROD,
      displayName: "Omnia Timeseries API (non-production)",
      appRoles: ["Timeseries.Read", "Timeseries.Write"],
      scopes: ["user_impersonation"],
    },
    {
      appId: OMNIA_RESOURCE_PROD,
      displayName: "Omnia Timeseries API (production)",
      appRoles: ["Timeseries.Read", "Timeseries.Write"],
      scopes: ["user_impersonation"],
    },
  ];
}

export function defaultApplications(): ApplicationRegistration[] {
  return [
    {
      clientId: OMNIA_PUBLIC_CLIENT_NONPROD,
      displayName: "plant-timeseries-api-public-plant-non-production",
      publicClient: true,
      grants: { [OMNIA_RESOURCE_NONPROD]: { scopes: ["user_impersonation"] } },
    },
    {
      clientId: OMNIA_PUBLIC_CLIENT_PROD,
      displayName: "plant-timeseries-api-public-plant-production",
      publicClient: true,
      grants: { [OMNIA_RESOURCE_PROD]: { scopes: ["user_impersonation"] } },
    },
    {
      clientId: DEFAULTS.confidentialClient.clientId,
      displayName: "meridian-omnia-reader",
      secrets: [DEFAULTS.confidentialClient.secret],
      grants: { [OMNIA_RESOURCE_NONPROD]: omniaGrant, [OMNIA_RESOURCE_PROD]: omniaGrant },
    },
  ];
}

export type ResolvedOptions = Required<
  Pick<
    EntraEmulatorOptions,
    | "port"
    | "host"
    | "tlsHostnames"
    | "tenantId"
    | "resources"
    | "applications"
    | "users"
    | "tokenLifetimeSeconds"
    | "refreshTokenLifetimeSeconds"
    | "deviceCodeLifetimeSeconds"
    | "deviceCodeIntervalSeconds"
    | "enforcePollingInterval"
    | "authorizationCodeLifetimeSeconds"
  >
> &
  Omit<EntraEmulatorOptions, "port" | "host" | "tlsHostnames" | "tenantId" | "resources" | "applications" | "users">;

export function resolveOptions(o: EntraEmulatorOptions): ResolvedOptions {
  return {
    ...o,
    port: o.port ?? 0,
    host: o.host ?? "127.0.0.1",
    tlsHostnames: o.tlsHostnames ?? [],
    tenantId: (o.tenantId ?? DEFAULTS.tenantId).toLowerCase(),
    resources: o.resources ?? defaultResources(),
    applications: o.applications ?? defaultApplications(),
    users: o.users ?? [{ ...DEFAULTS.user }],
    tokenLifetimeSeconds: o.tokenLifetimeSeconds ?? DEFAULTS.tokenLifetimeSeconds,
    refreshTokenLifetimeSeconds: o.refreshTokenLifetimeSeconds ?? DEFAULTS.refreshTokenLifetimeSeconds,
    deviceCodeLifetimeSeconds: o.deviceCodeLifetimeSeconds ?? DEFAULTS.deviceCodeLifetimeSeconds,
    deviceCodeIntervalSeconds: o.deviceCodeIntervalSeconds ?? DEFAULTS.deviceCodeIntervalSeconds,
    enforcePollingInterval: o.enforcePollingInterval ?? false,
    authorizationCodeLifetimeSeconds: o.authorizationCodeLifetimeSeconds ?? DEFAULTS.authorizationCodeLifetimeSeconds,
  };
}

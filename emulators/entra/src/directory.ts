/**
 * The tenant's directory: applications (with their credentials), the APIs tokens are for, and users. Scope strings are
 * resolved here into a resource and what is asked of it, with Entra's rules: one resource per request, client
 * credentials only as `<resource>/.default`, delegated permissions only if the API exposes them and the application
 * was granted them.
 */
import { createHash, type KeyObject, X509Certificate } from "node:crypto";
import { EntraError, Errors } from "./errors.js";
import type { ApplicationRegistration, ResolvedOptions, ResourceApp, UserAccount } from "./options.js";

/** Scopes MSAL adds to every user flow; they select id token, profile and refresh token, not a resource. */
export const OIDC_SCOPES = new Set(["openid", "profile", "offline_access", "email"]);

/** Longest scope parameter accepted; anything longer is not a real request. */
export const MAX_SCOPE_LENGTH = 4096;

export interface RegisteredCertificate {
  /** Base64url SHA-1 and SHA-256 thumbprints, as MSAL puts them in `x5t` / `x5t#S256`. */
  x5t: string;
  x5tS256: string;
  publicKey: KeyObject;
  subject: string;
}

export interface Application {
  clientId: string;
  displayName: string;
  secrets: string[];
  certificates: RegisteredCertificate[];
  publicClient: boolean;
  grants: Record<string, { roles: string[]; scopes: string[] }>;
  /** Object id of the application's service principal: `oid` / `sub` of its app-only tokens. */
  servicePrincipalId: string;
  spaRedirectUris: string[];
}

export interface User {
  username: string;
  displayName: string;
  oid: string;
  /** Resource appId (lower case) → app roles assigned to the user on it. */
  appRoles: Record<string, string[]>;
}

export interface ResolvedScope {
  resource: ResourceApp;
  /** What the request named: `.default` or delegated permission names. */
  permissions: string[];
  /** OIDC scopes asked for alongside (openid, profile, offline_access). */
  oidc: string[];
  /** The resource-side scope strings as sent, echoed in the answer's `scope`. */
  requested: string[];
}

/** A stable GUID from a name, so the same user or application keeps its object id across restarts. */
export function stableGuid(name: string): string {
  const h = createHash("sha256").update(name).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const hexToB64url = (hex: string) => Buffer.from(hex.replace(/:/g, ""), "hex").toString("base64url");

export function registerCertificate(pem: string): RegisteredCertificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new Error(`not a PEM certificate: ${(err as Error).message}`);
  }
  return {
    x5t: hexToB64url(cert.fingerprint),
    x5tS256: hexToB64url(cert.fingerprint256),
    publicKey: cert.publicKey,
    subject: cert.subject,
  };
}

function toApplication(a: ApplicationRegistration): Application {
  const grants: Application["grants"] = {};
  for (const [resource, g] of Object.entries(a.grants ?? {}))
    grants[resource.toLowerCase()] = { roles: g.roles ?? [], scopes: g.scopes ?? [] };
  return {
    clientId: a.clientId.toLowerCase(),
    displayName: a.displayName ?? a.clientId,
    secrets: a.secrets ?? [],
    certificates: (a.certificates ?? []).map(registerCertificate),
    publicClient: a.publicClient ?? false,
    grants,
    servicePrincipalId: stableGuid(`sp:${a.clientId.toLowerCase()}`),
    spaRedirectUris: a.spaRedirectUris ?? [],
  };
}

export class Directory {
  private readonly apps = new Map<string, Application>();
  readonly resources: ResourceApp[];
  readonly users: User[];

  constructor(readonly opts: ResolvedOptions) {
    for (const a of opts.applications) this.addApplication(a);
    this.resources = opts.resources.map((r) => ({ ...r, appId: r.appId.toLowerCase() }));
    this.users = opts.users.map((u: UserAccount) => ({
      username: u.username,
      displayName: u.displayName ?? u.username,
      oid: u.oid ?? stableGuid(`user:${u.username.toLowerCase()}`),
      appRoles: Object.fromEntries(Object.entries(u.appRoles ?? {}).map(([resource, roles]) => [resource.toLowerCase(), roles])),
    }));
  }

  addApplication(a: ApplicationRegistration): Application {
    const app = toApplication(a);
    this.apps.set(app.clientId, app);
    return app;
  }

  application(clientId: string): Application | undefined {
    return this.apps.get(clientId.toLowerCase());
  }

  applications(): Application[] {
    return [...this.apps.values()];
  }

  /** Whether a browser page at `origin` may read token answers: it is the origin of a registered SPA redirect URI. */
  isSpaOrigin(origin: string): boolean {
    for (const app of this.apps.values())
      for (const uri of app.spaRedirectUris) if (URL.canParse(uri) && new URL(uri).origin === origin) return true;
    return false;
  }

  user(username?: string): User | undefined {
    if (!username) return this.users[0];
    return this.users.find((u) => u.username.toLowerCase() === username.toLowerCase());
  }

  /** The tenant a request's path names, `common`/`organizations` resolved to the home tenant; undefined if unknown. */
  tenant(pathTenant: string): string | undefined {
    const t = pathTenant.toLowerCase();
    if (t === "common" || t === "organizations") return this.opts.tenantId;
    if (t === "consumers") return undefined;
    if (this.opts.tenants && !this.opts.tenants.map((x) => x.toLowerCase()).includes(t) && t !== this.opts.tenantId) return undefined;
    return t;
  }

  private findResource(id: string): ResourceApp | undefined {
    const want = id.toLowerCase();
    return this.resources.find(
      (r) => r.appId === want || `api://${r.appId}` === want || (r.identifierUris ?? []).some((u) => u.toLowerCase() === want),
    );
  }

  /** Splits a scope parameter into one resource and what is asked of it; throws Entra's invalid_scope errors. */
  resolveScope(scope: string, tenant: string): ResolvedScope {
    const items = scope.split(/\s+/).filter(Boolean);
    const oidc = items.filter((s) => OIDC_SCOPES.has(s.toLowerCase()));
    const rest = items.filter((s) => !OIDC_SCOPES.has(s.toLowerCase()));
    if (rest.length === 0) throw Errors.invalidScope(scope);
    let resource: ResourceApp | undefined;
    const permissions: string[] = [];
    for (const s of rest) {
      const slash = s.lastIndexOf("/");
      if (slash <= 0 || slash === s.length - 1) throw Errors.invalidScope(s);
      const id = s.slice(0, slash);
      const r = this.findResource(id);
      if (!r) throw Errors.resourceNotFound(id, tenant);
      if (resource && resource.appId !== r.appId)
        throw new EntraError(
          400,
          "invalid_scope",
          28000,
          `Provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${scope} is not valid.`,
        );
      resource = r;
      permissions.push(s.slice(slash + 1));
    }
    return { resource: resource!, permissions, oidc, requested: rest };
  }
}

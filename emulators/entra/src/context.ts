/**
 * Everything the routes share: settings that admin calls may change, the directory, signing keys, outstanding device
 * codes and refresh tokens, counters and the fault switch; and the issuing of tokens, so every grant signs the same
 * claims the same way.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { HttpFaultSwitch } from "@meridian/emulator-kit";
import { type Application, Directory, type ResolvedScope, type User } from "./directory.js";
import { SigningKeys } from "./keys.js";
import type { ResolvedOptions } from "./options.js";

export type DeviceCodeStatus = "pending" | "approved" | "declined" | "redeemed";

export interface DeviceCode {
  deviceCode: string;
  userCode: string;
  clientId: string;
  tenant: string;
  scope: string;
  expiresAt: number;
  status: DeviceCodeStatus;
  user?: User;
  lastPollAt?: number;
}

export interface RefreshToken {
  clientId: string;
  tenant: string;
  user: User;
  expiresAt: number;
  revoked: boolean;
}

/** What an authorization code stands for until it is redeemed (once) or expires. */
export interface AuthorizationCode {
  clientId: string;
  tenant: string;
  redirectUri: string;
  scope: string;
  /** S256 challenge of the client's code_verifier (RFC 7636). */
  codeChallenge: string;
  nonce?: string;
  user: User;
  expiresAt: number;
  redeemed: boolean;
}

export interface Counters {
  requests: number;
  /** clientId → grant type → tokens issued. */
  tokensIssued: Record<string, Record<string, number>>;
  /** Token-endpoint error answers by `error`. */
  errors: Record<string, number>;
  byStatus: Record<number, number>;
  faults: number;
}

export interface Settings {
  tokenLifetimeSeconds: number;
  refreshTokenLifetimeSeconds: number;
  deviceCodeLifetimeSeconds: number;
  deviceCodeIntervalSeconds: number;
  enforcePollingInterval: boolean;
  authorizationCodeLifetimeSeconds: number;
}

export interface IssuedTokens {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  ext_expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
  client_info?: string;
}

/** Entra user codes are 9 characters from a reduced alphabet (no 0/O, 1/I). */
const USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/** Outstanding device codes kept at most; the oldest go first. */
const MAX_DEVICE_CODES = 1000;
const MAX_REFRESH_TOKENS = 10_000;
const MAX_AUTHORIZATION_CODES = 1000;

const nowSeconds = () => Math.floor(Date.now() / 1000);

export function newCounters(): Counters {
  return { requests: 0, tokensIssued: {}, errors: {}, byStatus: {}, faults: 0 };
}

export class EmulatorContext {
  readonly directory: Directory;
  readonly faults = new HttpFaultSwitch();
  counters: Counters = newCounters();
  readonly settings: Settings;
  private deviceCodes = new Map<string, DeviceCode>();
  private refreshTokens = new Map<string, RefreshToken>();
  private authorizationCodes = new Map<string, AuthorizationCode>();

  private constructor(
    readonly opts: ResolvedOptions,
    readonly keys: SigningKeys,
    readonly caPem: string | undefined,
  ) {
    this.directory = new Directory(opts);
    this.settings = {
      tokenLifetimeSeconds: opts.tokenLifetimeSeconds,
      refreshTokenLifetimeSeconds: opts.refreshTokenLifetimeSeconds,
      deviceCodeLifetimeSeconds: opts.deviceCodeLifetimeSeconds,
      deviceCodeIntervalSeconds: opts.deviceCodeIntervalSeconds,
      enforcePollingInterval: opts.enforcePollingInterval,
      authorizationCodeLifetimeSeconds: opts.authorizationCodeLifetimeSeconds,
    };
    if (opts.faults) this.faults.set(opts.faults);
  }

  static async create(opts: ResolvedOptions, caPem: string | undefined): Promise<EmulatorContext> {
    return new EmulatorContext(opts, await SigningKeys.create(), caPem);
  }

  /** `https://host:port` as the client addressed it (MSAL requires the issuer's host to be the authority's). */
  baseUrl(req: IncomingMessage): string {
    if (this.opts.publicUrl) return this.opts.publicUrl.replace(/\/+$/, "");
    return `https://${req.headers.host ?? `localhost:${req.socket.localPort}`}`;
  }

  issuer(baseUrl: string, tenant: string): string {
    return `${baseUrl}/${tenant}/v2.0`;
  }

  countIssued(clientId: string, grant: string): void {
    const c = this.counters.tokensIssued[clientId] ?? {};
    c[grant] = (c[grant] ?? 0) + 1;
    this.counters.tokensIssued[clientId] = c;
  }

  countError(error: string): void {
    this.counters.errors[error] = (this.counters.errors[error] ?? 0) + 1;
  }

  // --- device codes -------------------------------------------------------------------------------------------------

  newDeviceCode(app: Application, tenant: string, scope: string): DeviceCode {
    const bytes = randomBytes(9);
    const userCode = [...bytes].map((b) => USER_CODE_ALPHABET[b % USER_CODE_ALPHABET.length]).join("");
    const dc: DeviceCode = {
      deviceCode: randomBytes(32).toString("base64url"),
      userCode,
      clientId: app.clientId,
      tenant,
      scope,
      expiresAt: nowSeconds() + this.settings.deviceCodeLifetimeSeconds,
      status: "pending",
    };
    if (this.deviceCodes.size >= MAX_DEVICE_CODES) this.deviceCodes.delete(this.deviceCodes.keys().next().value!);
    this.deviceCodes.set(dc.deviceCode, dc);
    return dc;
  }

  deviceCode(deviceCode: string): DeviceCode | undefined {
    return this.deviceCodes.get(deviceCode);
  }

  deviceCodeByUserCode(userCode: string): DeviceCode | undefined {
    const want = userCode.toUpperCase();
    for (const dc of this.deviceCodes.values()) if (dc.userCode === want) return dc;
    return undefined;
  }

  listDeviceCodes(): Record<string, unknown>[] {
    const now = nowSeconds();
    return [...this.deviceCodes.values()].map((d) => ({
      userCode: d.userCode,
      clientId: d.clientId,
      tenant: d.tenant,
      scope: d.scope,
      status: d.status,
      expired: d.expiresAt <= now,
      expiresAt: new Date(d.expiresAt * 1000).toISOString(),
      user: d.user?.username,
    }));
  }

  // --- authorization codes -----------------------------------------------------------------------------------------

  newAuthorizationCode(code: Omit<AuthorizationCode, "expiresAt" | "redeemed">): string {
    // Opaque and long like Entra's (which are encrypted blobs); only this emulator reads it back.
    const value = `1.emu.${randomBytes(48).toString("base64url")}`;
    if (this.authorizationCodes.size >= MAX_AUTHORIZATION_CODES)
      this.authorizationCodes.delete(this.authorizationCodes.keys().next().value!);
    this.authorizationCodes.set(value, {
      ...code,
      expiresAt: nowSeconds() + this.settings.authorizationCodeLifetimeSeconds,
      redeemed: false,
    });
    return value;
  }

  authorizationCode(code: string): AuthorizationCode | undefined {
    return this.authorizationCodes.get(code);
  }

  // --- refresh tokens -----------------------------------------------------------------------------------------------

  newRefreshToken(clientId: string, tenant: string, user: User): string {
    const token = `0.emu.${randomBytes(48).toString("base64url")}`;
    if (this.refreshTokens.size >= MAX_REFRESH_TOKENS) this.refreshTokens.delete(this.refreshTokens.keys().next().value!);
    this.refreshTokens.set(token, {
      clientId,
      tenant,
      user,
      expiresAt: nowSeconds() + this.settings.refreshTokenLifetimeSeconds,
      revoked: false,
    });
    return token;
  }

  refreshToken(token: string): RefreshToken | undefined {
    return this.refreshTokens.get(token);
  }

  /** Revokes every refresh token, or those of one user; returns how many. */
  revokeRefreshTokens(username?: string): number {
    let n = 0;
    for (const rt of this.refreshTokens.values()) {
      if (rt.revoked) continue;
      if (username && rt.user.username.toLowerCase() !== username.toLowerCase()) continue;
      rt.revoked = true;
      n++;
    }
    return n;
  }

  // --- tokens -------------------------------------------------------------------------------------------------------

  private audience(scope: ResolvedScope): string {
    return scope.resource.audience === "uri" ? `api://${scope.resource.appId}` : scope.resource.appId;
  }

  /** An app-only token (client credentials): `roles` from the application's grant, `idtyp` app. */
  async appToken(app: Application, tenant: string, baseUrl: string, scope: ResolvedScope, azpacr: "1" | "2"): Promise<IssuedTokens> {
    const roles = app.grants[scope.resource.appId]?.roles ?? [];
    const claims: Record<string, unknown> = {
      ...this.timeClaims(),
      aud: this.audience(scope),
      iss: this.issuer(baseUrl, tenant),
      tid: tenant,
      oid: app.servicePrincipalId,
      sub: app.servicePrincipalId,
      azp: app.clientId,
      appid: app.clientId,
      azpacr,
      idtyp: "app",
      uti: randomBytes(16).toString("base64url"),
      ver: "2.0",
    };
    // Entra leaves `roles` out when none are granted (the API then refuses the caller), rather than sending [].
    if (roles.length > 0) claims.roles = roles;
    const lifetime = this.settings.tokenLifetimeSeconds;
    return { token_type: "Bearer", expires_in: lifetime, ext_expires_in: lifetime, access_token: await this.keys.sign(claims) };
  }

  /**
   * A delegated token (authorization code, device code, refresh): `scp` of the granted permissions and `roles` the
   * directory assigns the user on that API, plus id token (with the sign-in's `nonce`) and refresh token.
   */
  async userTokens(
    app: Application,
    user: User,
    tenant: string,
    baseUrl: string,
    scope: ResolvedScope,
    scp: string[],
    azpacr: "0" | "1" | "2",
    withClientInfo: boolean,
    nonce?: string,
  ): Promise<IssuedTokens> {
    const time = this.timeClaims();
    const iss = this.issuer(baseUrl, tenant);
    const roles = user.appRoles[scope.resource.appId] ?? [];
    const access = await this.keys.sign({
      ...time,
      aud: this.audience(scope),
      iss,
      tid: tenant,
      oid: user.oid,
      sub: stableSub(user.oid, app.clientId),
      name: user.displayName,
      preferred_username: user.username,
      azp: app.clientId,
      appid: app.clientId,
      azpacr,
      scp: scp.join(" "),
      // As in app tokens: left out when the user holds no role on the API, not [].
      ...(roles.length > 0 ? { roles } : {}),
      uti: randomBytes(16).toString("base64url"),
      ver: "2.0",
    });
    const lifetime = this.settings.tokenLifetimeSeconds;
    const out: IssuedTokens = {
      token_type: "Bearer",
      scope: [...scope.requested, ...scope.oidc].join(" "),
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: access,
    };
    const oidc = new Set(scope.oidc.map((s) => s.toLowerCase()));
    if (oidc.has("offline_access")) out.refresh_token = this.newRefreshToken(app.clientId, tenant, user);
    if (oidc.has("openid")) {
      out.id_token = await this.keys.sign({
        ...time,
        aud: app.clientId,
        iss,
        tid: tenant,
        oid: user.oid,
        sub: stableSub(user.oid, app.clientId),
        name: user.displayName,
        preferred_username: user.username,
        ...(nonce !== undefined ? { nonce } : {}),
        uti: randomBytes(16).toString("base64url"),
        ver: "2.0",
      });
    }
    // MSAL keys its account cache on client_info (uid.utid); without it a silent refresh finds no account.
    if (withClientInfo) out.client_info = Buffer.from(JSON.stringify({ uid: user.oid, utid: tenant })).toString("base64url");
    return out;
  }

  private timeClaims(): { iat: number; nbf: number; exp: number } {
    const now = nowSeconds();
    return { iat: now, nbf: now, exp: now + this.settings.tokenLifetimeSeconds };
  }

  reset(): void {
    this.deviceCodes.clear();
    this.refreshTokens.clear();
    this.authorizationCodes.clear();
    this.counters = newCounters();
    this.faults.clear();
  }

  state(): Record<string, unknown> {
    return {
      tenantId: this.opts.tenantId,
      settings: this.settings,
      signingKeys: this.keys.summary(),
      resources: this.directory.resources,
      applications: this.directory.applications().map((a) => ({
        clientId: a.clientId,
        displayName: a.displayName,
        publicClient: a.publicClient,
        secrets: a.secrets.length,
        certificates: a.certificates.map((c) => ({ subject: c.subject, x5t: c.x5t, "x5t#S256": c.x5tS256 })),
        grants: a.grants,
      })),
      users: this.directory.users,
      deviceCodes: this.listDeviceCodes(),
      authorizationCodes: {
        outstanding: [...this.authorizationCodes.values()].filter((c) => !c.redeemed && c.expiresAt > nowSeconds()).length,
      },
      refreshTokens: { outstanding: [...this.refreshTokens.values()].filter((r) => !r.revoked).length },
      counters: this.counters,
      faults: this.faults.get(),
    };
  }

  newCorrelationId(): string {
    return randomUUID();
  }
}

/** Entra's `sub` is pairwise: the same user has a different subject per application. */
function stableSub(oid: string, clientId: string): string {
  return Buffer.from(`${oid}:${clientId}`).toString("base64url").slice(0, 43);
}

import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError } from "../config.js";
import type { Logger } from "../logger.js";
import { apiKeyId, apiKeyMatches } from "./api-keys.js";
import type { Caller } from "./caller.js";
import { IdentitiesFileWatcher } from "./identities.js";
import { JwtVerifier, looksLikeJwt } from "./jwt.js";
import { ALL_ROLES } from "./roles.js";
import type { AuthSettings } from "./settings.js";

/** What a verified client certificate says about its holder (filled from the TLS socket by the server). */
export interface PeerCertificateIdentity {
  commonName?: string;
  dnsNames: readonly string[];
}

export const ANONYMOUS: Caller = Object.freeze({ name: "anonymous", via: "anonymous", roles: new Set([ALL_ROLES]) });

/** Largest Authorization header looked at; a JWT from a generous IdP is a few KiB. */
const MAX_CREDENTIAL_LENGTH = 16 * 1024;

/** Turns what a call presents (Authorization header, client certificate) into a Caller, or refuses it. */
export class Authenticator {
  readonly disabled: boolean;
  readonly #identities: IdentitiesFileWatcher | undefined;
  readonly #jwt: JwtVerifier | undefined;

  constructor(settings: AuthSettings, logger: Logger) {
    this.disabled = settings.AUTH_MODE === "disabled";
    if (this.disabled) {
      logger.warn("AUTH_MODE=disabled: every caller has every role. Never run this way where anyone else can reach the port.");
    }
    const jwtAsked = settings.AUTH_JWKS_URL || settings.AUTH_JWKS_FILE;
    if (jwtAsked) {
      const missing = (["AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"] as const).filter((k) => !settings[k]);
      if (missing.length > 0)
        throw new ConfigError(
          `${missing.join(", ")}: required when a JWKS is set, so tokens for other issuers or audiences are refused`,
          missing,
        );
      if (settings.AUTH_JWKS_URL && settings.AUTH_JWKS_FILE)
        throw new ConfigError("AUTH_JWKS_URL, AUTH_JWKS_FILE: set one, not both", ["AUTH_JWKS_URL", "AUTH_JWKS_FILE"]);
      // Keys fetched over plain http could be anyone's, and then anyone could sign tokens. Loopback is a local IdP.
      const jwks = settings.AUTH_JWKS_URL ? new URL(settings.AUTH_JWKS_URL) : undefined;
      if (jwks && jwks.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(jwks.hostname)) {
        throw new ConfigError("AUTH_JWKS_URL: must be https:// (plain http only on loopback)", ["AUTH_JWKS_URL"]);
      }
    }
    if (!this.disabled && !settings.AUTH_IDENTITIES_FILE && !jwtAsked) {
      throw new ConfigError(
        "AUTH_IDENTITIES_FILE: authentication is required but no credentials are configured: set AUTH_IDENTITIES_FILE (API keys, client certificates) and/or AUTH_JWKS_URL (bearer tokens), or AUTH_MODE=disabled for a local experiment",
        ["AUTH_IDENTITIES_FILE"],
      );
    }
    this.#identities = settings.AUTH_IDENTITIES_FILE ? new IdentitiesFileWatcher(settings.AUTH_IDENTITIES_FILE, logger) : undefined;
    this.#jwt = jwtAsked
      ? new JwtVerifier({
          ...(settings.AUTH_JWKS_URL ? { jwksUrl: settings.AUTH_JWKS_URL } : {}),
          ...(settings.AUTH_JWKS_FILE ? { jwksFile: settings.AUTH_JWKS_FILE } : {}),
          issuer: settings.AUTH_JWT_ISSUER!,
          audience: settings.AUTH_JWT_AUDIENCE!,
          rolesClaim: settings.AUTH_JWT_ROLES_CLAIM,
        })
      : undefined;
    if (!this.disabled) {
      const identities = this.#identities?.current;
      logger.info(
        {
          apiKeys: identities?.apiKeys.size ?? 0,
          clientCertificates: identities?.certificates.size ?? 0,
          jwt: this.#jwt ? { issuer: settings.AUTH_JWT_ISSUER, audience: settings.AUTH_JWT_AUDIENCE } : false,
        },
        "authentication required",
      );
    }
  }

  /** The caller, or an unauthenticated (or, when the JWKS cannot be fetched, unavailable) ConnectError. */
  async authenticate(authorization: string | null, peer: PeerCertificateIdentity | undefined): Promise<Caller> {
    if (this.disabled) return ANONYMOUS;
    if (authorization) return this.#bearer(authorization);
    if (peer) {
      const certificate = this.#certificate(peer);
      if (certificate) return certificate;
      throw new ConnectError(`client certificate (CN ${peer.commonName ?? "none"}) is not a known identity`, Code.Unauthenticated);
    }
    throw new ConnectError("no credentials: send `authorization: Bearer <API key or token>`", Code.Unauthenticated);
  }

  close(): void {
    this.#identities?.close();
  }

  async #bearer(header: string): Promise<Caller> {
    if (header.length > MAX_CREDENTIAL_LENGTH) throw new ConnectError("authorization header too long", Code.Unauthenticated);
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) throw new ConnectError("authorization header must be `Bearer <API key or token>`", Code.Unauthenticated);
    const token = match[1]!;
    const id = apiKeyId(token);
    if (id !== undefined) return this.#apiKey(id, token);
    if (looksLikeJwt(token)) {
      if (!this.#jwt)
        throw new ConnectError("bearer tokens are not accepted here (no JWKS configured); use an API key", Code.Unauthenticated);
      return this.#jwt.verify(token);
    }
    throw new ConnectError("bearer credential is neither a Meridian API key (mrd_...) nor a JWT", Code.Unauthenticated);
  }

  #apiKey(id: string, key: string): Caller {
    const known = this.#identities?.current.apiKeys.get(id);
    // One message for an unknown id and a wrong secret: the caller learns nothing about which ids exist.
    if (!known || !apiKeyMatches(key, known.sha256)) throw new ConnectError(`API key ${id} not recognised`, Code.Unauthenticated);
    if (known.expiresAt !== undefined && Date.now() >= known.expiresAt) {
      throw new ConnectError(`API key ${id} expired at ${new Date(known.expiresAt).toISOString()}`, Code.Unauthenticated);
    }
    return { name: known.name, via: "api-key", roles: known.roles };
  }

  #certificate(peer: PeerCertificateIdentity): Caller | undefined {
    const certificates = this.#identities?.current.certificates;
    if (!certificates) return undefined;
    for (const candidate of [peer.commonName, ...peer.dnsNames]) {
      const known = candidate ? certificates.get(candidate.toLowerCase()) : undefined;
      if (known) return { name: known.name, via: "certificate", roles: known.roles };
    }
    return undefined;
  }
}

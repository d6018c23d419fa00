import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from "jose";
import { ConfigError } from "../config.js";
import type { Caller } from "./caller.js";

/**
 * Asymmetric algorithms only: an HMAC secret would have to be shared with every service, and "none" is never a
 * signature. jose refuses anything not listed before it looks at a key.
 */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

export interface JwtSettings {
  jwksUrl?: string;
  jwksFile?: string;
  issuer: string;
  audience: string;
  rolesClaim: string;
}

/** A token looks like a JWS compact serialisation: three base64url parts. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token);
}

/** Verifies OIDC / OAuth 2 access tokens against the issuer's JWKS and reads the caller's roles from one claim. */
export class JwtVerifier {
  readonly #keys: JWTVerifyGetKey;

  constructor(private readonly settings: JwtSettings) {
    if (settings.jwksFile) {
      let jwks: unknown;
      try {
        jwks = JSON.parse(readFileSync(settings.jwksFile, "utf8"));
      } catch (err) {
        throw new ConfigError(`AUTH_JWKS_FILE: cannot read a JWKS from ${settings.jwksFile}: ${(err as Error).message}`, [
          "AUTH_JWKS_FILE",
        ]);
      }
      this.#keys = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    } else if (settings.jwksUrl) {
      // jose caches the set, refetches on an unknown key id (at most every 30 s) and bounds each fetch.
      this.#keys = createRemoteJWKSet(new URL(settings.jwksUrl), {
        timeoutDuration: 5_000,
        cooldownDuration: 30_000,
        cacheMaxAge: 600_000,
      });
    } else {
      throw new ConfigError("AUTH_JWT_*: a JWKS is needed: set AUTH_JWKS_URL or AUTH_JWKS_FILE", ["AUTH_JWKS_URL"]);
    }
  }

  async verify(token: string): Promise<Caller> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: ALGORITHMS,
        clockTolerance: 30,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWKSTimeout || (err instanceof TypeError && !(err instanceof joseErrors.JOSEError))) {
        throw new ConnectError("cannot fetch the token issuer's keys (JWKS) to verify the token; try again", Code.Unavailable);
      }
      // jose's messages name the check that failed ("signature verification failed", '"exp" claim timestamp check
      // failed', '"aud" claim check failed'); they hold no secret.
      const reason = err instanceof joseErrors.JOSEError ? err.message : "malformed token";
      throw new ConnectError(`bearer token refused: ${reason}`, Code.Unauthenticated);
    }
    return { name: String(payload.sub), via: "jwt", roles: new Set(rolesFrom(payload[this.settings.rolesClaim])) };
  }
}

/** A roles claim is a list ("roles", Entra app roles) or a space-separated string (OAuth 2 "scope"). */
function rolesFrom(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((r): r is string => typeof r === "string");
  if (typeof claim === "string") return claim.split(" ").filter(Boolean);
  return [];
}

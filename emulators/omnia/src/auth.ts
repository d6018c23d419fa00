/**
 * Bearer tokens as the API's gateway checks them: a JWT signed by a key of the identity provider's JWKS (found
 * through its OpenID metadata, or given directly), from an accepted issuer, for the API's resource (the bare GUID or
 * `api://GUID`), not expired. `mode: "none"` accepts any bearer token, for tests that are not about auth.
 * Keys are fetched on first use and again when a token names a key id the cached set lacks (at most every
 * `keyRefreshCooldownMs`, so a flood of tokens with made-up key ids does not become a flood of fetches).
 */

import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { createLocalJWKSet, decodeJwt, errors, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose";
import { ApiError } from "./errors.js";

export interface AuthOptions {
  /** `verify` (default): signature, issuer, audience, lifetime. `none`: any bearer token is accepted. */
  mode?: "verify" | "none";
  /** OpenID authority; the metadata is at `<authority>/.well-known/openid-configuration`. */
  authority?: string;
  /** The JWKS location, instead of the authority's metadata. */
  jwksUri?: string;
  /** Accepted `iss` values; default the metadata's issuer (any issuer when only jwksUri is given). */
  issuers?: string[];
  /** Accepted `aud` values. */
  audiences?: string[];
  /** CA (PEM) trusted when fetching the metadata and keys over https. */
  caPem?: string;
  /** When set, the token's `roles` (or `scp`) must hold it, else 403. */
  requiredRole?: string;
  clockToleranceSeconds?: number;
  /** Least time between two key fetches caused by an unknown key id (a rotation). Default 5000. */
  keyRefreshCooldownMs?: number;
}

export interface Principal {
  /** oid, else sub, else appid: who the history and subscriptions name. */
  subject: string;
  roles: string[];
  claims: JWTPayload;
}

export const UNAUTHORIZED_MESSAGE = "Unauthorized. Access token is missing or invalid.";
const REFRESH_COOLDOWN_MS = 5000;

export class Authenticator {
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private issuers: string[] | undefined;
  private fetchedAt = 0;
  /** The last failure to fetch metadata or keys, for the state document. */
  lastKeyError: string | undefined;
  refusals = 0;

  constructor(readonly options: AuthOptions) {
    this.issuers = options.issuers;
    if ((options.mode ?? "verify") === "verify" && !options.authority && !options.jwksUri)
      throw new Error("auth: mode verify needs an authority or a jwksUri");
  }

  get mode(): "verify" | "none" {
    return this.options.mode ?? "verify";
  }

  /** The caller, or an ApiError 401/403 with the gateway's message. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!m) throw this.refuse("no bearer token");
    const token = m[1]!;
    let claims: JWTPayload;
    if (this.mode === "none") {
      try {
        claims = decodeJwt(token);
      } catch {
        claims = {};
      }
    } else {
      claims = await this.verify(token);
    }
    const roles = [
      ...(Array.isArray(claims.roles) ? (claims.roles as unknown[]).map(String) : []),
      ...(typeof claims.scp === "string" ? claims.scp.split(" ") : []),
    ];
    if (this.options.requiredRole && this.mode === "verify" && !roles.includes(this.options.requiredRole)) {
      this.refusals++;
      throw new ApiError(403, `Forbidden. The caller lacks the role ${this.options.requiredRole}.`);
    }
    const subject = String(claims.oid ?? claims.sub ?? claims.appid ?? claims.azp ?? "anonymous");
    return { subject, roles, claims };
  }

  private refuse(_why: string): ApiError {
    this.refusals++;
    return new ApiError(401, UNAUTHORIZED_MESSAGE, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
  }

  private async verify(token: string): Promise<JWTPayload> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const keys = await this.loadKeys(attempt > 0);
      if (!keys) throw this.refuse("keys unavailable");
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: this.issuers,
          audience: this.options.audiences,
          clockTolerance: this.options.clockToleranceSeconds ?? 60,
          requiredClaims: ["exp"],
        });
        return payload;
      } catch (err) {
        // A key id the cached set lacks: the provider may have rotated; fetch once more.
        if (
          err instanceof errors.JWKSNoMatchingKey &&
          attempt === 0 &&
          Date.now() - this.fetchedAt >= (this.options.keyRefreshCooldownMs ?? REFRESH_COOLDOWN_MS)
        )
          continue;
        throw this.refuse((err as Error).message);
      }
    }
    throw this.refuse("no matching key");
  }

  private async loadKeys(force: boolean): Promise<ReturnType<typeof createLocalJWKSet> | undefined> {
    if (this.keys && !force) return this.keys;
    try {
      let jwksUri = this.options.jwksUri;
      if (!jwksUri) {
        const authority = this.options.authority!.replace(/\/+$/, "");
        const meta = (await getJson(`${authority}/.well-known/openid-configuration`, this.options.caPem)) as {
          jwks_uri?: string;
          issuer?: string;
        };
        if (!meta.jwks_uri) throw new Error("metadata has no jwks_uri");
        jwksUri = meta.jwks_uri;
        if (!this.options.issuers && meta.issuer) this.issuers = [meta.issuer];
      }
      const jwks = (await getJson(jwksUri, this.options.caPem)) as JSONWebKeySet;
      this.keys = createLocalJWKSet(jwks);
      this.fetchedAt = Date.now();
      this.lastKeyError = undefined;
    } catch (err) {
      this.lastKeyError = (err as Error).message;
      this.fetchedAt = Date.now();
    }
    return this.keys;
  }
}

const MAX_KEY_DOCUMENT = 1024 * 1024;

/** GET a JSON document (metadata, JWKS) over https trusting `ca`, or over http (tests, loopback). */
function getJson(url: string, ca: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const send = u.protocol === "https:" ? request : httpRequest;
    const req = send(u, { method: "GET", headers: { accept: "application/json" }, ...(ca ? { ca } : {}), timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_KEY_DOCUMENT) req.destroy(new Error(`${url}: document larger than ${MAX_KEY_DOCUMENT} bytes`));
        else chunks.push(c);
      });
      res.on("end", () => {
        if ((res.statusCode ?? 0) >= 300) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch {
          reject(new Error(`${url}: not JSON`));
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

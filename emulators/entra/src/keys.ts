/**
 * The signing keys behind the JWKS: RSA 2048, RS256, each with a `kid`. Rotation makes a new key the signer and keeps
 * the previous ones published (as Entra does during a rollover) until they are dropped, so a verifier that caches
 * the JWKS can be tested both ways: a token with an unknown `kid` (refetch) and one whose key was withdrawn.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, type JWK, SignJWT } from "jose";

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: JWK;
  createdAt: string;
}

/** Most keys kept published; older ones fall out at rotation. */
const MAX_KEYS = 5;

export class SigningKeys {
  private keys: SigningKey[] = [];

  static async create(): Promise<SigningKeys> {
    const k = new SigningKeys();
    await k.rotate();
    return k;
  }

  get current(): SigningKey {
    return this.keys[0]!;
  }

  /** A new signer; the previous keys stay in the JWKS unless `dropPrevious`. Returns the new kid. */
  async rotate(dropPrevious = false): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pub = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(pub);
    const key: SigningKey = { kid, privateKey, jwk: { ...pub, kid, use: "sig", alg: "RS256" }, createdAt: new Date().toISOString() };
    this.keys = dropPrevious ? [key] : [key, ...this.keys].slice(0, MAX_KEYS);
    return kid;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.jwk) };
  }

  summary(): { kid: string; createdAt: string; signing: boolean }[] {
    return this.keys.map((k, i) => ({ kid: k.kid, createdAt: k.createdAt, signing: i === 0 }));
  }

  async sign(claims: Record<string, unknown>, typ = "JWT"): Promise<string> {
    const k = this.current;
    return new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ, kid: k.kid }).sign(k.privateKey);
  }
}

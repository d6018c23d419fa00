import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Meridian API keys: `mrd_<id>_<secret>`, a 12-hex-digit id (names the key in logs and in the identities file) and
 * 32 random bytes in base64url. Only the SHA-256 of the whole key is stored: the secret has 256 bits of entropy, so a
 * fast hash is enough (a slow one is for low-entropy passwords), and the lookup by id keeps a check to one compare.
 */
const PREFIX = "mrd_";
const ID_LENGTH = 12;
const KEY_PATTERN = /^mrd_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface NewApiKey {
  id: string;
  /** The key to hand to the caller, once; never stored. */
  key: string;
  /** What the identities file stores. */
  sha256: string;
}

export function newApiKey(): NewApiKey {
  const id = randomBytes(ID_LENGTH / 2).toString("hex");
  const key = `${PREFIX}${id}_${randomBytes(32).toString("base64url")}`;
  return { id, key, sha256: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** The id of a well-formed key, or undefined: anything else is not an API key at all. */
export function apiKeyId(presented: string): string | undefined {
  return KEY_PATTERN.exec(presented)?.[1];
}

/** Constant-time comparison of a presented key with a stored hash. */
export function apiKeyMatches(presented: string, storedSha256: string): boolean {
  const a = Buffer.from(hashApiKey(presented), "hex");
  const b = Buffer.from(storedSha256, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

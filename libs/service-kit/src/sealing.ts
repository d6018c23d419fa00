import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { z } from "zod";

/**
 * Secrets at rest (in KV): AES-256-GCM under a service's credentials key, with the secret's purpose and everything
 * that decides where it may be used as associated data. Anyone who can write the bucket can change a record, but not
 * a sealed secret's associated data: a record whose bound fields changed no longer opens, so the secret is never used
 * for the new place. One implementation for every service, so that each binds the same way and rotates the same way.
 */

/** A sealed secret as stored: `v` 2, the id of the key that sealed it, base64 iv / tag / ciphertext. */
export interface SealedSecret {
  alg: "A256GCM";
  v: 2;
  /** The id of the key that sealed it (a digest, see SecretKeyring): rotation picks the key by it. */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

/** What a field of the associated data may be; JSON gives each exactly one form, so equal bindings give equal bytes. */
export type SecretBindingField = string | boolean | number;

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export function isSealedSecret(x: unknown): x is SealedSecret {
  if (typeof x !== "object" || x === null) return false;
  const s = x as Record<string, unknown>;
  return (
    s["alg"] === "A256GCM" &&
    s["v"] === 2 &&
    typeof s["kid"] === "string" &&
    typeof s["iv"] === "string" &&
    typeof s["tag"] === "string" &&
    typeof s["data"] === "string"
  );
}

/**
 * Why a sealed secret did not open. `unknown_key`: sealed under a key this keyring does not hold (a key rotated out
 * too early, or a record from another deployment). `binding_mismatch`: the key is held, yet the secret does not
 * open for this purpose and binding; GCM cannot tell a changed bound field from a tampered ciphertext, tag or iv, and
 * both mean the same: do not use it. The message names the key id and the reason, never the secret or a key.
 */
export class SecretOpenError extends Error {
  constructor(
    readonly reason: "unknown_key" | "binding_mismatch",
    readonly kid: string,
  ) {
    super(
      reason === "unknown_key"
        ? `the secret was sealed with key ${kid}, which is not one of this keyring's keys`
        : `the secret sealed with key ${kid} does not open for this purpose and binding`,
    );
    this.name = "SecretOpenError";
  }
}

export interface SecretKeyringOptions {
  /** Seals, and opens what it sealed. 32 bytes. */
  current: Buffer;
  /** Open only, during a rotation (32 bytes each). */
  previous?: readonly Buffer[] | undefined;
  /**
   * Label the key ids are digested under. A service's own and never changed: records name their key by this id, so
   * another label makes every stored record's key unknown.
   */
  keyIdLabel: string;
}

/**
 * The current key seals; it and the previous keys open, chosen by the record's `kid`, so a key can be rotated: records
 * sealed with a previous key keep opening, are `isStale`, and the service seals them again under the current key.
 *
 * A key's id is a digest of the key under the service's label (16 hex digits): records name the key that sealed them
 * without the operator naming keys, and nothing about the key can be learnt from the id.
 */
export class SecretKeyring {
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();
  private readonly keyIdLabel: string;

  constructor(options: SecretKeyringOptions) {
    const previous = options.previous ?? [];
    if (typeof options.keyIdLabel !== "string" || options.keyIdLabel.length === 0)
      throw new TypeError("SecretKeyring: keyIdLabel must be a non-empty string");
    [options.current, ...previous].forEach((k, i) => {
      if (!Buffer.isBuffer(k) || k.length !== KEY_BYTES)
        throw new RangeError(`SecretKeyring: ${i === 0 ? "the current key" : `previous key ${i}`} must be ${KEY_BYTES} bytes`);
    });
    this.keyIdLabel = options.keyIdLabel;
    this.currentKeyId = this.keyId(options.current);
    this.keys.set(this.currentKeyId, options.current);
    for (const k of previous) {
      const id = this.keyId(k);
      if (!this.keys.has(id)) this.keys.set(id, k);
    }
  }

  /** Seals under the current key, a fresh random iv each time. */
  seal(purpose: string, binding: readonly SecretBindingField[], plaintext: string): SealedSecret {
    const aad = associatedData(purpose, this.currentKeyId, binding);
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv("aes-256-gcm", this.keys.get(this.currentKeyId)!, iv, { authTagLength: TAG_BYTES });
    c.setAAD(aad);
    const data = Buffer.concat([c.update(plaintext, "utf8"), c.final()]);
    return {
      alg: "A256GCM",
      v: 2,
      kid: this.currentKeyId,
      iv: iv.toString("base64"),
      tag: c.getAuthTag().toString("base64"),
      data: data.toString("base64"),
    };
  }

  /**
   * The plaintext, when `sealed` was sealed for exactly this purpose and binding under one of the keys; SecretOpenError
   * otherwise. A tag shorter than 16 bytes is refused (GCM would accept one down to 4 bytes, far easier to forge).
   */
  open(purpose: string, binding: readonly SecretBindingField[], sealed: SealedSecret): string {
    const aad = associatedData(purpose, sealed.kid, binding);
    const key = this.keys.get(sealed.kid);
    if (!key) throw new SecretOpenError("unknown_key", sealed.kid);
    try {
      const iv = Buffer.from(sealed.iv, "base64");
      const tag = Buffer.from(sealed.tag, "base64");
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error("iv or tag of the wrong length");
      const d = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      d.setAAD(aad);
      d.setAuthTag(tag);
      return Buffer.concat([d.update(Buffer.from(sealed.data, "base64")), d.final()]).toString("utf8");
    } catch {
      throw new SecretOpenError("binding_mismatch", sealed.kid);
    }
  }

  /** True when the record was sealed with another key than the current one and should be sealed again. */
  isStale(sealed: SealedSecret): boolean {
    return sealed.kid !== this.currentKeyId;
  }

  private keyId(key: Buffer): string {
    return createHash("sha256").update(this.keyIdLabel).update(key).digest("hex").slice(0, 16);
  }
}

/**
 * The associated data: a JSON array in a fixed order, `[purpose, 2, kid, ...binding]`. Callers give every field (empty
 * when unset), so that two bindings give the same bytes exactly when they are the same.
 */
function associatedData(purpose: string, kid: string, binding: readonly SecretBindingField[]): Buffer {
  if (typeof purpose !== "string" || purpose.length === 0) throw new TypeError("sealing: the purpose must be a non-empty string");
  binding.forEach((f, i) => {
    const ok = typeof f === "string" || typeof f === "boolean" || (typeof f === "number" && Number.isFinite(f));
    // JSON would write NaN, Infinity and undefined as null: two different bindings with the same bytes.
    if (!ok) throw new TypeError(`sealing: binding[${i}] must be a string, a boolean or a finite number`);
  });
  return Buffer.from(JSON.stringify([purpose, 2, kid, ...binding]), "utf8");
}

/**
 * The key docker-compose.yml sets so that the quick start can store credentials. It is published in this repository,
 * so it protects nothing: a service warns at start when it runs with it.
 */
export const DEVELOPMENT_CREDENTIALS_KEY = "bWVyaWRpYW4tZGV2LW9ubHkta2V5LW5vdC1zZWNyZXQ=";

export function isDevelopmentKey(key: Buffer): boolean {
  return key.equals(Buffer.from(DEVELOPMENT_CREDENTIALS_KEY, "base64"));
}

const MAX_PREVIOUS_KEYS = 8;
/** Standard or url-safe base64, padded or not; Buffer.from would skip any other character silently. */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function decodeKey(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  const bytes = Buffer.from(s, "base64");
  return bytes.length === KEY_BYTES ? bytes : undefined;
}

/** AES-256 key: 32 bytes, base64. Optional: without it the service stores no credentials. Never echoed. */
function credentialsKey() {
  return z
    .string()
    .optional()
    .transform((s, ctx): Buffer | undefined => {
      // Only unset is "no key": an empty value (an empty key file) is a mistake to report, not a way to turn sealing off.
      if (s === undefined) return undefined;
      const key = decodeKey(s.trim());
      if (!key) {
        ctx.addIssue({ code: "custom", message: "must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)" });
        return z.NEVER;
      }
      return key;
    });
}

/** Earlier keys (comma- or space-separated, at most 8), so records they sealed still open while being sealed again. */
function previousCredentialsKeys() {
  return z
    .string()
    .default("")
    .transform((s, ctx): Buffer[] => {
      const items = s
        .split(/[\s,]+/)
        .map((x) => x.trim())
        .filter(Boolean);
      if (items.length > MAX_PREVIOUS_KEYS) {
        ctx.addIssue({ code: "custom", message: `at most ${MAX_PREVIOUS_KEYS} keys` });
        return z.NEVER;
      }
      const keys: Buffer[] = [];
      items.forEach((item, i) => {
        const key = decodeKey(item);
        if (!key) ctx.addIssue({ code: "custom", message: `key ${i + 1}: must be 32 bytes, base64-encoded` });
        else keys.push(key);
      });
      return keys;
    });
}

export type CredentialsKeySettings<P extends string> = { [K in `${P}_CREDENTIALS_KEY`]: ReturnType<typeof credentialsKey> } & {
  [K in `${P}_CREDENTIALS_PREVIOUS_KEYS`]: ReturnType<typeof previousCredentialsKeys>;
};

/**
 * The zod shape of `<PREFIX>_CREDENTIALS_KEY` (optional, a Buffer of 32 bytes) and `<PREFIX>_CREDENTIALS_PREVIOUS_KEYS`
 * (Buffer[], at most 8), to spread into a service's settings. An error names the setting (and which previous key),
 * never the value. `<PREFIX>_CREDENTIALS_PREVIOUS_KEYS` without the current key is the service's to refuse.
 */
export function credentialsKeySettings<P extends string>(prefix: P): CredentialsKeySettings<P> {
  if (!/^[A-Z][A-Z0-9_]{0,31}$/.test(prefix))
    throw new TypeError(`credentialsKeySettings: "${prefix}" is not an upper-case setting prefix`);
  return {
    [`${prefix}_CREDENTIALS_KEY`]: credentialsKey(),
    [`${prefix}_CREDENTIALS_PREVIOUS_KEYS`]: previousCredentialsKeys(),
  } as CredentialsKeySettings<P>;
}

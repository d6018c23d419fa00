import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/**
 * Endpoint credentials at rest: AES-256-GCM under OMF_CREDENTIALS_KEY, with everything that decides where the
 * credential goes as associated data. Anyone who can write the KV bucket can change a record, but not the sealed
 * secret's associated data: a record re-pointed (URL, token URL, kind, user, TLS) no longer opens, so the credential
 * is never sent to the new place.
 */

/** A credential problem the operator must fix (no key, a secret that does not open for the endpoint, a bad reference). */
export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsError";
  }
}

/** What a sealed secret is bound to: the endpoint's identity and everything that decides where its credential is sent. */
export interface SecretBinding {
  id: string;
  kind: string;
  url: string;
  tokenUrl?: string | undefined;
  /** PI: the Basic-auth user. */
  username?: string | undefined;
  /** ADH: the OAuth client the secret belongs to. */
  clientId?: string | undefined;
  /** false when TLS verification is off. */
  verifySsl?: boolean | undefined;
  caPemPath?: string | undefined;
  allowHttp?: boolean | undefined;
}

/** Sealed by this version: `v` 2, the key's id, AAD over the binding. */
export interface SealedSecret {
  alg: "A256GCM";
  v: 2;
  /** keyId() of the key that sealed it. */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

/**
 * Sealed before the binding existed: the associated data was `omf-endpoint:<id>` alone. Never opened (see
 * CredentialKeyring.open): nothing in such a record shows that its URL is still the one the secret was given for.
 */
export interface LegacySealedSecret {
  alg: "A256GCM";
  v?: undefined;
  iv: string;
  tag: string;
  data: string;
}

export function isSealed(secret: unknown): secret is SealedSecret | LegacySealedSecret {
  return typeof secret === "object" && secret !== null && (secret as { alg?: unknown }).alg === "A256GCM";
}

export function isLegacySealed(secret: SealedSecret | LegacySealedSecret): secret is LegacySealedSecret {
  return (secret as { v?: unknown }).v !== 2;
}

/**
 * A key's id: a digest of the key under a label of its own, so records name the key that sealed them (rotation picks
 * it) without the operator naming keys, and nothing about the key can be learnt from it.
 */
export function keyId(key: Buffer): string {
  return createHash("sha256").update("meridian omf-sender credentials key id\0").update(key).digest("hex").slice(0, 16);
}

/**
 * The associated data: a JSON array in a fixed order, every field present (empty when unset), so that two bindings
 * give the same bytes exactly when they are the same.
 */
function associatedData(kid: string, b: SecretBinding): Buffer {
  return Buffer.from(
    JSON.stringify([
      "meridian.omf-endpoint",
      2,
      kid,
      b.id,
      b.kind,
      b.url,
      b.tokenUrl ?? "",
      b.username ?? "",
      b.clientId ?? "",
      b.verifySsl !== false,
      b.caPemPath ?? "",
      b.allowHttp === true,
    ]),
    "utf8",
  );
}

export function sameBinding(a: SecretBinding, b: SecretBinding): boolean {
  return associatedData("", a).equals(associatedData("", b));
}

/**
 * OMF_CREDENTIALS_KEY seals; it and OMF_CREDENTIALS_PREVIOUS_KEYS open (by the record's key id), so a key can be
 * rotated: records sealed with the previous key keep working and are sealed again under the new one when written.
 */
export class CredentialKeyring {
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    for (const k of [current, ...previous]) if (k.length !== 32) throw new Error("credentials keys must be 32 bytes");
    this.currentKeyId = keyId(current);
    this.keys.set(this.currentKeyId, current);
    for (const k of previous) if (!this.keys.has(keyId(k))) this.keys.set(keyId(k), k);
  }

  seal(binding: SecretBinding, plaintext: string): SealedSecret {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.keys.get(this.currentKeyId)!, iv);
    c.setAAD(associatedData(this.currentKeyId, binding));
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
   * The plaintext, when `sealed` was sealed for exactly this binding under one of the keys; CredentialsError otherwise,
   * saying which of the three it is (old format, unknown key, binding or key wrong). The messages name no setting's
   * value, no path and no part of the secret.
   *
   * A record in the old format (associated data `omf-endpoint:<id>` only) is refused, not migrated: it cannot show that
   * its URL is the one its secret was given for (that is the hole this binding closes), so migrating it would bind
   * the secret to whatever URL the record holds when omf-sender first reads it, a re-pointed one included. Endpoints
   * of the endpoints file are sealed again from the file at start; one created through the API needs its secret given
   * again (UpdateEndpoint).
   */
  open(binding: SecretBinding, sealed: SealedSecret | LegacySealedSecret): string {
    if (isLegacySealed(sealed))
      throw new CredentialsError(
        `endpoint "${binding.id}": its secret was sealed by an earlier omf-sender, bound to the endpoint id alone, and is refused ` +
          "(it cannot show the endpoint was not re-pointed); give the secret again (UpdateEndpoint, or the endpoints file)",
      );
    const key = this.keys.get(sealed.kid);
    if (!key)
      throw new CredentialsError(
        `endpoint "${binding.id}": its secret was sealed with key ${sealed.kid}, which is neither OMF_CREDENTIALS_KEY nor one of OMF_CREDENTIALS_PREVIOUS_KEYS`,
      );
    try {
      const d = createDecipheriv("aes-256-gcm", key, Buffer.from(sealed.iv, "base64"));
      d.setAAD(associatedData(sealed.kid, binding));
      d.setAuthTag(Buffer.from(sealed.tag, "base64"));
      return Buffer.concat([d.update(Buffer.from(sealed.data, "base64")), d.final()]).toString("utf8");
    } catch {
      throw new CredentialsError(
        `endpoint "${binding.id}": its secret does not open for the endpoint's kind, URL, token URL, user and TLS settings ` +
          "(changed other than through the API?); no credentials are sent until the secret is given again",
      );
    }
  }

  /** True when the record was sealed with a previous key (or in the old format) and should be sealed again. */
  isStale(sealed: SealedSecret | LegacySealedSecret): boolean {
    return isLegacySealed(sealed) || sealed.kid !== this.currentKeyId;
  }
}

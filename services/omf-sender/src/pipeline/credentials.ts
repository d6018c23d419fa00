import { isSealedSecret, type SealedSecret, SecretKeyring, SecretOpenError } from "@meridian/service-kit";

/**
 * Endpoint credentials at rest: sealed by service-kit's SecretKeyring (AES-256-GCM) under OMF_CREDENTIALS_KEY, with
 * everything that decides where the credential goes as associated data. What is omf-sender's own is here: the
 * purpose, the binding's fields and their order, the messages, and the refusal of the old format. Anyone who can
 * write the KV bucket can change a record, but not the sealed secret's associated data: a record re-pointed (URL,
 * token URL, kind, user, TLS) no longer opens, so the credential is never sent to the new place.
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

/** Sealed by this version: `v` 2, the key's id, AAD over the binding (the format of @meridian/service-kit's SecretKeyring). */
export type { SealedSecret };

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
 * Never changed: records in KV name their key by its digest under this label (and under no other), and the purpose
 * and field order below are the bytes their associated data was sealed with.
 */
const KEY_ID_LABEL = "meridian omf-sender credentials key id\0";
const PURPOSE = "meridian.omf-endpoint";

/** The binding's fields in a fixed order, every one present (empty when unset). */
function bindingFields(b: SecretBinding): (string | boolean)[] {
  return [
    b.id,
    b.kind,
    b.url,
    b.tokenUrl ?? "",
    b.username ?? "",
    b.clientId ?? "",
    b.verifySsl !== false,
    b.caPemPath ?? "",
    b.allowHttp === true,
  ];
}

export function sameBinding(a: SecretBinding, b: SecretBinding): boolean {
  return JSON.stringify(bindingFields(a)) === JSON.stringify(bindingFields(b));
}

/**
 * OMF_CREDENTIALS_KEY seals; it and OMF_CREDENTIALS_PREVIOUS_KEYS open (by the record's key id), so a key can be
 * rotated: records sealed with the previous key keep working and are sealed again under the new one when written.
 */
export class CredentialKeyring {
  private readonly keyring: SecretKeyring;

  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    this.keyring = new SecretKeyring({ current, previous, keyIdLabel: KEY_ID_LABEL });
  }

  get currentKeyId(): string {
    return this.keyring.currentKeyId;
  }

  seal(binding: SecretBinding, plaintext: string): SealedSecret {
    return this.keyring.seal(PURPOSE, bindingFields(binding), plaintext);
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
    if (!isSealedSecret(sealed)) throw new CredentialsError(`endpoint "${binding.id}": the stored secret is in no known form`);
    try {
      return this.keyring.open(PURPOSE, bindingFields(binding), sealed);
    } catch (err) {
      if (!(err instanceof SecretOpenError)) throw err;
      if (err.reason === "unknown_key")
        throw new CredentialsError(
          `endpoint "${binding.id}": its secret was sealed with key ${err.kid}, which is neither OMF_CREDENTIALS_KEY nor one of OMF_CREDENTIALS_PREVIOUS_KEYS`,
        );
      throw new CredentialsError(
        `endpoint "${binding.id}": its secret does not open for the endpoint's kind, URL, token URL, user and TLS settings ` +
          "(changed other than through the API?); no credentials are sent until the secret is given again",
      );
    }
  }

  /** True when the record was sealed with a previous key (or in the old format) and should be sealed again. */
  isStale(sealed: SealedSecret | LegacySealedSecret): boolean {
    return isLegacySealed(sealed) || this.keyring.isStale(sealed);
  }
}

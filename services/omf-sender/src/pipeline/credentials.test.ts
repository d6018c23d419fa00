import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CredentialKeyring, CredentialsError, type SealedSecret, type SecretBinding } from "./credentials.js";

const keyId = (key: Buffer) => new CredentialKeyring(key).currentKeyId;

const PI: SecretBinding = { id: "pi", kind: "pi", url: "https://pi.plant.local/piwebapi", username: "meridian" };

describe("CredentialKeyring (AES-256-GCM bound to where the credential goes)", () => {
  it("round-trips, never stores the plaintext, and names the key that sealed it", () => {
    const key = randomBytes(32);
    const k = new CredentialKeyring(key);
    const sealed = k.seal(PI, "pw-123");
    expect(JSON.stringify(sealed)).not.toContain("pw-123");
    expect(sealed).toMatchObject({ alg: "A256GCM", v: 2, kid: keyId(key) });
    expect(k.open(PI, sealed)).toBe("pw-123");
    expect(k.seal(PI, "pw-123").iv).not.toBe(sealed.iv);
    expect(() => k.open(PI, { ...sealed, data: Buffer.from("x").toString("base64") })).toThrow(CredentialsError);
  });

  it.each([
    ["id", { id: "other" }],
    ["kind", { kind: "adh" }],
    ["url", { url: "https://attacker.example/piwebapi" }],
    ["url (a trailing slash)", { url: "https://pi.plant.local/piwebapi/" }],
    ["token URL", { tokenUrl: "https://attacker.example/token" }],
    ["user name", { username: "admin" }],
    ["client id", { clientId: "other-client" }],
    ["TLS verification off", { verifySsl: false }],
    ["CA bundle", { caPemPath: "/etc/meridian/omf-ca/evil.pem" }],
    ["plain http allowed", { allowHttp: true }],
  ])("a secret does not open once the endpoint's %s changed", (_, change) => {
    const k = new CredentialKeyring(randomBytes(32));
    const sealed = k.seal(PI, "pw");
    const err = (() => {
      try {
        k.open({ ...PI, ...change }, sealed);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err?.message).toMatch(/does not open for the endpoint's kind, URL, token URL, user and TLS settings/);
    expect(err?.message).not.toContain("pw");
  });

  it("the key id differs per key and shows no part of the key", () => {
    const key = randomBytes(32);
    expect(keyId(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyId(key)).not.toBe(keyId(randomBytes(32)));
    expect(key.toString("hex")).not.toContain(keyId(key));
  });

  it("rotation: a record sealed with a previous key opens and is stale; the current key seals; a forgotten key is named", () => {
    const old = randomBytes(32);
    const current = randomBytes(32);
    const sealedOld = new CredentialKeyring(old).seal(PI, "pw-old");
    const rotated = new CredentialKeyring(current, [old]);
    expect(rotated.open(PI, sealedOld)).toBe("pw-old");
    expect(rotated.isStale(sealedOld)).toBe(true);
    const resealed = rotated.seal(PI, "pw-old");
    expect(resealed.kid).toBe(keyId(current));
    expect(rotated.isStale(resealed)).toBe(false);
    expect(() => new CredentialKeyring(current).open(PI, sealedOld)).toThrow(
      new RegExp(`sealed with key ${keyId(old)}, which is neither OMF_CREDENTIALS_KEY nor one of OMF_CREDENTIALS_PREVIOUS_KEYS`),
    );
  });

  it("a v2 record missing its key id is in no known form, not taken for an old-format one", () => {
    const k = new CredentialKeyring(randomBytes(32));
    const { kid: _, ...noKid } = k.seal(PI, "pw");
    expect(() => k.open(PI, noKid as unknown as SealedSecret)).toThrow(/"pi": the stored secret is in no known form/);
  });

  it("old format (AAD omf-endpoint:<id> only) is refused, not migrated: it opens under its key yet is never accepted", () => {
    const key = randomBytes(32);
    // What the previous omf-sender stored: AAD = omf-endpoint:<id>, no version, no key id.
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key, iv);
    c.setAAD(Buffer.from("omf-endpoint:pi"));
    const data = Buffer.concat([c.update("pw", "utf8"), c.final()]);
    const legacy = {
      alg: "A256GCM" as const,
      iv: iv.toString("base64"),
      tag: c.getAuthTag().toString("base64"),
      data: data.toString("base64"),
    };
    const k = new CredentialKeyring(key);
    expect(k.isStale(legacy)).toBe(true);
    expect(() => k.open(PI, legacy)).toThrow(/sealed by an earlier omf-sender, bound to the endpoint id alone, and is refused/);
  });
});

describe("records sealed before sealing moved into @meridian/service-kit", () => {
  // testdata/sealed-before-service-kit.json was written by omf-sender's own keyring before the move; KV holds such
  // records today, so they must open unchanged (same key ids, same associated data bytes).
  const fixture = JSON.parse(readFileSync(join(import.meta.dirname, "testdata/sealed-before-service-kit.json"), "utf8")) as {
    currentKey: string;
    currentKeyId: string;
    previousKey: string;
    previousKeyId: string;
    records: { name: string; binding: SecretBinding; plaintext: string; sealed: SealedSecret }[];
  };
  const current = Buffer.from(fixture.currentKey, "base64");
  const previous = Buffer.from(fixture.previousKey, "base64");

  it("key ids are the same digests as before (omf-sender's label)", () => {
    expect(keyId(current)).toBe(fixture.currentKeyId);
    expect(keyId(previous)).toBe(fixture.previousKeyId);
  });

  it.each(fixture.records.map((r) => [r.name, r] as const))("%s: opens to its plaintext, and only for its own binding", (_, r) => {
    const k = new CredentialKeyring(current, [previous]);
    expect(k.open(r.binding, r.sealed)).toBe(r.plaintext);
    expect(k.isStale(r.sealed)).toBe(r.sealed.kid !== fixture.currentKeyId);
    expect(() => k.open({ ...r.binding, url: "https://attacker.example/omf" }, r.sealed)).toThrow(CredentialsError);
    // Without the previous key a rotated record is named by its old id, as before.
    if (r.sealed.kid === fixture.previousKeyId)
      expect(() => new CredentialKeyring(current).open(r.binding, r.sealed)).toThrow(
        `sealed with key ${fixture.previousKeyId}, which is neither OMF_CREDENTIALS_KEY nor one of OMF_CREDENTIALS_PREVIOUS_KEYS`,
      );
  });

  it("a record sealed now opens with the keyring as it was: same purpose, field order and key id", () => {
    const k = new CredentialKeyring(current);
    const r = fixture.records[1]!;
    const sealed = k.seal(r.binding, r.plaintext);
    const kid = createHash("sha256").update("meridian omf-sender credentials key id\0").update(current).digest("hex").slice(0, 16);
    expect(sealed.kid).toBe(kid);
    // The associated data as the keyring before the move wrote it, field by field.
    const b = r.binding;
    const aad = [
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
    ];
    const d = createDecipheriv("aes-256-gcm", current, Buffer.from(sealed.iv, "base64"));
    d.setAAD(Buffer.from(JSON.stringify(aad)));
    d.setAuthTag(Buffer.from(sealed.tag, "base64"));
    expect(Buffer.concat([d.update(Buffer.from(sealed.data, "base64")), d.final()]).toString("utf8")).toBe(r.plaintext);
  });
});

import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { loadConfig } from "./config.js";
import {
  credentialsKeySettings,
  DEVELOPMENT_CREDENTIALS_KEY,
  isDevelopmentKey,
  isSealedSecret,
  type SealedSecret,
  SecretKeyring,
  SecretOpenError,
} from "./sealing.js";

const LABEL = "meridian test credentials key id\0";
const PURPOSE = "meridian.test-device";
const BINDING = ["device-1", "https://hub.example/devices", true, 3] as const;

function openError(f: () => unknown): SecretOpenError {
  try {
    f();
  } catch (e) {
    if (e instanceof SecretOpenError) return e;
    throw e;
  }
  throw new Error("expected a SecretOpenError");
}

describe("SecretKeyring", () => {
  it("round-trips, never stores the plaintext, a fresh iv each time, and names the key that sealed it", () => {
    const k = new SecretKeyring({ current: randomBytes(32), keyIdLabel: LABEL });
    const sealed = k.seal(PURPOSE, BINDING, "pw-123");
    expect(JSON.stringify(sealed)).not.toContain("pw-123");
    expect(sealed).toMatchObject({ alg: "A256GCM", v: 2, kid: k.currentKeyId });
    expect(k.currentKeyId).toMatch(/^[0-9a-f]{16}$/);
    expect(k.open(PURPOSE, BINDING, sealed)).toBe("pw-123");
    expect(k.seal(PURPOSE, BINDING, "pw-123").iv).not.toBe(sealed.iv);
    expect(k.open(PURPOSE, [], k.seal(PURPOSE, [], "ü €"))).toBe("ü €");
  });

  it("is the documented format: kid = sha256(label ‖ key)[0..16 hex], AAD = JSON [purpose, 2, kid, ...binding]", () => {
    const key = randomBytes(32);
    const kid = createHash("sha256").update(LABEL).update(key).digest("hex").slice(0, 16);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key, iv);
    c.setAAD(Buffer.from(JSON.stringify([PURPOSE, 2, kid, ...BINDING])));
    const data = Buffer.concat([c.update("by hand", "utf8"), c.final()]);
    const sealed: SealedSecret = {
      alg: "A256GCM",
      v: 2,
      kid,
      iv: iv.toString("base64"),
      tag: c.getAuthTag().toString("base64"),
      data: data.toString("base64"),
    };
    const k = new SecretKeyring({ current: key, keyIdLabel: LABEL });
    expect(k.currentKeyId).toBe(kid);
    expect(k.open(PURPOSE, BINDING, sealed)).toBe("by hand");
  });

  it.each<[string, string, readonly (string | boolean | number)[]]>([
    ["another purpose", "meridian.other", BINDING],
    ["a changed field", PURPOSE, ["device-2", "https://hub.example/devices", true, 3]],
    ["fields in another order", PURPOSE, ["https://hub.example/devices", "device-1", true, 3]],
    ["a boolean given as a string", PURPOSE, ["device-1", "https://hub.example/devices", "true", 3]],
    ["a number given as a string", PURPOSE, ["device-1", "https://hub.example/devices", true, "3"]],
    ["a field more", PURPOSE, [...BINDING, ""]],
    ["a field less", PURPOSE, BINDING.slice(0, 3)],
  ])("does not open for %s: binding_mismatch, naming the key id and no secret", (_, purpose, binding) => {
    const k = new SecretKeyring({ current: randomBytes(32), keyIdLabel: LABEL });
    const sealed = k.seal(PURPOSE, BINDING, "pw-secret");
    const err = openError(() => k.open(purpose, binding, sealed));
    expect(err.reason).toBe("binding_mismatch");
    expect(err.kid).toBe(k.currentKeyId);
    expect(err.message).toContain(k.currentKeyId);
    expect(err.message).not.toContain("pw-secret");
  });

  it("a tampered ciphertext, tag or iv does not open (binding_mismatch), nor does a valid tag cut short", () => {
    const k = new SecretKeyring({ current: randomBytes(32), keyIdLabel: LABEL });
    const sealed = k.seal(PURPOSE, BINDING, "pw");
    const flip = (b64: string) => {
      const b = Buffer.from(b64, "base64");
      b[0]! ^= 1;
      return b.toString("base64");
    };
    for (const bad of [
      { ...sealed, data: flip(sealed.data) },
      { ...sealed, tag: flip(sealed.tag) },
      { ...sealed, iv: flip(sealed.iv) },
      // GCM checks only as many tag bytes as it is given: without a fixed tag length these would open.
      { ...sealed, tag: Buffer.from(sealed.tag, "base64").subarray(0, 12).toString("base64") },
      { ...sealed, tag: Buffer.from(sealed.tag, "base64").subarray(0, 4).toString("base64") },
      { ...sealed, iv: "" },
    ])
      expect(openError(() => k.open(PURPOSE, BINDING, bad)).reason).toBe("binding_mismatch");
  });

  it("rotation: a previous key opens and is stale, the current key seals; a key not held is unknown_key", () => {
    const old = randomBytes(32);
    const current = randomBytes(32);
    const before = new SecretKeyring({ current: old, keyIdLabel: LABEL });
    const sealedOld = before.seal(PURPOSE, BINDING, "pw-old");
    const rotated = new SecretKeyring({ current, previous: [old], keyIdLabel: LABEL });
    expect(rotated.open(PURPOSE, BINDING, sealedOld)).toBe("pw-old");
    expect(rotated.isStale(sealedOld)).toBe(true);
    const resealed = rotated.seal(PURPOSE, BINDING, "pw-old");
    expect(resealed.kid).toBe(rotated.currentKeyId);
    expect(resealed.kid).not.toBe(before.currentKeyId);
    expect(rotated.isStale(resealed)).toBe(false);

    const err = openError(() => new SecretKeyring({ current, keyIdLabel: LABEL }).open(PURPOSE, BINDING, sealedOld));
    expect(err).toMatchObject({ reason: "unknown_key", kid: before.currentKeyId });
    expect(err.message).toContain(before.currentKeyId);
    expect(err.message).not.toContain("pw-old");
    expect(err.message).not.toContain(old.toString("base64"));
  });

  it("the key id depends on the label: the same key under another service's label does not know the record", () => {
    const key = randomBytes(32);
    const a = new SecretKeyring({ current: key, keyIdLabel: LABEL });
    const b = new SecretKeyring({ current: key, keyIdLabel: "meridian other credentials key id\0" });
    expect(b.currentKeyId).not.toBe(a.currentKeyId);
    expect(openError(() => b.open(PURPOSE, BINDING, a.seal(PURPOSE, BINDING, "pw"))).reason).toBe("unknown_key");
    expect(key.toString("hex")).not.toContain(a.currentKeyId);
  });

  it("refuses keys that are not 32 bytes, an empty label, an empty purpose and binding fields JSON cannot tell apart", () => {
    expect(() => new SecretKeyring({ current: randomBytes(16), keyIdLabel: LABEL })).toThrow(/the current key must be 32 bytes/);
    expect(() => new SecretKeyring({ current: randomBytes(32), previous: [randomBytes(31)], keyIdLabel: LABEL })).toThrow(
      /previous key 1 must be 32 bytes/,
    );
    expect(() => new SecretKeyring({ current: randomBytes(32), keyIdLabel: "" })).toThrow(/keyIdLabel/);
    const k = new SecretKeyring({ current: randomBytes(32), keyIdLabel: LABEL });
    expect(() => k.seal("", BINDING, "pw")).toThrow(/purpose/);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, undefined, null, {}])
      expect(() => k.seal(PURPOSE, ["a", bad as unknown as string], "pw")).toThrow(/binding\[1\]/);
  });
});

describe("isSealedSecret", () => {
  const k = new SecretKeyring({ current: randomBytes(32), keyIdLabel: LABEL });
  const sealed = k.seal(PURPOSE, BINDING, "pw");
  it("takes what seal() returns, also after a JSON round trip", () => {
    expect(isSealedSecret(sealed)).toBe(true);
    expect(isSealedSecret(JSON.parse(JSON.stringify(sealed)))).toBe(true);
  });
  it.each([
    ["null", null],
    ["a string", "pw"],
    ["a reference", { ref: { env: "X" } }],
    ["no version (an older format)", { ...sealed, v: undefined }],
    ["another version", { ...sealed, v: 1 }],
    ["another algorithm", { ...sealed, alg: "A128GCM" }],
    ["no key id", { ...sealed, kid: undefined }],
    ["a numeric field", { ...sealed, data: 1 }],
  ])("refuses %s", (_, x) => expect(isSealedSecret(x)).toBe(false));
});

describe("credentialsKeySettings", () => {
  const schema = z.object({ ...credentialsKeySettings("IOTC") });
  const key = randomBytes(32);

  it("reads <P>_CREDENTIALS_KEY (standard or url-safe base64) and up to 8 previous keys; unset is no key", () => {
    expectTypeOf<z.infer<typeof schema>>().toEqualTypeOf<{
      IOTC_CREDENTIALS_KEY: Buffer | undefined;
      IOTC_CREDENTIALS_PREVIOUS_KEYS: Buffer[];
    }>();
    expect(schema.parse({})).toEqual({ IOTC_CREDENTIALS_KEY: undefined, IOTC_CREDENTIALS_PREVIOUS_KEYS: [] });
    const previous = Array.from({ length: 8 }, () => randomBytes(32));
    const r = schema.parse({
      IOTC_CREDENTIALS_KEY: ` ${key.toString("base64url")} `,
      IOTC_CREDENTIALS_PREVIOUS_KEYS: previous.map((p, i) => (i % 2 ? p.toString("base64") : p.toString("base64url"))).join(", \n"),
    });
    expect(r.IOTC_CREDENTIALS_KEY).toEqual(key);
    expect(r.IOTC_CREDENTIALS_PREVIOUS_KEYS).toEqual(previous);
  });

  it.each([
    ["IOTC_CREDENTIALS_KEY", "", /must be 32 bytes/],
    ["IOTC_CREDENTIALS_KEY", randomBytes(16).toString("base64"), /must be 32 bytes/],
    ["IOTC_CREDENTIALS_KEY", randomBytes(32).toString("hex"), /must be 32 bytes/],
    ["IOTC_CREDENTIALS_KEY", `${randomBytes(32).toString("base64").slice(0, 40)}!!!!`, /must be 32 bytes/],
    ["IOTC_CREDENTIALS_PREVIOUS_KEYS", `${randomBytes(32).toString("base64")},c2hvcnQ=`, /key 2: must be 32 bytes/],
    ["IOTC_CREDENTIALS_PREVIOUS_KEYS", Array.from({ length: 9 }, () => randomBytes(32).toString("base64")).join(","), /at most 8 keys/],
  ])("%s=… is refused, naming the setting and never echoing the value", (name, value, message) => {
    const r = schema.safeParse({ [name]: value });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual([name]);
    expect(r.error?.issues[0]?.message).toMatch(message);
    const parts = value.split(",").filter((p) => p.length >= 12);
    for (const part of parts) expect(JSON.stringify(r.error?.issues)).not.toContain(part.slice(0, 12));
    if (value !== "") {
      // As a service reads it: the ConfigError names the setting and holds no part of the value either.
      const err = (() => {
        try {
          loadConfig(schema, { [name]: value });
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err?.message).toContain(`${name}: `);
      for (const part of parts) expect(err?.message).not.toContain(part.slice(0, 12));
    }
  });

  it("a prefix that is not an upper-case setting name is a programming error", () => {
    expect(() => credentialsKeySettings("iotc")).toThrow(TypeError);
    expect(() => credentialsKeySettings("")).toThrow(TypeError);
  });
});

describe("the development key", () => {
  it("is a valid key, and is recognised (and only it)", () => {
    const dev = z.object({ ...credentialsKeySettings("X") }).parse({ X_CREDENTIALS_KEY: DEVELOPMENT_CREDENTIALS_KEY }).X_CREDENTIALS_KEY!;
    expect(dev).toHaveLength(32);
    expect(isDevelopmentKey(dev)).toBe(true);
    expect(isDevelopmentKey(randomBytes(32))).toBe(false);
  });
});

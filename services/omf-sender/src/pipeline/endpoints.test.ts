import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CredentialCipher } from "./endpoints.js";

describe("CredentialCipher (AES-256-GCM)", () => {
  it("round-trips, never stores the plaintext, and is bound to the key and the endpoint id", () => {
    const key = randomBytes(32);
    const c = new CredentialCipher(key);
    const sealed = c.seal("pi", "pw-123");
    expect(JSON.stringify(sealed)).not.toContain("pw-123");
    expect(c.open("pi", sealed)).toBe("pw-123");
    expect(c.seal("pi", "pw-123").iv).not.toBe(sealed.iv);
    expect(() => c.open("other", sealed)).toThrow();
    expect(() => new CredentialCipher(randomBytes(32)).open("pi", sealed)).toThrow();
    expect(() => c.open("pi", { ...sealed, data: Buffer.from("x").toString("base64") })).toThrow();
  });
});

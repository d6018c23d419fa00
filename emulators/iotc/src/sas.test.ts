import { describe, expect, it } from "vitest";
import { checkSasToken, createSasToken, deriveDeviceKey, parseSasToken } from "./sas.js";

const key = Buffer.alloc(32, 42).toString("base64");
const now = Date.UTC(2026, 0, 1);
const se = now / 1000 + 60;

describe("SAS tokens", () => {
  it("parses fields in any order and refuses other shapes", () => {
    const t = parseSasToken("SharedAccessSignature se=5&skn=registration&sig=YWJj&sr=a%2Fb");
    expect(t).toMatchObject({ sr: "a%2Fb", se: 5, skn: "registration" });
    expect(t?.sig.toString()).toBe("abc");
    expect(parseSasToken("Bearer x")).toBeUndefined();
    expect(parseSasToken("SharedAccessSignature sr=a&sig=b")).toBeUndefined();
    expect(parseSasToken(`SharedAccessSignature sr=${"a".repeat(5000)}&sig=b&se=1`)).toBeUndefined();
  });

  it("accepts the resource as signed: raw, upper- or lower-case percent-encoding", () => {
    const resource = "host.azure-devices.net/devices/dev-1";
    for (const sr of [resource, encodeURIComponent(resource), encodeURIComponent(resource).toLowerCase()]) {
      const t = parseSasToken(createSasToken(key, sr, se))!;
      expect(checkSasToken(t, key, resource, now, undefined)).toEqual({ ok: true });
    }
  });

  it("refuses another key, another resource, an expired token and a wrong skn, saying which", () => {
    const resource = "0ne00EMU001/registrations/dev-1";
    const good = parseSasToken(createSasToken(key, resource, se, "registration"))!;
    expect(checkSasToken(good, key, resource, now, "registration").ok).toBe(true);
    const other = Buffer.alloc(32, 1).toString("base64");
    expect(checkSasToken(good, other, resource, now, "registration")).toEqual({ ok: false, reason: "signature does not match" });
    expect(checkSasToken(good, key, "0ne00EMU001/registrations/dev-2", now, "registration")).toMatchObject({ ok: false });
    expect(checkSasToken(good, key, resource, (se + 1) * 1000, "registration")).toEqual({ ok: false, reason: "token expired" });
    expect(checkSasToken(good, key, resource, now, undefined)).toMatchObject({ ok: false, reason: expect.stringMatching(/skn/) });
  });

  it("derives a group device key as HMAC-SHA256(base64decode(groupKey), registrationId), base64", () => {
    // Known answer from openssl: printf dev-1 | openssl dgst -sha256 -mac HMAC -macopt hexkey:<32 zero bytes> -binary | base64
    const groupKey = Buffer.alloc(32).toString("base64");
    expect(deriveDeviceKey(groupKey, "dev-1")).toBe("zFT8S9NntxLYTJYMEIRQwn3jbJjLnpoINbUnP39ec1w=");
    expect(deriveDeviceKey(groupKey, "dev-1")).not.toBe(deriveDeviceKey(groupKey, "dev-2"));
  });
});

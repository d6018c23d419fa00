import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTestCa } from "@meridian/testing";
import forge from "node-forge";
import { describe, expect, it } from "vitest";
import { issueDeviceCertificate } from "./certificates.js";
import { IotcInvalidArgumentError } from "./errors.js";

function rsaCa(name = "Test enrollment CA"): { certificateChainPem: string; privateKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 10 * 86_400_000);
  cert.setSubject([{ name: "commonName", value: name }]);
  cert.setIssuer([{ name: "commonName", value: name }]);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, critical: true },
  ]);
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certificateChainPem: forge.pki.certificateToPem(cert), privateKeyPem: keyPem };
}

describe("issueDeviceCertificate", () => {
  const ca = rsaCa();

  it("issues a leaf with CN = registration id, signed by the CA, for client auth, valid a year, chain leaf first", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const issued = issueDeviceCertificate(ca, "pump-7", { now });
    const pems = issued.certificateChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(pems).toHaveLength(2);
    const leaf = new X509Certificate(pems[0]!);
    const caCert = new X509Certificate(ca.certificateChainPem);
    expect(leaf.subject).toBe("CN=pump-7");
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toContain("1.3.6.1.5.5.7.3.2");
    expect(new Date(leaf.validTo).getTime() - now.getTime()).toBe(365 * 86_400_000);
    expect(issued.notAfter).toBe(new Date(now.getTime() + 365 * 86_400_000).toISOString());
    expect(leaf.checkPrivateKey(createPrivateKey(issued.privateKeyPem))).toBe(true);
  });

  it("two certificates for the same id have different keys and serials", () => {
    const a = new X509Certificate(issueDeviceCertificate(ca, "dev").certificateChainPem);
    const b = new X509Certificate(issueDeviceCertificate(ca, "dev").certificateChainPem);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.publicKey.export({ type: "spki", format: "pem" })).not.toEqual(b.publicKey.export({ type: "spki", format: "pem" }));
  });

  it("refuses a bad registration id, an EC signing key and a key that is not the CA's, naming the field", () => {
    expect(() => issueDeviceCertificate(ca, "Pump 7")).toThrow(/registrationId/);
    const ec = createTestCa("EC CA");
    try {
      expect(() =>
        issueDeviceCertificate({ certificateChainPem: ec.caPem, privateKeyPem: readFileSync(join(ec.dir, "ca.key"), "utf8") }, "dev"),
      ).toThrow(/RSA/);
    } finally {
      ec.remove();
    }
    const other = rsaCa("Other");
    expect(() =>
      issueDeviceCertificate({ certificateChainPem: ca.certificateChainPem, privateKeyPem: other.privateKeyPem }, "dev"),
    ).toThrow(IotcInvalidArgumentError);
    expect(() => issueDeviceCertificate({ certificateChainPem: "nothing", privateKeyPem: ca.privateKeyPem }, "dev")).toThrow(
      /signing.certificateChainPem/,
    );
    expect(() => issueDeviceCertificate(ca, "dev", { validityDays: 0 })).toThrow(/validityDays/);
  });
});

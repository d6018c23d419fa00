import { createPrivateKey, X509Certificate } from "node:crypto";
import { connect, createServer } from "node:tls";
import { describe, expect, it } from "vitest";
import { listen } from "./listen.js";
import { certificateSerial, createCa, createTestPki } from "./pki.js";

describe("createTestPki", () => {
  const pki = createTestPki({ caName: "Test Emulator CA", hosts: ["emulator.local", "10.1.2.3"] });

  it("makes a CA and a server certificate it signed, for the loopback names and the extra hosts", () => {
    const ca = new X509Certificate(pki.caPem);
    const cert = new X509Certificate(pki.certPem);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain("CN=Test Emulator CA");
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    const san = cert.subjectAltName ?? "";
    for (const name of ["DNS:emulator.local", "DNS:localhost", "IP Address:10.1.2.3", "IP Address:127.0.0.1"]) expect(san).toContain(name);
    expect(pki.keyPem).toMatch(/BEGIN PRIVATE KEY/);
  });

  it("serves TLS that a client trusting only the CA verifies, and that a client without it refuses", async () => {
    const server = createServer({ key: pki.keyPem, cert: pki.certPem }, (socket) => socket.end("hello"));
    const listening = await listen(server);
    try {
      const ok = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port: listening.port, ca: pki.caPem, servername: "localhost" }, () => {
          socket.once("data", (d) => resolve(String(d)));
        });
        socket.once("error", reject);
      });
      expect(ok).toBe("hello");
      const refused = await new Promise<NodeJS.ErrnoException>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port: listening.port, servername: "localhost" });
        socket.once("error", resolve);
      });
      expect(refused.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    } finally {
      await listening.close();
    }
  });

  it("gives every call its own CA", () => {
    expect(createTestPki().caPem).not.toBe(pki.caPem);
  });
});

describe("createCa", () => {
  it("makes a self-signed CA named as asked, valid from a minute back for ten years, with its own key", () => {
    const before = Date.now();
    const { certPem, keyPem } = createCa("Meridian Test Enrollment CA");
    const ca = new X509Certificate(certPem);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain("CN=Meridian Test Enrollment CA");
    expect(ca.issuer).toBe(ca.subject);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(ca.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(before - Date.parse(ca.validFrom)).toBeGreaterThanOrEqual(55_000);
    expect(Date.parse(ca.validTo) - before).toBeGreaterThan(3649 * 86_400_000);
    expect(createCa("x").certPem).not.toBe(certPem);
  });

  it("certificateSerial: 16 bytes, positive and non-zero (first byte 0x01..0x7f)", () => {
    for (let i = 0; i < 50; i++) {
      const s = certificateSerial();
      expect(s).toMatch(/^[0-9a-f]{32}$/);
      const first = Number.parseInt(s.slice(0, 2), 16);
      expect(first).toBeGreaterThanOrEqual(1);
      expect(first).toBeLessThanOrEqual(0x7f);
    }
  });
});

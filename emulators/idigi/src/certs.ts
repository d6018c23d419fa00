/**
 * A throwaway CA and a server certificate signed by it, made at start for the TLS push port.
 * Keys come from node:crypto (fast, native); node-forge only builds and signs the X.509 structures.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function rsaKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

function serial(): string {
  // Positive, non-zero serial.
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

/** CA "Meridian iDigi Emulator CA" and a server cert for `hosts` (DNS names or IPs), valid for ~10 years. */
export function generatePki(hosts: string[] = ["localhost", "127.0.0.1", "::1"]): TestPki {
  const { pki, md } = forge;
  const caKeys = rsaKeys();
  const caKey = pki.privateKeyFromPem(caKeys.privatePem);
  const ca = pki.createCertificate();
  ca.publicKey = pki.publicKeyFromPem(caKeys.publicPem);
  ca.serialNumber = serial();
  const now = new Date();
  ca.validity.notBefore = new Date(now.getTime() - 60_000);
  ca.validity.notAfter = new Date(now.getTime() + 3650 * 86_400_000);
  const caName = [
    { name: "commonName", value: "Meridian iDigi Emulator CA" },
    { name: "organizationName", value: "Meridian" },
  ];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(caKey, md.sha256.create());

  const srvKeys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(srvKeys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = ca.validity.notBefore;
  cert.validity.notAfter = new Date(now.getTime() + 825 * 86_400_000);
  cert.setSubject([{ name: "commonName", value: hosts[0] ?? "localhost" }]);
  cert.setIssuer(caName);
  const altNames = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(":") ? { type: 7, ip: h } : { type: 2, value: h }));
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames },
    { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, md.sha256.create());

  return { caPem: pki.certificateToPem(ca), certPem: pki.certificateToPem(cert), keyPem: srvKeys.privatePem };
}

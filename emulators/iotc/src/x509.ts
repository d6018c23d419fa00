/**
 * The X.509 enrollment group's signing CA and the device certificates it issues (CN = registration id). The TLS
 * server CA comes from the emulator kit; this one only signs client certificates, so a device certificate never
 * passes for a server and the server certificate never passes for a device.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
}

const DAY_MS = 86_400_000;

function rsaKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

export function createEnrollmentCa(name: string): CertificateAndKey {
  const { pki, md } = forge;
  const keys = rsaKeys();
  const ca = pki.createCertificate();
  ca.publicKey = pki.publicKeyFromPem(keys.publicPem);
  ca.serialNumber = serial();
  ca.validity.notBefore = new Date(Date.now() - 60_000);
  ca.validity.notAfter = new Date(Date.now() + 3650 * DAY_MS);
  const subject = [
    { name: "commonName", value: name },
    { name: "organizationName", value: "Meridian" },
  ];
  ca.setSubject(subject);
  ca.setIssuer(subject);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(pki.privateKeyFromPem(keys.privatePem), md.sha256.create());
  return { certPem: pki.certificateToPem(ca), keyPem: keys.privatePem };
}

export function issueDeviceCertificate(ca: CertificateAndKey, registrationId: string, days = 365): CertificateAndKey {
  const { pki, md } = forge;
  const caCert = pki.certificateFromPem(ca.certPem);
  const keys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * DAY_MS);
  cert.setSubject([{ name: "commonName", value: registrationId }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(pki.privateKeyFromPem(ca.keyPem), md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: keys.privatePem };
}

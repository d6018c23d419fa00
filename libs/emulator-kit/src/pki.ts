/**
 * A throwaway CA and a server certificate it signs, made at start so an emulator can serve TLS that a client verifies
 * for real (trusting the CA, not switching verification off). Keys come from node:crypto (native, fast); node-forge
 * only builds and signs the X.509 structures, which node:crypto cannot.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";

export interface TestPki {
  /** The CA certificate: what a client must trust. */
  caPem: string;
  /** The server certificate, signed by the CA. */
  certPem: string;
  /** The server's private key (PKCS#8). */
  keyPem: string;
}

export interface TestPkiOptions {
  /** Common name of the CA, so a certificate seen in a client's error names the emulator that made it. */
  caName?: string;
  /** DNS names and IP addresses for the server certificate, besides localhost, 127.0.0.1 and ::1 (always in). */
  hosts?: string[];
}

/** In every server certificate: tests and local clients connect through one of these. */
export const LOOPBACK_HOSTS: readonly string[] = ["localhost", "127.0.0.1", "::1"];

const DAY_MS = 86_400_000;
/** The longest server-certificate lifetime that every mainstream TLS client still accepts. */
const SERVER_CERT_DAYS = 825;
const CA_DAYS = 3650;

/** A key pair from node:crypto (2048-bit RSA, what every TLS client takes), as PEM: PKCS#8 private, SPKI public. */
export function rsaKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** A random certificate serial number, positive and non-zero as RFC 5280 requires. */
export function certificateSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

/** A certificate and its private key (PKCS#8), as PEM. */
export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
}

/**
 * A self-signed CA (10 years, CN `commonName`, O Meridian) that signs certificates only. Valid from a minute in the
 * past, so a client whose clock is slightly behind does not see a certificate from the future.
 */
export function createCa(commonName: string, notBefore = new Date(Date.now() - 60_000)): CertificateAndKey {
  const { pki, md } = forge;
  const keys = rsaKeys();
  const ca = pki.createCertificate();
  ca.publicKey = pki.publicKeyFromPem(keys.publicPem);
  ca.serialNumber = certificateSerial();
  ca.validity.notBefore = notBefore;
  ca.validity.notAfter = new Date(notBefore.getTime() + CA_DAYS * DAY_MS);
  const subject = [
    { name: "commonName", value: commonName },
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

export function createTestPki(options: TestPkiOptions = {}): TestPki {
  const { pki, md } = forge;
  const hosts = [...new Set([...(options.hosts ?? []).filter(Boolean), ...LOOPBACK_HOSTS])];
  // A minute in the past, so a client whose clock is slightly behind does not see a certificate from the future.
  const notBefore = new Date(Date.now() - 60_000);
  const caPair = createCa(options.caName ?? "Meridian Emulator CA", notBefore);
  const ca = pki.certificateFromPem(caPair.certPem);
  const caKey = pki.privateKeyFromPem(caPair.keyPem);

  const serverKeys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(serverKeys.publicPem);
  cert.serialNumber = certificateSerial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + SERVER_CERT_DAYS * DAY_MS);
  cert.setSubject([{ name: "commonName", value: hosts[0]! }]);
  cert.setIssuer(ca.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    // Type 7 is an IP address, type 2 a DNS name (RFC 5280 GeneralName).
    { name: "subjectAltName", altNames: hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, md.sha256.create());

  return { caPem: caPair.certPem, certPem: pki.certificateToPem(cert), keyPem: serverKeys.privatePem };
}

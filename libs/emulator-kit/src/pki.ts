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

function rsaKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Positive and non-zero, as RFC 5280 requires of a serial number. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

export function createTestPki(options: TestPkiOptions = {}): TestPki {
  const { pki, md } = forge;
  const hosts = [...new Set([...(options.hosts ?? []).filter(Boolean), ...LOOPBACK_HOSTS])];
  // A minute in the past, so a client whose clock is slightly behind does not see a certificate from the future.
  const notBefore = new Date(Date.now() - 60_000);

  const caKeys = rsaKeys();
  const caKey = pki.privateKeyFromPem(caKeys.privatePem);
  const ca = pki.createCertificate();
  ca.publicKey = pki.publicKeyFromPem(caKeys.publicPem);
  ca.serialNumber = serial();
  ca.validity.notBefore = notBefore;
  ca.validity.notAfter = new Date(notBefore.getTime() + CA_DAYS * DAY_MS);
  const caSubject = [
    { name: "commonName", value: options.caName ?? "Meridian Emulator CA" },
    { name: "organizationName", value: "Meridian" },
  ];
  ca.setSubject(caSubject);
  ca.setIssuer(caSubject);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(caKey, md.sha256.create());

  const serverKeys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(serverKeys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + SERVER_CERT_DAYS * DAY_MS);
  cert.setSubject([{ name: "commonName", value: hosts[0]! }]);
  cert.setIssuer(caSubject);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    // Type 7 is an IP address, type 2 a DNS name (RFC 5280 GeneralName).
    { name: "subjectAltName", altNames: hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, md.sha256.create());

  return { caPem: pki.certificateToPem(ca), certPem: pki.certificateToPem(cert), keyPem: serverKeys.privatePem };
}

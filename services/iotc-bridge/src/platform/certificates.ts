import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type forge from "node-forge";
import { IotcInvalidArgumentError } from "./errors.js";
import { validateRegistrationId } from "./registration-id.js";

/** The CA (or intermediate) of an X.509 enrollment group: its certificate (PEM, chain up to the root) and its key. */
export interface SigningCertificate {
  certificateChainPem: string;
  privateKeyPem: string;
}

export interface IssuedDeviceCertificate {
  /** Leaf first, then the signing chain: what the device presents in TLS. */
  certificateChainPem: string;
  privateKeyPem: string;
  /** ISO 8601. */
  notAfter: string;
}

export interface IssueOptions {
  /** Default 365. */
  validityDays?: number;
  /** For tests; default now. */
  now?: Date;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

const here = createRequire(import.meta.url);
/** node-forge, loaded by the first certificate issued (about 2 MiB a bridge without X.509 groups never needs). */
const loadForge = () => here("node-forge") as typeof forge;

/**
 * A device certificate for an X.509 enrollment group: subject CN = the registration id (DPS requires it), RSA 2048,
 * clientAuth, signed by `signing` with SHA-256. node-forge signs with RSA keys only, so the signing key must be RSA.
 */
export function issueDeviceCertificate(
  signing: SigningCertificate,
  registrationId: string,
  options: IssueOptions = {},
): IssuedDeviceCertificate {
  validateRegistrationId(registrationId);
  const forge = loadForge();
  const days = options.validityDays ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650)
    throw new IotcInvalidArgumentError("validityDays", `must be a whole number of days from 1 to 3650, got ${days}`);
  const chain = signing.certificateChainPem?.match(PEM_CERT) ?? [];
  if (chain.length === 0) throw new IotcInvalidArgumentError("signing.certificateChainPem", "holds no PEM certificate");
  let issuer: forge.pki.Certificate;
  try {
    issuer = forge.pki.certificateFromPem(chain[0]!);
  } catch (err) {
    throw new IotcInvalidArgumentError(
      "signing.certificateChainPem",
      `first certificate unreadable (node-forge reads RSA certificates only): ${(err as Error).message}`,
    );
  }
  let signingKey: forge.pki.rsa.PrivateKey;
  try {
    signingKey = forge.pki.privateKeyFromPem(signing.privateKeyPem) as forge.pki.rsa.PrivateKey;
  } catch {
    // The message of forge's error may quote key material: never pass it on.
    throw new IotcInvalidArgumentError("signing.privateKeyPem", "is not a PEM RSA private key (node-forge signs with RSA only)");
  }

  const issuerKey = issuer.publicKey as forge.pki.rsa.PublicKey;
  if (issuerKey.n?.compareTo(signingKey.n) !== 0 || issuerKey.e?.compareTo(signingKey.e) !== 0)
    throw new IotcInvalidArgumentError("signing.privateKeyPem", "is not the key of the signing certificate");

  const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const publicKey = forge.pki.publicKeyFromPem(keys.publicKey.export({ type: "spki", format: "pem" }).toString());
  const privateKeyPem = keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();

  const now = options.now ?? new Date();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 random bytes, the first in 0x01..0x7f: positive and minimally encoded (DER), unique enough for every device.
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  cert.serialNumber = serial.toString("hex");
  // A minute back, so a hub whose clock is slightly behind does not see a certificate from the future.
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + days * 86_400_000);
  cert.setSubject([{ name: "commonName", value: registrationId }]);
  cert.setIssuer(issuer.subject.attributes);
  const issuerKeyId = issuer.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: issuerKeyId },
  ]);
  cert.sign(signingKey, forge.md.sha256.create());

  return {
    certificateChainPem: [forge.pki.certificateToPem(cert).trim(), ...chain.map((c) => c.trim())].join("\n") + "\n",
    privateKeyPem,
    notAfter: cert.validity.notAfter.toISOString(),
  };
}

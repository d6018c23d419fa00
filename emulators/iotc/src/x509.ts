/**
 * The device certificates the X.509 enrollment group's CA issues (CN = registration id). That CA (createCa from the
 * emulator kit) is not the TLS server's: it signs only client certificates, so a device certificate never passes for a
 * server and the server certificate never passes for a device.
 */
import { type CertificateAndKey, certificateSerial, rsaKeys } from "@meridian/emulator-kit";
import forge from "node-forge";

const DAY_MS = 86_400_000;

export function issueDeviceCertificate(ca: CertificateAndKey, registrationId: string, days = 365): CertificateAndKey {
  const { pki, md } = forge;
  const caCert = pki.certificateFromPem(ca.certPem);
  const keys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = certificateSerial();
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

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { captureLogger, createTestCa, type TestCa, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "./config.js";
import { parseSubjectAltNames, readTlsMaterial, serverTlsFromSettings, type TlsFiles, type TlsMaterial, watchTlsFiles } from "./tls.js";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("serverTlsFromSettings", () => {
  it("is plaintext (undefined) with no TLS setting", () => {
    expect(serverTlsFromSettings({})).toBeUndefined();
  });

  it("needs the certificate and the key together", () => {
    expect(configError(() => serverTlsFromSettings({ TLS_CERT_FILE: "/c" })).settings).toEqual(["TLS_KEY_FILE"]);
    expect(configError(() => serverTlsFromSettings({ TLS_KEY_FILE: "/k" })).settings).toEqual(["TLS_CERT_FILE"]);
  });

  it("refuses client settings without TLS, naming them", () => {
    const err = configError(() => serverTlsFromSettings({ TLS_CLIENT_AUTH: "require", TLS_CLIENT_CA_FILE: "/ca" }));
    expect(err.settings).toEqual(["TLS_CLIENT_CA_FILE", "TLS_CLIENT_AUTH"]);
    expect(err.message).toContain("without TLS");
    expect(configError(() => serverTlsFromSettings({ TLS_CLIENT_AUTH: "none" })).settings).toEqual(["TLS_CLIENT_AUTH"]);
  });

  it("needs a CA to verify clients against, and refuses a CA that would go unused", () => {
    const files = { TLS_CERT_FILE: "/c", TLS_KEY_FILE: "/k" };
    expect(configError(() => serverTlsFromSettings({ ...files, TLS_CLIENT_AUTH: "request" })).settings).toEqual(["TLS_CLIENT_CA_FILE"]);
    expect(configError(() => serverTlsFromSettings({ ...files, TLS_CLIENT_AUTH: "none", TLS_CLIENT_CA_FILE: "/ca" })).settings).toEqual([
      "TLS_CLIENT_AUTH",
      "TLS_CLIENT_CA_FILE",
    ]);
  });

  it("defaults client auth to require when a CA is given, none otherwise", () => {
    const files = { TLS_CERT_FILE: "/c", TLS_KEY_FILE: "/k" };
    expect(serverTlsFromSettings(files)).toEqual({ certFile: "/c", keyFile: "/k", clientAuth: "none" });
    expect(serverTlsFromSettings({ ...files, TLS_CLIENT_CA_FILE: "/ca" })).toMatchObject({ clientAuth: "require", clientCaFile: "/ca" });
    expect(serverTlsFromSettings({ ...files, TLS_CLIENT_CA_FILE: "/ca", TLS_CLIENT_AUTH: "request" })).toMatchObject({
      clientAuth: "request",
    });
  });
});

describe("readTlsMaterial", () => {
  let ca: TestCa;
  let other: TestCa;
  beforeAll(() => {
    ca = createTestCa("Unit CA");
    other = createTestCa("Other CA");
  });
  afterAll(() => {
    ca.remove();
    other.remove();
  });
  const files = (cert: string, key: string, caFile?: string): TlsFiles => ({
    cert: { setting: "TLS_CERT_FILE", path: cert },
    key: { setting: "TLS_KEY_FILE", path: key },
    ...(caFile ? { ca: { setting: "TLS_CLIENT_CA_FILE", path: caFile } } : {}),
  });

  it("reads a certificate, its key and a CA", () => {
    const leaf = ca.issue({ commonName: "localhost", usage: "server" });
    const material = readTlsMaterial(files(leaf.certFile, leaf.keyFile, ca.caFile));
    expect(material.leaf?.subject).toBe("CN=localhost");
    expect(material.cert).toBe(leaf.certPem);
    expect(material.ca).toBe(ca.caPem);
  });

  it("names the setting of a missing file", () => {
    const leaf = ca.issue({ commonName: "localhost", usage: "server" });
    const err = configError(() => readTlsMaterial(files("/nonexistent/tls.crt", leaf.keyFile)));
    expect(err.settings).toEqual(["TLS_CERT_FILE"]);
    expect(err.message).toMatch(/^TLS_CERT_FILE: \/nonexistent\/tls\.crt: cannot read: ENOENT/);
    expect(configError(() => readTlsMaterial(files(leaf.certFile, leaf.keyFile, "/nonexistent/ca.crt"))).settings).toEqual([
      "TLS_CLIENT_CA_FILE",
    ]);
  });

  it("names the setting of a file that holds no certificate or no key, without echoing its content", () => {
    const leaf = ca.issue({ commonName: "localhost", usage: "server" });
    const garbage = join(ca.dir, "garbage.pem");
    writeFileSync(garbage, "not-a-secret-but-not-pem\n");
    const notCert = configError(() => readTlsMaterial(files(garbage, leaf.keyFile)));
    expect(notCert.settings).toEqual(["TLS_CERT_FILE"]);
    expect(notCert.message).toContain("holds no PEM certificate");
    expect(notCert.message).not.toContain("not-a-secret");
    const notKey = configError(() => readTlsMaterial(files(leaf.certFile, garbage)));
    expect(notKey.settings).toEqual(["TLS_KEY_FILE"]);
    // A certificate where the key should be is not a key either.
    expect(configError(() => readTlsMaterial(files(leaf.certFile, leaf.certFile))).settings).toEqual(["TLS_KEY_FILE"]);
    expect(configError(() => readTlsMaterial(files(leaf.certFile, leaf.keyFile, garbage))).settings).toEqual(["TLS_CLIENT_CA_FILE"]);
  });

  it("refuses a key that belongs to another certificate, naming both settings", () => {
    const a = ca.issue({ commonName: "a", usage: "server" });
    const b = other.issue({ commonName: "b", usage: "server" });
    const err = configError(() => readTlsMaterial(files(a.certFile, b.keyFile)));
    expect(err.settings).toEqual(["TLS_CERT_FILE", "TLS_KEY_FILE"]);
    expect(err.message).toContain("does not belong to the certificate");
  });

  it("refuses a file larger than a PEM file can be", () => {
    const leaf = ca.issue({ commonName: "localhost", usage: "server" });
    const big = join(ca.dir, "big.pem");
    writeFileSync(big, Buffer.alloc(1024 * 1024 + 1, "A"));
    expect(configError(() => readTlsMaterial(files(big, leaf.keyFile))).message).toContain("more than a PEM file holds");
  });

  it("follows the files: a usable change is applied once, an unusable one is logged once and not applied", async () => {
    const first = ca.issue({ commonName: "first", usage: "server", name: "rotating" });
    const f = files(first.certFile, first.keyFile);
    const initial = readTlsMaterial(f);
    const applied: TlsMaterial[] = [];
    const { logger, lines } = captureLogger();
    const watch = watchTlsFiles(f, initial, { intervalMs: 100, logger, what: "test", apply: (m) => applied.push(m) });
    try {
      await new Promise((r) => setTimeout(r, 350));
      expect(applied).toHaveLength(0); // nothing changed yet

      // Half a rotation: the new certificate, the old key.
      const second = other.issue({ commonName: "second", usage: "server" });
      writeFileSync(first.certFile, second.certPem);
      await until(() => lines.some((l) => l.msg === "TLS files changed but cannot be used: keeping the ones in use"));
      await new Promise((r) => setTimeout(r, 350));
      expect(applied).toHaveLength(0);
      expect(lines.filter((l) => l.level === 40)).toHaveLength(1);

      // The rest of the rotation.
      writeFileSync(first.keyFile, second.keyPem);
      await until(() => applied.length === 1);
      expect(applied[0]!.leaf?.subject).toBe("CN=second");
      await new Promise((r) => setTimeout(r, 350));
      expect(applied).toHaveLength(1);
      expect(lines.find((l) => l.msg === "TLS files changed: new handshakes use them")).toMatchObject({
        certificate: { subject: "CN=second" },
      });
    } finally {
      watch.stop();
    }
  });
});

describe("parseSubjectAltNames", () => {
  it("reads Node's subjectaltname text, quoted entries included", () => {
    expect(parseSubjectAltNames("DNS:localhost, IP Address:127.0.0.1, URI:spiffe://meridian/gateway, email:ops@example.com")).toEqual([
      ["DNS", "localhost"],
      ["IP Address", "127.0.0.1"],
      ["URI", "spiffe://meridian/gateway"],
      ["email", "ops@example.com"],
    ]);
    // A comma inside a name must not make a second entry.
    expect(parseSubjectAltNames('DNS:"evil.example, DNS:admin", DNS:ok')).toEqual([
      ["DNS", "evil.example, DNS:admin"],
      ["DNS", "ok"],
    ]);
    expect(parseSubjectAltNames("")).toEqual([]);
  });
});

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate and its key, in memory and as files (services read TLS material from files). */
export interface TestCertificate {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export interface IssueOptions {
  /** Subject common name. */
  commonName: string;
  /** serverAuth (default: DNS localhost and IP 127.0.0.1, ::1 added), clientAuth, or both. */
  usage: "server" | "client" | "both";
  /** subjectAltName entries: DNS names and IP addresses (told apart by form), and URIs. */
  hosts?: string[];
  uris?: string[];
  /** Validity in days from now, default 2. */
  days?: number;
  /** File name stem in the CA's directory; default a random one, so issuing again never overwrites. */
  name?: string;
}

/** A throwaway CA in a temporary directory that issues server and client certificates. */
export interface TestCa {
  name: string;
  caPem: string;
  caFile: string;
  dir: string;
  issue(options: IssueOptions): TestCertificate;
  /** Deletes the directory and everything issued into it. */
  remove(): void;
}

const LOOPBACK = ["localhost", "127.0.0.1", "::1"];

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A CA made with the openssl command line (EC P-256 keys: fast), for tests of TLS and mutual TLS. Unlike the emulator
 * kit's PKI, it issues client certificates (extendedKeyUsage clientAuth), which a server verifying callers requires.
 */
export function createTestCa(name = "Meridian Test CA"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "meridian-pki-"));
  const caFile = join(dir, "ca.pem");
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      `/CN=${name}/O=Meridian`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  return {
    name,
    dir,
    caFile,
    caPem: readFileSync(caFile, "utf8"),
    issue(options) {
      const stem = options.name ?? `leaf-${randomBytes(6).toString("hex")}`;
      const hosts = options.usage === "client" ? (options.hosts ?? []) : [...new Set([...(options.hosts ?? []), ...LOOPBACK])];
      const alt = [...hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)), ...(options.uris ?? []).map((u) => `URI:${u}`)];
      const eku = { server: "serverAuth", client: "clientAuth", both: "serverAuth,clientAuth" }[options.usage];
      const ext = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        `extendedKeyUsage=${eku}`,
        ...(alt.length > 0 ? [`subjectAltName=${alt.join(",")}`] : []),
      ];
      writeFileSync(join(dir, `${stem}.ext`), `${ext.join("\n")}\n`);
      openssl(
        [
          "req",
          "-new",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          `${stem}.key`,
          "-out",
          `${stem}.csr`,
          "-subj",
          `/CN=${options.commonName}`,
        ],
        dir,
      );
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${stem}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-out",
          `${stem}.pem`,
          "-set_serial",
          `0x${randomBytes(12).toString("hex")}`,
          "-days",
          String(options.days ?? 2),
          "-extfile",
          `${stem}.ext`,
        ],
        dir,
      );
      const certFile = join(dir, `${stem}.pem`);
      const keyFile = join(dir, `${stem}.key`);
      return { certFile, keyFile, certPem: readFileSync(certFile, "utf8"), keyPem: readFileSync(keyFile, "utf8") };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

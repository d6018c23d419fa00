import { type Gateway, gatewayConfig, startGateway } from "@meridian/gateway";
import {
  createTestCa,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  TEST_KEYS,
  type TestCa,
  type TestCertificate,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../src/kit/exit.js";
import { meridian } from "./harness.js";

let nats: NatsServerHandle;
let gw: Gateway;
let ca: TestCa;
let other: TestCa;
let client: TestCertificate;
let url: string;

beforeAll(async () => {
  ca = createTestCa("CLI test CA");
  other = createTestCa("Another CA");
  const server = ca.issue({ commonName: "localhost", usage: "server" });
  client = ca.issue({ commonName: "operator", usage: "client" });
  nats = await startNatsServer();
  gw = await startForTest(startGateway, gatewayConfig, {
    NATS_URL: nats.url,
    TLS_CERT_FILE: server.certFile,
    TLS_KEY_FILE: server.keyFile,
    TLS_CLIENT_CA_FILE: ca.caFile,
    TLS_CLIENT_AUTH: "require",
  });
  url = gw.service.url.replace("http://", "https://");
});
afterAll(async () => {
  await gw?.stop();
  await nats?.stop();
  ca?.remove();
  other?.remove();
});

describe("TLS to the gateway", () => {
  const env = () => ({ MERIDIAN_GATEWAY_URL: url, MERIDIAN_API_KEY: TEST_KEYS.admin });
  const tlsFlags = () => ["--ca-file", ca.caFile, "--cert-file", client.certFile, "--key-file", client.keyFile];

  it.each(["connect", "grpc", "grpc-web"])(
    "verifies the gateway with --ca-file and presents a client certificate (--protocol %s)",
    async (protocol) => {
      const r = await meridian(["status", "-o", "json", "--protocol", protocol, ...tlsFlags()], env());
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).streams.length).toBeGreaterThan(0);
    },
  );

  it("takes the TLS files from the environment too", async () => {
    const r = await meridian(["routes", "list"], {
      ...env(),
      MERIDIAN_CA_FILE: ca.caFile,
      MERIDIAN_CERT_FILE: client.certFile,
      MERIDIAN_KEY_FILE: client.keyFile,
    });
    expect(r.code, r.stderr).toBe(0);
  });

  it("refuses a gateway whose certificate does not chain to --ca-file (exit 3, saying so)", async () => {
    const r = await meridian(["status", "--ca-file", other.caFile, "--cert-file", client.certFile, "--key-file", client.keyFile], env());
    expect(r.code, r.stderr).toBe(EXIT.unavailable);
    expect(r.stderr).toMatch(new RegExp(`^error: the certificate of ${url.replace(/[./]/g, "\\$&")} is not trusted .*--ca-file`));
  });

  it("--insecure skips the check, with a warning", async () => {
    const r = await meridian(["status", "-o", "json", "--insecure", "--cert-file", client.certFile, "--key-file", client.keyFile], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: --insecure: the certificate of .* is not verified/);
  });

  it("without the client certificate the gateway refuses the handshake (exit 3)", async () => {
    const r = await meridian(["status", "--ca-file", ca.caFile], env());
    expect(r.code, r.stderr).toBe(EXIT.unavailable);
    expect(r.stderr).toMatch(
      /^error: the TLS handshake with .* failed \(certificate required\); it asks for a client certificate that verifies: --cert-file and --key-file\n$/,
    );
  });

  it("a TLS file that cannot be read is a usage error naming the flag (exit 2)", async () => {
    const r = await meridian(["status", "--ca-file", "/nonexistent/ca.pem"], env());
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toBe("error: --ca-file: cannot read /nonexistent/ca.pem: ENOENT\n");
  });
});

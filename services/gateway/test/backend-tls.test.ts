/**
 * The gateway in front of a backend that serves TLS and requires client certificates: the gateway, started from its
 * settings, verifies the backend against BACKEND_CA_FILE and presents BACKEND_CERT_FILE; the backend sees the
 * gateway's certificate. Certificates come from a throwaway CA.
 */
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EndpointKind, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { authSettings, ConfigError, peerCertificateKey, type RunningService, serverAuth, startService } from "@meridian/service-kit";
import {
  createTestCa,
  type NatsServerHandle,
  startNatsServer,
  type TestCa,
  type TestCertificate,
  testCredential,
  testIdentitiesFile,
  testLogger,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

const logger = testLogger();

describe("gateway to a backend over TLS", () => {
  let nats: NatsServerHandle;
  let ca: TestCa;
  let otherCa: TestCa;
  let gatewayClient: TestCertificate;
  let gatewayServer: TestCertificate;
  let backend: RunningService;
  const gateways: Gateway[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    ca = createTestCa("Backend CA");
    otherCa = createTestCa("Another CA");
    const backendCert = ca.issue({ commonName: "omf-sender", usage: "server" });
    gatewayClient = ca.issue({ commonName: "gateway", usage: "client" });
    gatewayServer = ca.issue({ commonName: "localhost", usage: "server" });
    // The backend answers GetEndpoint with the client certificate it saw.
    backend = await startService({
      name: "omf-sender",
      port: 0,
      host: "127.0.0.1",
      logger,
      installSignalHandlers: false,
      // Who may call is authentication's business (tested with it); here the transport is under test.
      auth: serverAuth(z.object(authSettings).parse({ AUTH_MODE: "disabled" }), logger),
      tls: { certFile: backendCert.certFile, keyFile: backendCert.keyFile, clientCaFile: ca.caFile, clientAuth: "require" },
      routes: (router) =>
        router.service(OmfSenderService, {
          async getEndpoint(req, ctx) {
            const peer = ctx.values.get(peerCertificateKey);
            return { endpoint: { id: req.id, kind: EndpointKind.EDS, url: `peer:${peer?.commonName ?? "none"}` } };
          },
        }),
    });
  });
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await backend?.stop();
    await nats?.stop();
    ca?.remove();
    otherCa?.remove();
  });

  async function gateway(env: Record<string, string>): Promise<Gateway> {
    const gw = await startGateway(
      gatewayConfig.parse({
        PORT: "0",
        NATS_URL: nats.url,
        AUTH_IDENTITIES_FILE: testIdentitiesFile(),
        OMF_SENDER_URL: backend.url,
        ...env,
      }),
      logger,
      { installSignalHandlers: false },
    );
    gateways.push(gw);
    return gw;
  }

  const endpoints = (gw: Gateway) =>
    createClient(
      OmfSenderService,
      createGrpcTransport({ baseUrl: gw.service.url, interceptors: [testCredential()], nodeOptions: { ca: ca.caPem } }),
    );

  it("proxies over mTLS: the backend verifies the gateway's certificate, the gateway the backend's; the gateway's own port serves TLS too", async () => {
    expect(backend.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
    const gw = await gateway({
      BACKEND_CA_FILE: ca.caFile,
      BACKEND_CERT_FILE: gatewayClient.certFile,
      BACKEND_KEY_FILE: gatewayClient.keyFile,
      TLS_CERT_FILE: gatewayServer.certFile,
      TLS_KEY_FILE: gatewayServer.keyFile,
    });
    expect(gw.service.url).toMatch(/^https:/);
    const res = await endpoints(gw).getEndpoint({ id: "pi" });
    expect(res.endpoint).toMatchObject({ id: "pi", url: "peer:gateway" });
  });

  it("without a client certificate the backend refuses the gateway's connection: unavailable", async () => {
    const gw = await gateway({ BACKEND_CA_FILE: ca.caFile });
    await expect(endpoints(gw).getEndpoint({ id: "pi" }, { timeoutMs: 5000 })).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("a backend whose certificate does not chain to BACKEND_CA_FILE is refused by the gateway: unavailable", async () => {
    const stranger = otherCa.issue({ commonName: "gateway", usage: "client" });
    const gw = await gateway({ BACKEND_CA_FILE: otherCa.caFile, BACKEND_CERT_FILE: stranger.certFile, BACKEND_KEY_FILE: stranger.keyFile });
    await expect(endpoints(gw).getEndpoint({ id: "pi" }, { timeoutMs: 5000 })).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("settings that cannot work stop the start, naming them", async () => {
    const start = (env: Record<string, string>) => gateway(env);
    await expect(start({ OMF_SENDER_URL: "http://127.0.0.1:1", BACKEND_CA_FILE: ca.caFile })).rejects.toMatchObject({
      settings: ["BACKEND_CA_FILE"],
    });
    await expect(start({ BACKEND_CERT_FILE: gatewayClient.certFile })).rejects.toMatchObject({ settings: ["BACKEND_KEY_FILE"] });
    const missing = start({ BACKEND_CA_FILE: `${ca.dir}/absent.pem` });
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toMatchObject({ settings: ["BACKEND_CA_FILE"] });
    await expect(
      start({ BACKEND_CA_FILE: ca.caFile, BACKEND_CERT_FILE: gatewayClient.certFile, BACKEND_KEY_FILE: gatewayServer.keyFile }),
    ).rejects.toMatchObject({ settings: ["BACKEND_CERT_FILE", "BACKEND_KEY_FILE"] });
  });
});

import { type NatsServerHandle, startNatsServer, TEST_KEYS, testIdentitiesFile, testLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfig } from "../src/config.js";
import { startGateway } from "../src/service.js";

/**
 * /console/platforms.json: the platform services this gateway fronts, from its *_URL settings, so that the console's
 * Platforms page says a service is not available instead of calling it (an unfronted service's call is a 404).
 */
describe("the platform services the console may call", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  const start = (env: Record<string, string>) =>
    startGateway(gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, ...env }), testLogger(), {
      installSignalHandlers: false,
    });

  it("names exactly the services whose URL is set, without credentials; an unfronted one's call is unimplemented", async () => {
    // Backends are dialled on the first call, so addresses nobody listens on do here.
    const gw = await start({ OMNIA_READER_URL: "http://127.0.0.1:9", OCI_TWIN_MANAGER_URL: "http://127.0.0.1:9" });
    try {
      const res = await fetch(`${gw.service.url}/console/platforms.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(await res.json()).toEqual({ services: ["meridian.omnia.v1.OmniaReaderService", "meridian.oci.v1.OciTwinManagerService"] });
      const call = await fetch(`${gw.service.url}/meridian.iotc.v1.IotcBridgeService/ListApplications`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS.admin}` },
        body: "{}",
      });
      expect(call.status).toBe(404);
    } finally {
      await gw.stop();
    }
  });

  it("is an empty list when the gateway fronts none", async () => {
    const gw = await start({});
    try {
      expect(await (await fetch(`${gw.service.url}/console/platforms.json`)).json()).toEqual({ services: [] });
    } finally {
      await gw.stop();
    }
  });
});

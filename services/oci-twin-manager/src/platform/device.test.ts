import { json, type RecordingServer, startRecordingServer } from "@meridian/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_DEVICE_PAYLOAD_BYTES } from "./config.js";
import { checkEndpoint, createDeviceEndpointClient } from "./device.js";
import { OciInvalidArgumentError, OciNotAuthenticatedError, OciThrottledError, OciUnavailableError } from "./errors.js";
import type { DeviceEndpointClient, IotDomain } from "./types.js";

const DOMAIN: IotDomain = {
  id: "ocid1.iotdomain.oc1..d1",
  iotDomainGroupId: "ocid1.iotdomaingroup.oc1..g1",
  displayName: "d",
  lifecycleState: "ACTIVE",
  deviceHost: "dshort.device.iot.eu-frankfurt-1.oci.oraclecloud.com",
};
const DEVICE = { externalKey: "m5-env-1", secret: "s3cret-value" };

let server: RecordingServer;
let client: DeviceEndpointClient;

beforeEach(async () => {
  server = await startRecordingServer(() => ({ status: 202 }));
  client = createDeviceEndpointClient(DOMAIN, { auth: { kind: "instance_principal" }, deviceUrl: server.url });
});

afterEach(async () => {
  await client.close?.();
  await server.close();
});

describe("endpoint", () => {
  it.each([
    ["", "1 to 1024"],
    ["x".repeat(1025), "1 to 1024"],
    ["/iot/v1/telemetry", 'start with "/"'],
    ["iot/../admin", '".."'],
    ["..", '".."'],
    ["iot/v1/telemetry?x=1", "URL path characters"],
    ["iot/v1/tele metry", "URL path characters"],
    ["iot/v1/telemetry#f", "URL path characters"],
    ["iot//telemetry", "empty segment"],
    ["iot/v1/", "empty segment"],
  ])("refuses %j (field endpoint)", (endpoint, problem) => {
    let err: unknown;
    try {
      checkEndpoint(endpoint);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OciInvalidArgumentError);
    expect(err).toMatchObject({ field: "endpoint" });
    expect((err as Error).message).toContain(problem);
  });

  it.each(["iot/v1/telemetry", "telemetry", "a".repeat(1024), "iot/v1/cmd:reply;v=1", "iot/%7Euser"])("takes %j", (endpoint) => {
    expect(checkEndpoint(endpoint)).toBe(endpoint);
  });
});

describe("post", () => {
  it("posts the JSON payload to <device host>/<endpoint> as the device (Basic externalKey:secret)", async () => {
    await client.post(DEVICE, "iot/v1/telemetry", { humidity: 56.1, count: 5, time: 1764496800123456 });
    const [req] = server.requests;
    expect(req).toMatchObject({ method: "POST", path: "/iot/v1/telemetry" });
    expect(req?.headers.authorization).toBe(`Basic ${Buffer.from("m5-env-1:s3cret-value").toString("base64")}`);
    expect(req?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req!.text)).toEqual({ humidity: 56.1, count: 5, time: 1764496800123456 });
  });

  it("refuses a bad endpoint, a payload over 256 KiB and an external key with ':' before sending", async () => {
    await expect(client.post(DEVICE, "/x", {})).rejects.toMatchObject({ field: "endpoint" });
    await expect(client.post(DEVICE, "x", { blob: "a".repeat(MAX_DEVICE_PAYLOAD_BYTES) })).rejects.toMatchObject({ field: "payload" });
    await expect(client.post({ externalKey: "a:b", secret: "s" }, "x", {})).rejects.toMatchObject({ field: "externalKey" });
    await expect(client.post({ externalKey: "a", secret: "" }, "x", {})).rejects.toMatchObject({ field: "secret" });
    expect(server.requests).toHaveLength(0);
  });

  it("takes a payload of exactly 256 KiB", async () => {
    const filler = "a".repeat(MAX_DEVICE_PAYLOAD_BYTES - '{"b":""}'.length);
    await client.post(DEVICE, "x", { b: filler });
    expect(server.requests[0]?.raw.length).toBe(MAX_DEVICE_PAYLOAD_BYTES);
  });

  it("refuses a payload over 256 KiB by its UTF-8 bytes, not its characters", async () => {
    // 2 bytes per "é": about 128 Ki characters, over 256 KiB of UTF-8.
    const err = await client.post(DEVICE, "x", { b: "é".repeat(MAX_DEVICE_PAYLOAD_BYTES / 2) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ field: "payload" });
    expect((err as Error).message).toContain(`${MAX_DEVICE_PAYLOAD_BYTES + 8} bytes of JSON`);
    expect(server.requests).toHaveLength(0);
  });

  it("posts with each credentials object's own secret, the same object again included", async () => {
    await client.post(DEVICE, "x", { a: 1 });
    await client.post(DEVICE, "x", { a: 2 });
    await client.post({ externalKey: "m5-env-1", secret: "rotated" }, "x", { a: 3 });
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from("m5-env-1:s3cret-value").toString("base64")}`,
      `Basic ${Buffer.from("m5-env-1:s3cret-value").toString("base64")}`,
      `Basic ${Buffer.from("m5-env-1:rotated").toString("base64")}`,
    ]);
    // A refused object is refused again, not remembered as checked.
    const bad = { externalKey: "a:b", secret: "s" };
    await expect(client.post(bad, "x", {})).rejects.toMatchObject({ field: "externalKey" });
    await expect(client.post(bad, "x", {})).rejects.toMatchObject({ field: "externalKey" });
    await expect(client.post(DEVICE, "/x", {})).rejects.toMatchObject({ field: "endpoint" });
    expect(server.requests).toHaveLength(3);
  });

  it("maps a refused device secret to OciNotAuthenticatedError without quoting it", async () => {
    server.handler = () => json(401, { code: "NotAuthenticated", message: "bad credentials" });
    const err = await client.post(DEVICE, "iot/v1/telemetry", { a: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciNotAuthenticatedError);
    expect((err as Error).message).not.toContain("s3cret");
    expect((err as Error).message).toContain("m5-env-1");
  });

  it("maps 429 (Retry-After), 5xx and a reset connection to retryable errors", async () => {
    server.handler = () => json(429, {}, { "retry-after": "2" });
    await expect(client.post(DEVICE, "x", {})).rejects.toMatchObject({ name: "OciThrottledError", retryAfterMs: 2000 });
    server.handler = () => json(502, {});
    await expect(client.post(DEVICE, "x", {})).rejects.toBeInstanceOf(OciUnavailableError);
    server.handler = () => ({ reset: true });
    await expect(client.post(DEVICE, "x", {})).rejects.toMatchObject({ name: "OciUnavailableError", retryable: true });
    expect(OciThrottledError).toBeDefined();
  });

  it("maps a 400 to OciInvalidArgumentError on the payload", async () => {
    server.handler = () => json(400, { code: "InvalidParameter", message: "not JSON" });
    await expect(client.post(DEVICE, "x", {})).rejects.toMatchObject({ name: "OciInvalidArgumentError", field: "payload" });
  });

  it("ends with the caller's abort reason", async () => {
    server.handler = () => ({ hang: true });
    const abort = new AbortController();
    const pending = client.post(DEVICE, "x", {}, abort.signal);
    setTimeout(() => abort.abort(new Error("shutting down")), 50);
    await expect(pending).rejects.toThrow("shutting down");
  });

  it("needs a device host or deviceUrl", () => {
    const { deviceHost: _, ...noHost } = DOMAIN;
    expect(() => createDeviceEndpointClient(noHost, { auth: { kind: "instance_principal" } })).toThrow(
      expect.objectContaining({ field: "iotDomain.deviceHost" }),
    );
  });
});

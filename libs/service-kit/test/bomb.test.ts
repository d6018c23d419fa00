import { gzipSync } from "node:zlib";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { TEST_KEYS, testCredential } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "./harness.js";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc?.stop();
});

/**
 * 1 GiB of zeros as gzip: one 16 MiB member compressed once and repeated 64 times (gzip readers take concatenated
 * members as one stream), about 1 MB on the wire.
 */
function gzipBomb(): Buffer {
  const member = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
  return Buffer.concat(Array.from({ length: 64 }, () => member));
}

describe("a decompression bomb", () => {
  it("a gzip request body that inflates to 1 GiB is refused at the read limit (resource_exhausted); the server stays up", async () => {
    const bomb = gzipBomb();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    const started = performance.now();
    const res = await fetch(`${svc.url}/meridian.route.v1.RouteService/GetRoute`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${TEST_KEYS.admin}` },
      body: bomb,
    });
    const ms = performance.now() - started;
    clearInterval(sampler);
    const body = (await res.json()) as { code: string; message: string };
    expect(res.status).toBe(429);
    expect(body.code).toBe("resource_exhausted");
    // The server inflated at most its read limit (4 MiB), not the gigabyte.
    expect(rssPeak - rssBefore).toBeLessThan(200 * 1024 * 1024);
    const client = createClient(RouteService, createGrpcTransport({ baseUrl: svc.url, interceptors: [testCredential()] }));
    expect((await client.getRoute({ id: "after" })).route?.id).toBe("after");
    console.log(
      JSON.stringify({
        decompressionBomb: {
          wireBytes: bomb.length,
          inflatesTo: 1024 ** 3,
          refusedInMs: Math.round(ms),
          rssGrowthMiB: Math.round((rssPeak - rssBefore) / 2 ** 20),
        },
      }),
    );
  }, 30_000);
});

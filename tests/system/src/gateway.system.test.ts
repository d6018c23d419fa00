import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { TEST_KEYS, testCredential } from "@meridian/testing";
import { Network, type StartedNetwork, type StartedTestContainer } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, REPO_ROOT, startNats, startService } from "./harness.js";

/**
 * An independent gRPC client: @grpc/grpc-js with the .proto files loaded at run time, sharing no
 * generated code with the gateway.
 */
function grpcTelemetryClient(address: string) {
  const definition = protoLoader.loadSync("meridian/telemetry/v1/telemetry_service.proto", {
    includeDirs: [join(REPO_ROOT, "proto"), join(REPO_ROOT, "proto", "third_party")],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    meridian: { telemetry: { v1: { TelemetryService: grpc.ServiceClientConstructor } } };
  };
  const Client = pkg.meridian.telemetry.v1.TelemetryService;
  const client = new Client(address, grpc.credentials.createInsecure());
  // A client made from a proto definition has a method per RPC, looked up by name.
  type PublishResult = { eventIds: string[]; storedMessages: number; duplicateMessages: number };
  const publishMethod = client.publish?.bind(client) as
    | ((request: unknown, metadata: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: PublishResult) => void) => void)
    | undefined;
  if (!publishMethod) throw new Error("TelemetryService has no Publish method in the loaded proto");
  // A publisher's key: the role telemetry:publish and nothing else.
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${TEST_KEYS["telemetry:publish"]}`);
  const publish = (request: unknown) =>
    new Promise<PublishResult>((resolve, reject) => publishMethod(request, metadata, (err, res) => (err ? reject(err) : resolve(res))));
  return { client, publish };
}

describe("system: NATS + gateway containers", () => {
  let network: StartedNetwork;
  let nats: StartedTestContainer;
  let gateway: StartedTestContainer;

  beforeAll(async () => {
    network = await new Network().start();
    nats = await startNats(network);
    gateway = await startService(network, "services/gateway", "gateway", { NATS_URL: "nats://nats:4222" });
  });
  afterAll(async () => {
    await gateway?.stop();
    await nats?.stop();
    await network?.stop();
  });

  it("delivers every event published over gRPC exactly once and in order per device to a Connect subscriber", async () => {
    const url = baseUrl(gateway);
    const { client, publish } = grpcTelemetryClient(`${gateway.getHost()}:${gateway.getMappedPort(8080)}`);
    const devices = ["press-1", "press-2", "oven.3", "pump 4", "valve/5"];
    const batches = 10;
    const perDevice = 40;

    const subscriber = createClient(
      TelemetryService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: url, httpVersion: "1.1" }),
    );
    const ac = new AbortController();
    const received = new Map<string, string[]>();
    let count = 0;
    const expected = devices.length * perDevice;
    const start = new Date(Date.now() - 5_000);
    const reading = (async () => {
      try {
        for await (const r of subscriber.subscribe(
          { filter: { connection: "system-test" }, startTime: timestampFromDate(start) },
          { signal: ac.signal },
        )) {
          const device = r.event!.source!.device;
          received.set(device, [...(received.get(device) ?? []), r.event!.id]);
          if (++count >= expected) {
            // Linger briefly: a duplicate would arrive right behind.
            setTimeout(() => ac.abort(), 1500);
          }
        }
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      }
    })();

    const perBatch = perDevice / batches;
    let events: unknown[] = [];
    for (let b = 0; b < batches; b++) {
      events = [];
      for (const device of devices) {
        for (let i = 0; i < perBatch; i++) {
          const n = b * perBatch + i;
          events.push({
            id: `${device}#${n}`,
            source: { platform: "PLATFORM_API", connection: "system-test", device },
            observedTime: { seconds: String(1_700_000_000 + n), nanos: 0 },
            points: [{ name: "value", doubleValue: n, unit: "bar" }],
          });
        }
      }
      const res = await publish({ events });
      expect(res.eventIds).toHaveLength(events.length);
      // One connection: every device's events of the call in one bus message.
      expect(res.storedMessages).toBe(1);
    }
    // Publishing the last batch again (a client retry) must not deliver anything twice.
    const retried = await publish({ events });
    expect([retried.storedMessages, retried.duplicateMessages]).toEqual([0, 1]);
    client.close();

    await reading;
    expect(count).toBe(expected);
    for (const device of devices) {
      expect(received.get(device)).toEqual(Array.from({ length: perDevice }, (_, n) => `${device}#${n}`));
    }
  });
});

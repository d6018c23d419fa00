import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { create, getOption } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as reflection from "@meridian/contracts/grpc/reflection/v1/reflection_pb";
import { access } from "@meridian/contracts/meridian/auth/v1/access_pb";
import { DeadLetterService } from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { OciTwinManagerService } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { OmniaReaderService } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type Gateway, gatewayConfig, startGateway } from "@meridian/gateway";
import { type IdigiListener, idigiListenerConfig, startIdigiListener } from "@meridian/idigi-listener";
import { type IotcBridge, iotcBridgeConfig, startIotcBridge } from "@meridian/iotc-bridge";
import { type OciTwinManager, ociTwinManagerConfig, startOciTwinManager } from "@meridian/oci-twin-manager";
import { OciUnavailableError } from "@meridian/oci-twin-manager/platform";
import { type OmfSender, omfSenderConfig, startOmfSender } from "@meridian/omf-sender";
import { type OmniaReader, omniaReaderConfig, startOmniaReader } from "@meridian/omnia-reader";
import { OmniaServerError } from "@meridian/omnia-reader/platform";
import {
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  TEST_KEYS,
  TEST_ROLES,
  type TestRole,
  testTransport,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Every RPC of every service, through the gateway and directly on the backend: no credentials → unauthenticated, a
 * key without the RPC's role → permission_denied, a key with just that role → the same answer the administrator gets
 * (the call reached the handler). The services run in this process, over real sockets, against a real nats-server.
 * The list of services comes from each server's own reflection, so an RPC added later is covered without an edit.
 */
const CONTRACTS: DescService[] = [
  TelemetryService,
  RouteService,
  StatusService,
  DeadLetterService,
  OmfSenderService,
  IdigiListenerService,
  OmniaReaderService,
  IotcBridgeService,
  OciTwinManagerService,
];
const BY_NAME = new Map(CONTRACTS.map((s) => [s.typeName, s]));
const UNCHECKED = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

type Outcome = "ok" | "streaming" | Code;

/** One call with an empty request: its code, "ok", or for a stream "streaming" when it is still open after a moment. */
async function call(url: string, service: DescService, method: DescMethod, credential: string | null): Promise<Outcome> {
  const client = createClient(service, testTransport(url, { credential })) as unknown as Record<
    string,
    (req: unknown, opts: object) => unknown
  >;
  const fn = client[method.localName]!;
  const request = create(method.input);
  try {
    if (method.methodKind === "unary") {
      await fn(request, { timeoutMs: 10_000 });
      return "ok";
    }
    const ac = new AbortController();
    const it = (fn(request, { signal: ac.signal }) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const first = await Promise.race([
      it.next().then(() => "ok" as const),
      new Promise<"streaming">((r) => setTimeout(() => r("streaming"), 500)),
    ]);
    ac.abort();
    return first;
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

/** A role that does not grant `required` ("<area>:admin" grants "<area>:read"). */
function otherRole(required: string): TestRole {
  return TEST_ROLES.find((r) => r !== required && !(required.endsWith(":read") && r === required.replace(/:read$/, ":admin")))!;
}

async function servicesOf(url: string): Promise<DescService[]> {
  const client = createClient(reflection.ServerReflection, testTransport(url));
  for await (const res of client.serverReflectionInfo(
    (async function* () {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
    })(),
  )) {
    if (res.messageResponse.case !== "listServicesResponse") throw new Error("no service list");
    const names = res.messageResponse.value.service.map((s) => s.name).filter((n) => !UNCHECKED.has(n));
    const unknown = names.filter((n) => !BY_NAME.has(n));
    if (unknown.length > 0) throw new Error(`services without a contract in this test: ${unknown.join(", ")}`);
    return names.map((n) => BY_NAME.get(n)!);
  }
  throw new Error("no reflection answer");
}

describe("system: every RPC is authenticated and authorised by its role, on the gateway and on each backend", () => {
  let nats: NatsServerHandle;
  let omf: OmfSender;
  let idigi: IdigiListener;
  let omnia: OmniaReader;
  let iotc: IotcBridge;
  let oci: OciTwinManager;
  let gateway: Gateway;

  beforeAll(async () => {
    nats = await startNatsServer();
    omf = await startForTest(startOmfSender, omfSenderConfig, { NATS_URL: nats.url });
    // No platform behind it: its calls fail after authorisation, the same way for every caller.
    idigi = await startForTest(startIdigiListener, idigiListenerConfig, {
      NATS_URL: nats.url,
      IDIGI_URL: "https://127.0.0.1:9",
      IDIGI_USERNAME: "nobody",
      IDIGI_PASSWORD: "nothing",
    });
    // No Omnia behind it either: every Omnia call fails after authorisation as an outage, the same for every caller.
    const noOmnia = new Proxy({}, { get: () => () => Promise.reject(new OmniaServerError("no Omnia in this test", { status: 503 })) });
    omnia = await startForTest(startOmniaReader, omniaReaderConfig, { NATS_URL: nats.url }, { api: noOmnia as never });
    // No IoT Central application exists: device calls fail after authorisation with not_found, the same for every caller.
    iotc = await startForTest(startIotcBridge, iotcBridgeConfig, { NATS_URL: nats.url });
    // No OCI behind it: every OCI call fails after authorisation as an outage, the same for every caller.
    const noOci = new Proxy({}, { get: () => () => Promise.reject(new OciUnavailableError("no OCI in this test")) });
    oci = await startForTest(
      startOciTwinManager,
      ociTwinManagerConfig,
      { NATS_URL: nats.url, OCI_IOT_DOMAIN_ID: "ocid1.iotdomain.oc1.eu-frankfurt-1.access" },
      { client: noOci as never, createDataApi: () => noOci as never, createDeviceEndpoint: () => noOci as never },
    );
    gateway = await startForTest(startGateway, gatewayConfig, {
      NATS_URL: nats.url,
      OMF_SENDER_URL: omf.service.url,
      IDIGI_LISTENER_URL: idigi.service.url,
      OMNIA_READER_URL: omnia.service.url,
      IOTC_BRIDGE_URL: iotc.service.url,
      OCI_TWIN_MANAGER_URL: oci.service.url,
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await oci?.stop();
    await iotc?.stop();
    await omnia?.stop();
    await idigi?.stop();
    await omf?.stop();
    await nats?.stop();
  });

  it("covers every method the servers serve, each with the role its contract declares", async () => {
    const targets = {
      gateway: gateway.service.url,
      "omf-sender": omf.service.url,
      "idigi-listener": idigi.service.url,
      "omnia-reader": omnia.service.url,
      "iotc-bridge": iotc.service.url,
      "oci-twin-manager": oci.service.url,
    };
    const covered = new Set<string>();
    const failures: string[] = [];
    let checks = 0;
    for (const [target, url] of Object.entries(targets)) {
      for (const service of await servicesOf(url)) {
        for (const method of service.methods) {
          const role = getOption(method, access).role;
          const where = `${target} ${service.name}.${method.name} (${role})`;
          const none = await call(url, service, method, null);
          const wrong = await call(url, service, method, TEST_KEYS[otherRole(role)]);
          const right = await call(url, service, method, TEST_KEYS[role as TestRole]);
          const admin = await call(url, service, method, TEST_KEYS.admin);
          checks += 4;
          if (none !== Code.Unauthenticated) failures.push(`${where}: without credentials got ${String(none)}`);
          if (wrong !== Code.PermissionDenied) failures.push(`${where}: with ${otherRole(role)} got ${String(wrong)}`);
          if (right === Code.Unauthenticated || right === Code.PermissionDenied || right !== admin) {
            failures.push(`${where}: with its role got ${String(right)}, the administrator ${String(admin)}`);
          }
          covered.add(`${service.typeName}/${method.name}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // Every RPC of every contract is served somewhere and was checked.
    const all = CONTRACTS.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
    expect([...covered].sort()).toEqual(all.sort());
    console.log(JSON.stringify({ accessMatrix: { rpcs: all.length, checks } }));
  }, 120_000);
});

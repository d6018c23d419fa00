import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as v1 from "@meridian/contracts/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@meridian/contracts/grpc/reflection/v1alpha/reflection_pb";
import { TEST_KEYS, testCredential } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "./harness.js";

const run = promisify(execFile);

function findBuf(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "node_modules", ".bin", "buf");
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error("buf CLI not found in any node_modules/.bin above this package");
    dir = up;
  }
}

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(() => svc.stop());

const SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "meridian.route.v1.RouteService",
  "meridian.telemetry.v1.TelemetryService",
];

/** Sends the requests on one v1alpha stream and returns the answers in order. */
async function askAlpha(requests: v1alpha.ServerReflectionRequest["messageRequest"][]): Promise<v1alpha.ServerReflectionResponse[]> {
  const client = createClient(v1alpha.ServerReflection, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
  async function* input() {
    for (const messageRequest of requests) yield create(v1alpha.ServerReflectionRequestSchema, { host: "", messageRequest });
  }
  const out: v1alpha.ServerReflectionResponse[] = [];
  for await (const res of client.serverReflectionInfo(input())) out.push(res);
  return out;
}

async function askV1(messageRequest: v1.ServerReflectionRequest["messageRequest"]): Promise<v1.ServerReflectionResponse> {
  const client = createClient(v1.ServerReflection, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
  async function* input() {
    yield create(v1.ServerReflectionRequestSchema, { host: "", messageRequest });
  }
  for await (const res of client.serverReflectionInfo(input())) return res;
  throw new Error("no answer");
}

function fileNames(res: { messageResponse: { case: string | undefined; value?: unknown } }): string[] {
  expect(res.messageResponse.case).toBe("fileDescriptorResponse");
  const files = (res.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto;
  return files.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
}

describe("server reflection", () => {
  it("buf curl --list-services lists every registered service (reflection over h2c)", async () => {
    const { stdout } = await run(
      findBuf(),
      ["curl", "--http2-prior-knowledge", "--reflect-header", `authorization: Bearer ${TEST_KEYS.admin}`, "--list-services", svc.url],
      { timeout: 30_000 },
    );
    expect(stdout.trim().split("\n").sort()).toEqual(SERVICES);
  }, 30_000);

  it("buf curl can call a method using only the schema it got through reflection", async () => {
    const { stdout } = await run(
      findBuf(),
      [
        "curl",
        "--http2-prior-knowledge",
        "-H",
        `authorization: Bearer ${TEST_KEYS.admin}`,
        "--reflect-header",
        `authorization: Bearer ${TEST_KEYS.admin}`,
        "--protocol",
        "grpc",
        "-d",
        '{"id":"r7"}',
        `${svc.url}/meridian.route.v1.RouteService/GetRoute`,
      ],
      { timeout: 30_000 },
    );
    expect(JSON.parse(stdout)).toMatchObject({ route: { id: "r7", sink: { platform: "PLATFORM_OMF", target: "t" } } });
  }, 30_000);

  it("v1alpha: file_containing_symbol for a service returns its file first, then its imports, transitively", async () => {
    const [res] = await askAlpha([{ case: "fileContainingSymbol", value: "meridian.route.v1.RouteService" }]);
    const names = fileNames(res!);
    expect(names[0]).toBe("meridian/route/v1/route_service.proto");
    expect(names.sort()).toEqual(
      [
        "google/api/field_behavior.proto",
        "google/protobuf/descriptor.proto",
        "google/protobuf/timestamp.proto",
        "meridian/auth/v1/access.proto",
        "meridian/route/v1/route.proto",
        "meridian/route/v1/route_service.proto",
        "meridian/telemetry/v1/telemetry.proto",
      ].sort(),
    );
    expect(res!.originalRequest?.messageRequest).toEqual({ case: "fileContainingSymbol", value: "meridian.route.v1.RouteService" });
  });

  it("v1alpha: several requests on one stream, methods, messages, nested and imported types, enums, files", async () => {
    const answers = await askAlpha([
      { case: "listServices", value: "" },
      { case: "fileContainingSymbol", value: "meridian.route.v1.RouteService.GetRoute" },
      { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.ServingStatus" },
      { case: "fileContainingSymbol", value: "meridian.telemetry.v1.Platform" },
      { case: "fileContainingSymbol", value: "meridian.route.v1.SinkTarget" },
      { case: "fileByFilename", value: "meridian/telemetry/v1/telemetry.proto" },
      { case: "fileContainingSymbol", value: "no.such.Thing" },
      { case: "fileByFilename", value: "no/such.proto" },
    ]);
    expect(answers).toHaveLength(8);
    const [list, method, nested, enumAnswer, message, byName, noSymbol, noFile] = answers;
    expect(list!.messageResponse.case).toBe("listServicesResponse");
    const services = list!.messageResponse.value as v1alpha.ListServiceResponse;
    expect(services.service.map((s) => s.name)).toEqual(SERVICES);
    expect(fileNames(method!)[0]).toBe("meridian/route/v1/route_service.proto");
    expect(fileNames(nested!)).toEqual(["grpc/health/v1/health.proto"]);
    expect(fileNames(enumAnswer!)[0]).toBe("meridian/telemetry/v1/telemetry.proto");
    expect(fileNames(message!)[0]).toBe("meridian/route/v1/route.proto");
    expect(fileNames(byName!)).toEqual(
      expect.arrayContaining([
        "meridian/telemetry/v1/telemetry.proto",
        "google/api/field_behavior.proto",
        "google/protobuf/timestamp.proto",
      ]),
    );
    for (const res of [noSymbol!, noFile!]) {
      expect(res.messageResponse.case).toBe("errorResponse");
      expect((res.messageResponse.value as v1alpha.ErrorResponse).errorCode).toBe(Code.NotFound);
    }
  });

  it("v1: extensions — known one is found, unknown one is NOT_FOUND in the stream; extension numbers of a type", async () => {
    const found = await askV1({
      case: "fileContainingExtension",
      value: create(v1.ExtensionRequestSchema, { containingType: "google.protobuf.FieldOptions", extensionNumber: 1052 }),
    });
    expect(fileNames(found)[0]).toBe("google/api/field_behavior.proto");

    const missing = await askV1({
      case: "fileContainingExtension",
      value: create(v1.ExtensionRequestSchema, { containingType: "meridian.route.v1.Route", extensionNumber: 99 }),
    });
    expect(missing.messageResponse.case).toBe("errorResponse");
    expect((missing.messageResponse.value as v1.ErrorResponse).errorCode).toBe(Code.NotFound);

    const numbers = await askV1({ case: "allExtensionNumbersOfType", value: "google.protobuf.FieldOptions" });
    expect(numbers.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "google.protobuf.FieldOptions", extensionNumber: [1052] },
    });
  });
});

import { create, type DescFile, type DescMessage, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import * as v1 from "@meridian/contracts/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@meridian/contracts/grpc/reflection/v1alpha/reflection_pb";

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), written by hand because connect-es has none.
 * It answers from the descriptors the generated code embeds: the file of every registered service and
 * the files those import, transitively. This is what `grpcurl list`, `buf curl --list-services` and
 * grpcui ask for. Failures are answered in the stream as error_response, as the protocol wants.
 */

/** The request as both versions spell it (they are the same message in two packages). */
interface AnyReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

/** The response as both versions accept it for create(). */
type AnyReflectionResponse = {
  validHost: string;
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };
};

export interface DescriptorIndex {
  services: string[];
  fileByName(name: string): DescFile | undefined;
  fileBySymbol(symbol: string): DescFile | undefined;
  fileByExtension(extendee: string, number: number): DescFile | undefined;
  extensionNumbers(extendee: string): number[] | undefined;
  /** The file first, then every file it imports, transitively, each once, serialized. */
  serialize(file: DescFile): Uint8Array[];
}

export function createDescriptorIndex(services: readonly DescService[]): DescriptorIndex {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const extensions = new Map<string, Map<number, DescFile>>();
  const messages = new Set<string>();
  const serialized = new Map<string, Uint8Array>();

  const addMessage = (file: DescFile, m: DescMessage) => {
    symbols.set(m.typeName, file);
    messages.add(m.typeName);
    for (const f of m.fields) symbols.set(`${m.typeName}.${f.name}`, file);
    for (const o of m.oneofs) symbols.set(`${m.typeName}.${o.name}`, file);
    for (const n of m.nestedMessages) addMessage(file, n);
    for (const e of m.nestedEnums) symbols.set(e.typeName, file);
    for (const x of m.nestedExtensions) addExtension(file, x.typeName, x.extendee.typeName, x.number);
  };
  const addExtension = (file: DescFile, typeName: string, extendee: string, number: number) => {
    symbols.set(typeName, file);
    const byNumber = extensions.get(extendee) ?? new Map<number, DescFile>();
    extensions.set(extendee, byNumber);
    byNumber.set(number, file);
  };
  const addFile = (file: DescFile) => {
    const name = file.proto.name;
    if (files.has(name)) return;
    files.set(name, file);
    for (const m of file.messages) addMessage(file, m);
    for (const e of file.enums) symbols.set(e.typeName, file);
    for (const x of file.extensions) addExtension(file, x.typeName, x.extendee.typeName, x.number);
    for (const s of file.services) {
      symbols.set(s.typeName, file);
      for (const m of s.methods) symbols.set(`${s.typeName}.${m.name}`, file);
    }
    for (const dep of file.dependencies) addFile(dep);
  };
  for (const s of services) addFile(s.file);

  const bytesOf = (file: DescFile): Uint8Array => {
    let b = serialized.get(file.proto.name);
    if (!b) {
      b = toBinary(FileDescriptorProtoSchema, file.proto);
      serialized.set(file.proto.name, b);
    }
    return b;
  };

  return {
    services: [...new Set(services.map((s) => s.typeName))].sort(),
    fileByName: (name) => files.get(name),
    fileBySymbol: (symbol) => symbols.get(symbol.startsWith(".") ? symbol.slice(1) : symbol),
    fileByExtension: (extendee, number) => extensions.get(extendee)?.get(number),
    extensionNumbers: (extendee) => {
      if (!messages.has(extendee)) return undefined;
      return [...(extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
    },
    serialize(file) {
      const out: Uint8Array[] = [];
      const seen = new Set<string>();
      const visit = (f: DescFile) => {
        if (seen.has(f.proto.name)) return;
        seen.add(f.proto.name);
        out.push(bytesOf(f));
        for (const d of f.dependencies) visit(d);
      };
      visit(file);
      return out;
    },
  };
}

export function answerReflection(index: DescriptorIndex, req: AnyReflectionRequest): AnyReflectionResponse {
  const error = (code: Code, message: string): AnyReflectionResponse => ({
    validHost: req.host,
    messageResponse: { case: "errorResponse", value: { errorCode: code, errorMessage: message } },
  });
  const files = (file: DescFile | undefined, what: string): AnyReflectionResponse =>
    file
      ? { validHost: req.host, messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.serialize(file) } } }
      : error(Code.NotFound, `${what} not found`);
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      return {
        validHost: req.host,
        messageResponse: { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } },
      };
    case "fileByFilename":
      return files(index.fileByName(r.value), `file ${JSON.stringify(r.value)}`);
    case "fileContainingSymbol":
      return files(index.fileBySymbol(r.value), `symbol ${JSON.stringify(r.value)}`);
    case "fileContainingExtension":
      return files(
        index.fileByExtension(r.value.containingType, r.value.extensionNumber),
        `extension ${r.value.extensionNumber} of ${JSON.stringify(r.value.containingType)}`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      if (numbers === undefined) return error(Code.NotFound, `type ${JSON.stringify(r.value)} not found`);
      return {
        validHost: req.host,
        messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } },
      };
    }
    default:
      return error(Code.InvalidArgument, "empty or unknown reflection request");
  }
}

/**
 * Registers grpc.reflection.v1.ServerReflection and grpc.reflection.v1alpha.ServerReflection.
 * `services` is called on the first request, so it can list services registered after this call
 * (reflection itself included).
 */
export function registerReflectionServices(router: ConnectRouter, services: () => readonly DescService[]): void {
  let index: DescriptorIndex | undefined;
  const getIndex = () => {
    index ??= createDescriptorIndex(services());
    return index;
  };
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(v1.ServerReflectionResponseSchema, { ...answerReflection(getIndex(), req), originalRequest: req });
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(v1alpha.ServerReflectionResponseSchema, { ...answerReflection(getIndex(), req), originalRequest: req });
      }
    },
  });
}

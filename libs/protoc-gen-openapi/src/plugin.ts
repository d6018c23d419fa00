/**
 * The buf plugin: one OpenAPI document for every file buf hands over (run it with `strategy: all`, so that is every
 * file of the module at once). Options: `file=<name>` (default meridian.openapi.json), `title=`, `version=`,
 * `packages=<prefix>` (repeatable; only services of those packages).
 */
import { create, createFileRegistry } from "@bufbuild/protobuf";
import {
  type CodeGeneratorRequest,
  type CodeGeneratorResponse,
  CodeGeneratorResponse_Feature,
  CodeGeneratorResponseSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import type { Plugin } from "@bufbuild/protoplugin";
import { buildDocument, type DocumentOptions } from "./document.js";

export interface PluginOptions extends DocumentOptions {
  file: string;
}

export function parseOptions(parameter: string): PluginOptions {
  const options: PluginOptions = { file: "meridian.openapi.json", title: "Meridian API", version: "v1", packages: [] };
  for (const pair of parameter.split(",").filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    const key = eq === -1 ? pair : pair.slice(0, eq);
    const value = eq === -1 ? "" : pair.slice(eq + 1);
    switch (key) {
      case "file":
      case "title":
      case "version":
        if (value === "") throw new Error(`protoc-gen-openapi: option ${key} needs a value`);
        options[key] = value;
        break;
      case "packages":
        if (value === "") throw new Error("protoc-gen-openapi: option packages needs a package prefix");
        options.packages.push(value);
        break;
      default:
        throw new Error(`protoc-gen-openapi: unknown option "${key}" (known: file, title, version, packages)`);
    }
  }
  return options;
}

export const openApiPlugin: Plugin = {
  name: "protoc-gen-openapi",
  version: "v0.1.0",
  run(request: CodeGeneratorRequest): CodeGeneratorResponse {
    const options = parseOptions(request.parameter);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
    const files = request.fileToGenerate.map((name) => {
      const file = registry.getFile(name);
      if (!file) throw new Error(`protoc-gen-openapi: ${name} is to be generated but was not given`);
      return file;
    });
    const document = buildDocument(files, registry, options);
    return create(CodeGeneratorResponseSchema, {
      supportedFeatures: BigInt(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL),
      file: [{ name: options.file, content: `${JSON.stringify(document, null, 2)}\n` }],
    });
  },
};

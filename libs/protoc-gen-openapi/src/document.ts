/**
 * The OpenAPI 3.1 document of the services in the given files, as the gateway serves them over the Connect protocol:
 * every RPC is POST /<package>.<Service>/<Method> with the request message as JSON, side-effect-free unary RPCs also
 * GET with the message in the query (Connect GET), server streams in Connect's enveloped streaming form.
 */
import { type DescFile, type DescMethod, type DescService, getOption, hasOption, type Registry } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import { commentText, type Schema, SchemaBuilder, schemaRef } from "./schema.js";

export interface DocumentOptions {
  /** info.title. */
  title: string;
  /** info.version. */
  version: string;
  /** Only services whose package starts with one of these (empty: every service). */
  packages: string[];
}

/** The Connect error body (https://connectrpc.com/docs/protocol/#error-end-stream). */
export const CONNECT_ERROR_SCHEMA = "connect.error";
const CONNECT_CODES = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

const STREAMING_NOTE =
  "Server streaming: this method needs a Connect client (e.g. @connectrpc/connect, connect-go, connect-kotlin) or a " +
  "gRPC client; it cannot be called with a plain JSON request. Over HTTP it is POST with Content-Type " +
  "application/connect+json, and both the request and each response message are enveloped: 1 byte of flags " +
  "(0x00 a message, 0x02 the end of the stream), 4 bytes of big-endian length, then the message as JSON. The " +
  "end-of-stream envelope holds {error?, metadata?} (the error in the Connect error form). The schemas of the " +
  "messages are named in x-meridian-request-schema and x-meridian-response-schema.";

export function buildDocument(files: DescFile[], registry: Registry, options: DocumentOptions): Schema {
  const builder = new SchemaBuilder(registry);
  const access = registry.getExtension("meridian.auth.v1.access");
  const roleOf = (method: DescMethod): string | undefined => {
    if (!access || !hasOption(method, access)) return undefined;
    const rule = getOption(method, access) as { role?: string };
    return rule.role || undefined;
  };

  const services: DescService[] = files
    .flatMap((f) => f.services)
    .filter((s) => options.packages.length === 0 || options.packages.some((p) => s.file.proto.package.startsWith(p)));

  const paths: Record<string, Schema> = {};
  const tags: Schema[] = [];
  const operationIds = new Set<string>();
  for (const service of services) {
    const tag: Schema = { name: service.typeName };
    const serviceText = commentText(getComments(service));
    if (serviceText) tag.description = serviceText;
    tags.push(tag);
    for (const method of service.methods) {
      const operationId = `${service.name}_${method.name}`;
      if (operationIds.has(operationId)) throw new Error(`two RPCs would share the operationId ${operationId}`);
      operationIds.add(operationId);
      paths[`/${service.typeName}/${method.name}`] = pathItem(method, operationId, roleOf(method), builder);
    }
  }

  const schemas: Record<string, Schema> = {};
  for (const name of [...builder.schemas.keys()].sort()) schemas[name] = builder.schemas.get(name)!;
  schemas[CONNECT_ERROR_SCHEMA] = connectErrorSchema();

  return {
    openapi: "3.1.0",
    info: {
      title: options.title,
      version: options.version,
      description:
        "Meridian's API over HTTP with JSON: the Connect protocol (https://connectrpc.com/docs/protocol/), as served by " +
        "the gateway on the same port as gRPC and gRPC-Web. A call is POST /<package>.<Service>/<Method> with the request " +
        "message as JSON (the proto3 JSON mapping: 64-bit integers as strings, bytes as base64, enums by name, timestamps " +
        "in RFC 3339) and answers 200 with the response message, or an error status with a Connect error body. Methods " +
        "without side effects may also be called with GET and the message in the query (Connect GET). Every call needs " +
        "`Authorization: Bearer <API key or JWT>` holding the role named in the method (x-meridian-role). Generated from " +
        "proto/ by libs/protoc-gen-openapi: do not edit.",
    },
    // Relative: the document is served by the gateway it describes, whatever its address.
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    tags,
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "An API key (npm run api-key) or a JWT from the configured issuer; the caller's roles decide what it may call.",
        },
      },
    },
  };
}

function pathItem(method: DescMethod, operationId: string, role: string | undefined, builder: SchemaBuilder): Schema {
  const comment = commentText(getComments(method));
  const summary = comment ? firstSentence(comment) : method.name;
  const roleLine = role ? `Requires the role \`${role}\`.` : "No role is declared for this method.";
  const noSideEffects = method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
  const input = builder.messageRef(method.input);
  const output = builder.messageRef(method.output);
  const common: Schema = { tags: [method.parent.typeName], summary };
  const extensions: Schema = { "x-meridian-role": role ?? null };
  if (noSideEffects) extensions["x-meridian-idempotency"] = "NO_SIDE_EFFECTS";

  if (method.methodKind !== "unary") {
    const kind = method.methodKind.replace("_", " ");
    const envelope = { type: "string", format: "binary", contentMediaType: "application/connect+json" };
    return {
      post: {
        ...common,
        operationId,
        description: [
          comment,
          roleLine,
          method.methodKind === "server_streaming" ? STREAMING_NOTE : `${kind}: needs a Connect or gRPC client.`,
        ]
          .filter(Boolean)
          .join("\n\n"),
        ...extensions,
        "x-meridian-streaming": method.methodKind,
        "x-meridian-request-schema": schemaRefOf(input),
        "x-meridian-response-schema": schemaRefOf(output),
        parameters: [protocolVersionHeader(), timeoutHeader()],
        requestBody: {
          required: true,
          description: "One enveloped request message (see the description).",
          content: { "application/connect+json": { schema: envelope } },
        },
        responses: {
          "200": {
            description: "Enveloped response messages, then the end-of-stream envelope (which carries an error, if any).",
            content: { "application/connect+json": { schema: envelope } },
          },
          default: errorResponse(),
        },
      },
    };
  }

  const description = [comment, roleLine].filter(Boolean).join("\n\n");
  const item: Schema = {
    post: {
      ...common,
      operationId,
      description: noSideEffects ? `${description}\n\nNo side effects: also callable with GET (Connect GET).` : description,
      ...extensions,
      parameters: [protocolVersionHeader(), timeoutHeader()],
      requestBody: { required: true, content: { "application/json": { schema: input } } },
      responses: { "200": okResponse(output), default: errorResponse() },
    },
  };
  if (noSideEffects) {
    item.get = {
      ...common,
      operationId: `${operationId}_get`,
      description:
        `${description}\n\nConnect GET: the request message as JSON in the query parameter \`message\` (URL-encoded), ` +
        "with `encoding=json`; the answer is the same as POST's, and may be cached by HTTP caches that honour the headers.",
      ...extensions,
      parameters: [
        { name: "encoding", in: "query", required: true, schema: { type: "string", enum: ["json"] }, description: "The message's codec." },
        {
          name: "message",
          in: "query",
          required: true,
          description: "The request message as JSON, URL-encoded.",
          content: { "application/json": { schema: input } },
        },
        {
          name: "connect",
          in: "query",
          required: false,
          schema: { type: "string", enum: ["v1"] },
          description: "The Connect protocol version; optional here.",
        },
        timeoutHeader(),
      ],
      responses: { "200": okResponse(output), default: errorResponse() },
    };
  }
  return item;
}

function schemaRefOf(schema: Schema): string | Schema {
  return typeof schema.$ref === "string" ? schema.$ref : schema;
}

function okResponse(output: Schema): Schema {
  return { description: "The response message.", content: { "application/json": { schema: output } } };
}

function errorResponse(): Schema {
  return {
    description:
      "A Connect error. HTTP status by code: invalid_argument, failed_precondition and out_of_range 400, unauthenticated " +
      "401, permission_denied 403, not_found 404, unimplemented 501, already_exists and aborted 409, resource_exhausted " +
      "429, canceled 499, unavailable 503, deadline_exceeded 504, others 500.",
    content: { "application/json": { schema: { $ref: schemaRef(CONNECT_ERROR_SCHEMA) } } },
  };
}

function protocolVersionHeader(): Schema {
  return {
    name: "Connect-Protocol-Version",
    in: "header",
    required: false,
    schema: { type: "string", enum: ["1"] },
    description: "The Connect protocol version; the gateway does not require it.",
  };
}

function timeoutHeader(): Schema {
  return {
    name: "Connect-Timeout-Ms",
    in: "header",
    required: false,
    schema: { type: "string", pattern: "^[0-9]{1,10}$" },
    description: "The deadline of the call in milliseconds; the server cancels the call when it passes.",
  };
}

function connectErrorSchema(): Schema {
  return {
    type: "object",
    description: "The body of a Connect error (https://connectrpc.com/docs/protocol/#error-end-stream).",
    properties: {
      code: { type: "string", enum: CONNECT_CODES },
      message: { type: "string", description: "For a person: what went wrong." },
      details: {
        type: "array",
        description: "Typed details, e.g. google.rpc.BadRequest naming the fields that are wrong.",
        items: {
          type: "object",
          properties: {
            type: { type: "string", description: "The detail's fully-qualified protobuf type, without a type URL prefix." },
            value: { type: "string", contentEncoding: "base64", description: "The detail, binary protobuf in base64." },
            debug: { description: "The detail as JSON, when the server adds it." },
          },
          required: ["type", "value"],
        },
      },
    },
    required: ["code"],
  };
}

/** The first sentence of a comment (up to its first ". " or line end), for a one-line summary. */
export function firstSentence(text: string): string {
  const line = text.split("\n\n", 1)[0]!.replace(/\n/g, " ");
  const end = line.search(/\.(\s|$)/);
  const sentence = end === -1 ? line : line.slice(0, end + 1);
  return sentence.length > 160 ? `${sentence.slice(0, 157)}...` : sentence;
}

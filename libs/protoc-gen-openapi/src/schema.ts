/**
 * Protobuf types as JSON Schema (OpenAPI 3.1 is JSON Schema 2020-12), following the proto3 JSON mapping that Connect
 * uses for application/json: 64-bit integers as strings, bytes as base64, enums by name, well-known types by their
 * own JSON forms (https://protobuf.dev/programming-guides/json/).
 */
import {
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescMessage,
  getOption,
  hasOption,
  type Registry,
  ScalarType,
} from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";

export type Schema = Record<string, unknown>;

/** google.api.FieldBehavior values (google/api/field_behavior.proto) the document uses. */
const FIELD_BEHAVIOR = { REQUIRED: 2, OUTPUT_ONLY: 3, INPUT_ONLY: 4 } as const;

/** Where a schema of a named message or enum is found in the document. */
export const schemaRef = (typeName: string) => `#/components/schemas/${typeName}`;

/** A comment as a description: the leading comment (else the trailing one), one space of indentation dropped. */
export function commentText(comments: { leading?: string | undefined; trailing?: string | undefined }): string | undefined {
  const raw = comments.leading ?? comments.trailing;
  if (raw === undefined) return undefined;
  const text = raw
    .split("\n")
    .map((line) => (line.startsWith(" ") ? line.slice(1) : line).trimEnd())
    .join("\n")
    .trim();
  return text === "" ? undefined : text;
}

export function scalarSchema(scalar: ScalarType): Schema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", format: "byte", contentEncoding: "base64" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
    // proto3 JSON writes 64-bit integers as strings (a JavaScript number cannot hold them); parsers accept numbers too.
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
  }
}

const WRAPPERS: Record<string, ScalarType> = {
  "google.protobuf.DoubleValue": ScalarType.DOUBLE,
  "google.protobuf.FloatValue": ScalarType.FLOAT,
  "google.protobuf.Int64Value": ScalarType.INT64,
  "google.protobuf.UInt64Value": ScalarType.UINT64,
  "google.protobuf.Int32Value": ScalarType.INT32,
  "google.protobuf.UInt32Value": ScalarType.UINT32,
  "google.protobuf.BoolValue": ScalarType.BOOL,
  "google.protobuf.StringValue": ScalarType.STRING,
  "google.protobuf.BytesValue": ScalarType.BYTES,
};

/** The JSON form of a well-known type, or undefined for any other message. */
export function wellKnownSchema(typeName: string): Schema | undefined {
  const wrapped = WRAPPERS[typeName];
  if (wrapped !== undefined) {
    const inner = scalarSchema(wrapped);
    return { ...inner, type: [inner.type, "null"] };
  }
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time", description: "RFC 3339 in UTC, e.g. 2026-01-31T12:00:00.123Z." };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$", description: 'Seconds with an "s" suffix, e.g. "1.5s".' };
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.Value":
      return { description: "Any JSON value." };
    case "google.protobuf.ListValue":
      return { type: "array", items: {} };
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
    case "google.protobuf.FieldMask":
      return { type: "string", description: "Field paths in lowerCamelCase, separated by commas." };
    case "google.protobuf.Any":
      return {
        type: "object",
        properties: { "@type": { type: "string", description: "The type URL, e.g. type.googleapis.com/pkg.Message." } },
        required: ["@type"],
        additionalProperties: true,
      };
    default:
      return undefined;
  }
}

/**
 * Collects the component schemas of messages and enums as they are referenced. Well-known types are written inline,
 * never as components (their JSON forms are not objects of their fields).
 */
export class SchemaBuilder {
  readonly schemas = new Map<string, Schema>();
  private readonly fieldBehavior: DescExtension | undefined;

  constructor(registry: Registry) {
    const ext = registry.getExtension("google.api.field_behavior");
    this.fieldBehavior = ext;
  }

  /** A reference to the message's schema (built on first use), or its inline form for a well-known type. */
  messageRef(message: DescMessage): Schema {
    const wkt = wellKnownSchema(message.typeName);
    if (wkt) return wkt;
    if (!this.schemas.has(message.typeName)) {
      // Placed before its fields are built: a message that contains itself refers to its own component.
      this.schemas.set(message.typeName, {});
      this.schemas.set(message.typeName, this.messageSchema(message));
    }
    return { $ref: schemaRef(message.typeName) };
  }

  enumRef(desc: DescEnum): Schema {
    if (desc.typeName === "google.protobuf.NullValue") return { type: "null" };
    if (!this.schemas.has(desc.typeName)) this.schemas.set(desc.typeName, enumSchema(desc));
    return { $ref: schemaRef(desc.typeName) };
  }

  private behaviors(field: DescField): number[] {
    if (!this.fieldBehavior || !hasOption(field, this.fieldBehavior)) return [];
    const value = getOption(field, this.fieldBehavior) as unknown;
    return Array.isArray(value) ? (value as number[]) : [value as number];
  }

  private messageSchema(message: DescMessage): Schema {
    const properties: Record<string, Schema> = {};
    const required: string[] = [];
    for (const field of message.fields) {
      const schema = this.fieldSchema(field);
      const behaviors = this.behaviors(field);
      if (behaviors.includes(FIELD_BEHAVIOR.OUTPUT_ONLY)) schema.readOnly = true;
      if (behaviors.includes(FIELD_BEHAVIOR.INPUT_ONLY)) schema.writeOnly = true;
      if (behaviors.includes(FIELD_BEHAVIOR.REQUIRED)) required.push(field.jsonName);
      properties[field.jsonName] = schema;
    }
    const schema: Schema = { type: "object" };
    const description = commentText(getComments(message));
    if (description) schema.description = description;
    schema.properties = properties;
    if (required.length > 0) schema.required = required;
    // A oneof: at most one of its fields is set. "Exactly one of the branches" with one branch per field and one for
    // none: two fields set match two branches, which oneOf refuses.
    const oneofs = message.oneofs.map((oneof) => {
      const names = oneof.fields.map((f) => f.jsonName);
      return {
        oneOf: [...names.map((n) => ({ required: [n] })), { not: { anyOf: names.map((n) => ({ required: [n] })) } }],
      };
    });
    if (oneofs.length > 0) {
      schema.allOf = oneofs;
      schema["x-meridian-oneofs"] = Object.fromEntries(message.oneofs.map((o) => [o.name, o.fields.map((f) => f.jsonName)]));
    }
    return schema;
  }

  private fieldSchema(field: DescField): Schema {
    const description = commentText(getComments(field));
    const oneofNote = field.oneof ? `One of ${field.oneof.name}: ${field.oneof.fields.map((f) => f.jsonName).join(", ")}.` : undefined;
    const text = [description, oneofNote].filter(Boolean).join("\n\n");
    const schema = this.valueSchema(field);
    // $ref with siblings is valid in OpenAPI 3.1 (JSON Schema 2020-12); an inline schema keeps its own description.
    if (text) schema.description = typeof schema.description === "string" && !schema.$ref ? `${text}\n\n${schema.description}` : text;
    return schema;
  }

  private valueSchema(field: DescField): Schema {
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar);
      case "enum":
        return this.enumRef(field.enum);
      case "message":
        return { ...this.messageRef(field.message) };
      case "list": {
        const items =
          field.listKind === "scalar"
            ? scalarSchema(field.scalar)
            : field.listKind === "enum"
              ? this.enumRef(field.enum)
              : this.messageRef(field.message);
        return { type: "array", items };
      }
      case "map": {
        const values =
          field.mapKind === "scalar"
            ? scalarSchema(field.scalar)
            : field.mapKind === "enum"
              ? this.enumRef(field.enum)
              : this.messageRef(field.message);
        return { type: "object", propertyNames: mapKeySchema(field.mapKey), additionalProperties: values };
      }
    }
  }
}

/** Map keys are JSON object keys, so always strings: integers and booleans in their decimal or literal form. */
function mapKeySchema(key: ScalarType): Schema {
  switch (key) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { enum: ["true", "false"] };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { pattern: "^[0-9]+$" };
    default:
      return { pattern: "^-?[0-9]+$" };
  }
}

function enumSchema(desc: DescEnum): Schema {
  const schema: Schema = { type: "string", enum: desc.values.map((v) => v.name) };
  const described = desc.values
    .map((v) => ({ name: v.name, text: commentText(getComments(v)) }))
    .filter((v) => v.text !== undefined)
    .map((v) => `- ${v.name}: ${v.text!.replace(/\n/g, " ")}`);
  const text = [commentText(getComments(desc)), described.join("\n")].filter(Boolean).join("\n\n");
  if (text) schema.description = text;
  return schema;
}

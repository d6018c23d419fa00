import { type DescField, type DescMessage, getOption, type MessageShape } from "@bufbuild/protobuf";
import { isReflectMessage, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldBehavior, field_behavior } from "@meridian/contracts/google/api/field_behavior_pb";

/** One thing wrong with a request: where (proto field names, `events[2].source.device`) and why. */
export interface FieldViolation {
  path: string;
  reason: string;
}

/**
 * Request validation at a service boundary, from the `(google.api.field_behavior) = REQUIRED`
 * annotations (protovalidate cannot be compiled here). Every REQUIRED field must be set: a non-empty
 * string or bytes, a non-zero number or enum, true, a set message, a non-empty list or map, a chosen
 * oneof member. Set message fields and message values of lists and maps are checked the same way,
 * recursively. Returns every violation (empty when the message is fine); `path` prefixes the paths.
 */
export function requireFields<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, path = ""): FieldViolation[] {
  const violations: FieldViolation[] = [];
  walk(reflect(schema, message), path, violations);
  return violations;
}

/** Throws invalid_argument listing every violation, when there is any. */
export function assertRequiredFields<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, path = ""): void {
  const violations = requireFields(schema, message, path);
  if (violations.length > 0) invalidArgument(violations);
}

/**
 * The one way a service answers a bad request: `invalid_argument` whose message names each field
 * path and its reason, e.g. `invalid request: events[2].source.device: required; route.id: must be lower-case`.
 */
export function invalidArgument(violations: readonly FieldViolation[]): never {
  const list = violations.length > 0 ? violations.map((v) => `${v.path || "(request)"}: ${v.reason}`).join("; ") : "invalid request";
  throw new ConnectError(`invalid request: ${list}`, Code.InvalidArgument);
}

// Reading an option decodes the field's options each time; descriptors never change, so remember it.
const requiredCache = new WeakMap<DescField, boolean>();

function isRequired(field: DescField): boolean {
  let required = requiredCache.get(field);
  if (required === undefined) {
    required = getOption(field, field_behavior).includes(FieldBehavior.REQUIRED);
    requiredCache.set(field, required);
  }
  return required;
}

const join = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

function walk(msg: ReflectMessage, prefix: string, out: FieldViolation[]): void {
  for (const field of msg.fields) {
    const path = join(prefix, field.name);
    const set = msg.isSet(field);
    if (!set) {
      if (isRequired(field)) out.push({ path, reason: "required" });
      continue;
    }
    switch (field.fieldKind) {
      case "message": {
        walk(msg.get(field), path, out);
        break;
      }
      case "list": {
        if (field.listKind !== "message") break;
        let i = 0;
        for (const item of msg.get(field)) {
          if (isReflectMessage(item)) walk(item, `${path}[${i}]`, out);
          i++;
        }
        break;
      }
      case "map": {
        if (field.mapKind !== "message") break;
        for (const [key, value] of msg.get(field)) {
          const k = typeof key === "string" ? JSON.stringify(key) : String(key);
          if (isReflectMessage(value)) walk(value, `${path}[${k}]`, out);
        }
        break;
      }
    }
  }
}

import { type DescField, type DescMessage, getOption, type JsonObject, type MessageShape } from "@bufbuild/protobuf";
import { isReflectMessage, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
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

/** Year 1 to 9999: what RFC 3339 can say. */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/**
 * A request's problems, gathered field by field (proto field paths) and thrown together as one invalid_argument. Each
 * service's `api/validation.ts` extends it with the checks of its own fields.
 */
export class RequestViolations {
  readonly list: FieldViolation[] = [];
  add(path: string, reason: string): void {
    this.list.push({ path, reason });
  }
  /** A time RFC 3339 can say, when it is set. */
  time(path: string, t: Timestamp | undefined): void {
    if (!t) return;
    if (t.seconds < MIN_SECONDS || t.seconds > MAX_SECONDS || t.nanos < 0 || t.nanos > 999_999_999)
      this.add(path, "must be a time between years 1 and 9999");
  }
  /** A JSON object of at most `maxBytes` (UTF-8, as sent). Returns the object, or undefined after recording the problem. */
  jsonObject(path: string, json: JsonObject | undefined, maxBytes: number): JsonObject | undefined {
    if (!json) {
      this.add(path, "is required (a JSON object)");
      return undefined;
    }
    const bytes = Buffer.byteLength(JSON.stringify(json));
    if (bytes > maxBytes) {
      this.add(path, `is ${bytes} bytes as JSON, over the ${maxBytes}-byte limit`);
      return undefined;
    }
    return json;
  }
  throwIfAny(): void {
    if (this.list.length > 0) invalidArgument(this.list);
  }
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

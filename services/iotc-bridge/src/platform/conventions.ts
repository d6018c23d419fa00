/**
 * IoT Central's conventions on top of IoT Hub (notes 3.1): components in twin patches, writable-property
 * acknowledgements, command names, message sizes. Pure functions, no I/O.
 */
import { IotcInvalidArgumentError, IotcMessageTooLargeError } from "./errors.js";
import type { Twin, WritablePropertyAck, WritablePropertyChange } from "./types.js";

/** IoT Hub's device-to-cloud message limit, body and properties together. */
export const MAX_TELEMETRY_BYTES = 256 * 1024;
/** IoT Hub's limit of a twin's reported section (a patch can be no larger). */
export const MAX_REPORTED_BYTES = 32 * 1024;
/** IoT Hub's limit of a direct method's response payload. */
export const MAX_COMMAND_RESPONSE_BYTES = 128 * 1024;
/** The marker IoT Central needs in a component's reported patch: `{"thermostat1": {"__t": "c", ...}}`. */
export const COMPONENT_MARKER = "__t";
/** The separator of a component's command: `thermostat1*getMaxMinReport`. */
export const COMMAND_COMPONENT_SEPARATOR = "*";
/** The application property of a cloud-to-device message that makes it an offline command. */
export const OFFLINE_COMMAND_PROPERTY = "method-name";

// DTDL v2 names: a letter, then letters, digits and '_', not ending with '_', at most 64 characters.
const DTDL_NAME = /^[A-Za-z](?:[A-Za-z0-9_]{0,62}[A-Za-z0-9])?$/;

/** A component name as DTDL allows it; IotcInvalidArgumentError naming `field` otherwise. */
export function validateComponentName(component: string, field = "component"): void {
  if (typeof component !== "string" || !DTDL_NAME.test(component))
    throw new IotcInvalidArgumentError(
      field,
      `${JSON.stringify(component)} is not a DTDL name (a letter, then letters, digits or '_', at most 64 characters)`,
    );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A plain JSON object, or IotcInvalidArgumentError naming `field`. */
export function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (!isObject(value)) throw new IotcInvalidArgumentError(field, "must be a JSON object");
  return value;
}

/** `patch` as IoT Central wants it reported: under the component with `"__t": "c"`, or as is for the default component. */
export function nestInComponent(patch: Record<string, unknown>, component?: string): Record<string, unknown> {
  if (component === undefined) return patch;
  validateComponentName(component);
  return { [component]: { [COMPONENT_MARKER]: "c", ...patch } };
}

/** The reported patch acknowledging `change`: `{name: {value, ac, ad, av}}`, nested in its component. */
export function writablePropertyAckPatch(change: WritablePropertyChange, ack: WritablePropertyAck): Record<string, unknown> {
  const body: Record<string, unknown> = {
    value: ack.value === undefined ? change.value : ack.value,
    ac: ack.ac,
    av: change.version,
  };
  if (ack.ad !== undefined) body.ad = ack.ad;
  return nestInComponent({ [change.name]: body }, change.component);
}

/** An acknowledgement's `ac` must be an HTTP-like status. */
export function validateAck(ack: WritablePropertyAck): void {
  if (!isObject(ack)) throw new IotcInvalidArgumentError("ack", "must be an object with ac");
  if (!Number.isInteger(ack.ac) || ack.ac < 100 || ack.ac > 599)
    throw new IotcInvalidArgumentError("ack.ac", `must be an HTTP-like status from 100 to 599, got ${String(ack.ac)}`);
  if (ack.ad !== undefined && typeof ack.ad !== "string") throw new IotcInvalidArgumentError("ack.ad", "must be a string");
}

/**
 * The writable properties a desired patch (or a whole desired document) sets, each with `version`. A member whose
 * value is an object with `"__t": "c"` is a component. `$`-members (`$version`, `$metadata`) and members set to null
 * (removed from the document: nothing to apply) are left out.
 */
export function writablePropertyChanges(desired: Record<string, unknown>, version: number): WritablePropertyChange[] {
  const changes: WritablePropertyChange[] = [];
  for (const [name, value] of Object.entries(desired)) {
    if (name.startsWith("$") || value === null) continue;
    if (isObject(value) && value[COMPONENT_MARKER] === "c") {
      for (const [prop, v] of Object.entries(value)) {
        if (prop === COMPONENT_MARKER || prop.startsWith("$") || v === null) continue;
        changes.push({ component: name, name: prop, value: v, version });
      }
    } else changes.push({ name, value, version });
  }
  return changes;
}

function lastUpdatedVersion(desired: Record<string, unknown>, change: WritablePropertyChange): number | undefined {
  const metadata = desired.$metadata;
  if (!isObject(metadata)) return undefined;
  const scope = change.component === undefined ? metadata : metadata[change.component];
  if (!isObject(scope)) return undefined;
  const entry = scope[change.name];
  const v = isObject(entry) ? entry.$lastUpdatedVersion : undefined;
  return typeof v === "number" ? v : undefined;
}

/**
 * The writable properties of a twin still waiting for an acknowledgement (notes 3.1): those whose reported `av` is
 * missing or older than the desired document's `$version`, as the iotc clients decide. When the twin carries
 * `$metadata.<name>.$lastUpdatedVersion` (IoT Hub's service API does; whether the device's MQTT GET does is
 * unverified), that version is the one a property must have been acknowledged at, so an unchanged property acknowledged
 * earlier is not delivered again.
 */
export function pendingWritableProperties(twin: Twin): WritablePropertyChange[] {
  const version = twin.desired.$version;
  if (typeof version !== "number") return [];
  return writablePropertyChanges(twin.desired, version).filter((change) => {
    const reportedScope = change.component === undefined ? twin.reported : twin.reported[change.component];
    const reported = isObject(reportedScope) ? reportedScope[change.name] : undefined;
    const av = isObject(reported) ? reported.av : undefined;
    if (typeof av !== "number") return true;
    const needed = lastUpdatedVersion(twin.desired, change) ?? version;
    return av < needed;
  });
}

/** `thermostat1*getMaxMinReport` → component and name; a name without '*' is the default component's. */
export function splitCommandName(raw: string): { component?: string; name: string } {
  const at = raw.indexOf(COMMAND_COMPONENT_SEPARATOR);
  if (at > 0 && at < raw.length - 1) return { component: raw.slice(0, at), name: raw.slice(at + 1) };
  return { name: raw };
}

/**
 * The command an offline command's `method-name` names. iotc 1.1 uses it as is (`*` for components); iotc 1.0 sent
 * the legacy `interface:command` form and took the part after ':'. Both are read.
 */
export function offlineCommandName(methodName: string): { component?: string; name: string } {
  if (!methodName.includes(COMMAND_COMPONENT_SEPARATOR) && methodName.includes(":"))
    return { name: methodName.slice(methodName.lastIndexOf(":") + 1) };
  return splitCommandName(methodName);
}

/**
 * A command's or message's body as JSON. Empty or blank means no payload (null); a body that is not JSON is kept as
 * its text, so that nothing the cloud sent is lost.
 */
export function parsePayload(body: Buffer | string | undefined): { value: unknown; json: boolean } {
  const text = body === undefined ? "" : typeof body === "string" ? body : body.toString("utf8");
  if (text.trim() === "") return { value: null, json: true };
  try {
    return { value: JSON.parse(text), json: true };
  } catch {
    return { value: text, json: false };
  }
}

/** JSON text of `value`, or IotcInvalidArgumentError naming `field` (cycles, BigInt). */
export function toJson(value: unknown, field: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new IotcInvalidArgumentError(field, `cannot be written as JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new IotcInvalidArgumentError(field, "cannot be written as JSON");
  return text;
}

/**
 * The size IoT Hub counts for a device-to-cloud message: the body and every property's name and value (system
 * properties such as `$.mid`, `$.ct`, `$.ce`, `$.sub` included), in UTF-8 bytes.
 */
export function telemetrySize(body: string | Buffer, ...propertySets: Record<string, string>[]): number {
  let bytes = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length;
  for (const properties of propertySets)
    for (const k in properties) bytes += Buffer.byteLength(k, "utf8") + Buffer.byteLength(properties[k]!, "utf8");
  return bytes;
}

/** IotcMessageTooLargeError when `bytes` is over `limit`. */
export function checkSize(bytes: number, limit: number, registrationId?: string): void {
  if (bytes > limit) throw new IotcMessageTooLargeError(bytes, limit, { registrationId });
}

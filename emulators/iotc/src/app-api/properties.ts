/**
 * Device properties as the application API shows and takes them (protocol notes 3.1), computed from the twin alone:
 * the emulator has no device template, so a component is a twin member marked `"__t":"c"` (by the device's reported
 * patch or by an earlier desired write through this API), and a writable property's acknowledgement is a reported
 * value shaped `{value, ac, av[, ad]}`.
 */
import { isJsonObject, type JsonObject } from "../twin.js";
import { badRequest } from "./errors.js";
import { checkDtdlName } from "./names.js";

/** When a desired property was last written, by the version of the desired section that carried it. */
export interface DesiredWrite {
  version: number;
  at: Date;
}

/** Looks up the last desired write of `name` (in `component`, when given). */
export type DesiredWrites = (name: string, component?: string) => DesiredWrite | undefined;

const COMPONENT_MARKER = "__t";

export function isComponent(v: unknown): v is JsonObject {
  return isJsonObject(v) && v[COMPONENT_MARKER] === "c";
}

/** A writable property's acknowledgement in the reported section. */
function isAck(v: unknown): v is { value?: unknown; ac: number; av: number; ad?: unknown } {
  return isJsonObject(v) && typeof v.ac === "number" && typeof v.av === "number";
}

/** Names that are components in either section of the twin. */
export function componentNames(twin: { desired: JsonObject; reported: JsonObject }): Set<string> {
  const names = new Set<string>();
  for (const section of [twin.desired, twin.reported]) {
    for (const [k, v] of Object.entries(section)) if (isComponent(v)) names.add(k);
  }
  return names;
}

function ownMembers(doc: JsonObject, skip: Set<string>): Array<[string, unknown]> {
  return Object.entries(doc).filter(([k]) => !k.startsWith("$") && k !== COMPONENT_MARKER && !skip.has(k));
}

/** One level (the default component or a named one): values, then `$metadata` for the writable properties. */
function renderLevel(
  reported: JsonObject,
  desired: JsonObject,
  desiredVersion: number,
  writes: (name: string) => DesiredWrite | undefined,
  skip: Set<string>,
): JsonObject {
  const out: JsonObject = {};
  const metadata: Record<string, JsonObject> = {};
  for (const [k, v] of ownMembers(reported, skip)) {
    if (!isAck(v)) {
      out[k] = structuredClone(v);
      continue;
    }
    if ("value" in v) out[k] = structuredClone(v.value);
    metadata[k] = { ackVersion: v.av, ackCode: v.ac, ...(typeof v.ad === "string" ? { ackDescription: v.ad } : {}) };
  }
  for (const [k, v] of ownMembers(desired, skip)) {
    // A write recorded before the section's version went back (the emulator was reset) is not this value's.
    const w = writes(k);
    const known = w !== undefined && w.version <= desiredVersion ? w : undefined;
    metadata[k] = {
      desiredValue: structuredClone(v),
      desiredVersion: known?.version ?? desiredVersion,
      ...metadata[k],
      ...(known ? { lastUpdateTime: known.at.toISOString() } : {}),
    };
  }
  if (Object.keys(metadata).length > 0) out.$metadata = metadata;
  return out;
}

/** GET .../properties: reported values (acks unwrapped), components nested, desired values under `$metadata`. */
export function renderProperties(twin: { desired: JsonObject; reported: JsonObject }, writes: DesiredWrites): JsonObject {
  const components = componentNames(twin);
  const desiredVersion = typeof twin.desired.$version === "number" ? twin.desired.$version : 1;
  const out = renderLevel(twin.reported, twin.desired, desiredVersion, (k) => writes(k), components);
  for (const c of components) {
    const reported = isJsonObject(twin.reported[c]) ? (twin.reported[c] as JsonObject) : {};
    const desired = isJsonObject(twin.desired[c]) ? (twin.desired[c] as JsonObject) : {};
    out[c] = renderLevel(reported, desired, desiredVersion, (k) => writes(k, c), new Set());
  }
  return out;
}

/** GET .../components/{c}/properties: that component's level alone (empty when the device has none by that name). */
export function renderComponentProperties(
  twin: { desired: JsonObject; reported: JsonObject },
  component: string,
  writes: DesiredWrites,
): JsonObject {
  const desiredVersion = typeof twin.desired.$version === "number" ? twin.desired.$version : 1;
  const reported = isJsonObject(twin.reported[component]) ? (twin.reported[component] as JsonObject) : {};
  const desired = isJsonObject(twin.desired[component]) ? (twin.desired[component] as JsonObject) : {};
  return renderLevel(reported, desired, desiredVersion, (k) => writes(k, component), new Set());
}

function checkNames(body: JsonObject, path: string): void {
  for (const k of Object.keys(body)) checkDtdlName(k, `${path}.${k}`);
}

/**
 * The desired patch a PUT/PATCH of properties becomes. Keys must be DTDL names; an object under a component's name
 * (or any object when `component` is given) is marked `"__t":"c"`, as IoT Central writes component properties.
 * `null` deletes the desired value (merge-patch).
 */
export function desiredPatchOf(body: unknown, components: Set<string>, component?: string): JsonObject {
  if (!isJsonObject(body)) throw badRequest("body", "must be a JSON object of property names and values");
  if (Object.keys(body).length === 0) throw badRequest("body", "names no property");
  checkNames(body, "body");
  if (component !== undefined) return { [component]: { [COMPONENT_MARKER]: "c", ...structuredClone(body) } };
  const patch: JsonObject = {};
  for (const [k, v] of Object.entries(body)) {
    if (components.has(k) && isJsonObject(v)) {
      checkNames(v, `body.${k}`);
      patch[k] = { [COMPONENT_MARKER]: "c", ...structuredClone(v) };
    } else patch[k] = structuredClone(v);
  }
  return patch;
}

/** The 202 answer to a property write: each written property's new desired value and version under `$metadata`. */
export function acceptedProperties(patch: JsonObject, version: number, component?: string): JsonObject {
  const level = (doc: JsonObject): JsonObject => {
    const metadata: Record<string, JsonObject> = {};
    for (const [k, v] of ownMembers(doc, new Set())) metadata[k] = { desiredValue: v, desiredVersion: version };
    return { $metadata: metadata };
  };
  if (component !== undefined) return level(patch[component] as JsonObject);
  const out: JsonObject = {};
  const root: JsonObject = {};
  for (const [k, v] of Object.entries(patch)) {
    if (isComponent(v)) out[k] = level(v);
    else root[k] = v;
  }
  return Object.keys(root).length > 0 ? { ...level(root), ...out } : out;
}

/** Every property path a desired patch sets (`[name]` or `[component, name]`) and whether it deletes it. */
export function writtenPaths(patch: JsonObject): Array<{ name: string; component?: string; deleted: boolean }> {
  const out: Array<{ name: string; component?: string; deleted: boolean }> = [];
  for (const [k, v] of ownMembers(patch, new Set())) {
    if (isComponent(v)) {
      for (const [sub, sv] of ownMembers(v, new Set())) out.push({ name: sub, component: k, deleted: sv === null });
    } else out.push({ name: k, deleted: v === null });
  }
  return out;
}

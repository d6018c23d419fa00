/**
 * Twin documents (protocol notes 2.3): a patch merges deeply into a section, a member set to null is deleted, and
 * every accepted patch bumps the section's `$version` by one. Members whose name starts with `$` are the hub's own
 * (`$version`, `$metadata`) and are never taken from a patch.
 */

export type JsonObject = Record<string, unknown>;

/** IoT Hub's limits on a twin section. */
export const MAX_SECTION_BYTES = 32 * 1024;
export const MAX_DEPTH = 10;

export class TwinPatchError extends Error {
  override name = "TwinPatchError";
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function depth(v: unknown): number {
  if (!isJsonObject(v)) return 0;
  let d = 0;
  for (const child of Object.values(v)) d = Math.max(d, depth(child));
  return d + 1;
}

function merge(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue;
    if (value === null) delete target[key];
    else if (isJsonObject(value)) {
      const existing = target[key];
      const child: JsonObject = isJsonObject(existing) ? existing : {};
      merge(child, value);
      target[key] = child;
    } else target[key] = structuredClone(value);
  }
}

export class TwinSection {
  private doc: JsonObject = {};
  version = 1;

  /** Applies `patch` and returns the new version; throws TwinPatchError naming what is wrong, leaving the doc as it was. */
  apply(patch: unknown, what: string): number {
    if (!isJsonObject(patch)) throw new TwinPatchError(`${what} patch must be a JSON object`);
    if (depth(patch) > MAX_DEPTH) throw new TwinPatchError(`${what} patch nests deeper than ${MAX_DEPTH} levels`);
    const next = structuredClone(this.doc);
    merge(next, patch);
    const size = Buffer.byteLength(JSON.stringify(next));
    if (size > MAX_SECTION_BYTES) {
      throw new TwinPatchError(`${what} properties would be ${size} bytes, over the ${MAX_SECTION_BYTES}-byte limit`);
    }
    this.doc = next;
    this.version += 1;
    return this.version;
  }

  /** A copy with `$version`, as the hub sends it. */
  view(): JsonObject {
    return { ...structuredClone(this.doc), $version: this.version };
  }
}

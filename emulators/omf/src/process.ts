import { badRequest, OmfFailure } from "./errors.js";
import {
  checkId,
  checkValue,
  defaultValue,
  indexKey,
  isPlainObject,
  lowerKeys,
  type ParseContext,
  type PropDef,
  parseContainer,
  parseType,
  type TypeDef,
} from "./model.js";
import type { CreateMode, Settings } from "./settings.js";
import type { ContainerRecord, PiPoint, Scope, StoredValue } from "./store.js";
import { Series } from "./store.js";

export type MessageType = "type" | "container" | "data";
export type Action = "create" | "update" | "delete";

export interface OmfRequest {
  messageType: MessageType;
  action: Action;
  version: string;
}

export interface MessageResult {
  index: number;
  /** 200 done / 201 created / 202 accepted, or the failure's status. */
  status: number;
  failure?: OmfFailure;
  warnings: string[];
  /** Data values written (inserted or replaced) by this message. */
  values: number;
}

export interface ProcessOptions {
  strict: boolean;
  /** The receiver's create mode (PI OmfCreateMode; SDS replace / noreplace). */
  createMode: CreateMode;
  piUpdate: Settings["piUpdate"];
  piPointNames: Settings["piPointNames"];
  /** SDS status for a type / container re-created with another definition. */
  sdsConflictStatus: 400 | 409;
  /** SDS answers one error for the whole request: stop at the first failing message. */
  stopOnError: boolean;
  /** Fault injection: message 0 fails with the profile's conflict status. */
  failFirst?: boolean;
  /** Benchmarks (`recordArrivals`): told the index keys of the values a data message wrote, per container. */
  onValues?: (containerId: string, keys: string[]) => void;
}

const conflictStatus = (scope: Scope) => (scope.profile === "pi" ? 409 : 400);

export function processMessages(scope: Scope, req: OmfRequest, body: unknown[], opts: ProcessOptions): MessageResult[] {
  const ctx: ParseContext = { version: req.version, profile: scope.profile, strict: opts.strict };
  const results: MessageResult[] = [];
  for (let i = 0; i < body.length; i++) {
    const r: MessageResult = { index: i, status: 200, warnings: [], values: 0 };
    try {
      if (i === 0 && opts.failFirst)
        throw new OmfFailure(conflictStatus(scope), "Injected partial failure (emulator fault switch).", { error: "Injected fault" });
      const el = body[i];
      if (req.messageType === "type") r.status = handleType(scope, req, el, ctx, opts, r);
      else if (req.messageType === "container") r.status = handleContainer(scope, req, el, ctx, opts);
      else r.status = handleData(scope, req, el, ctx, opts, r, i);
    } catch (err) {
      if (!(err instanceof OmfFailure)) throw err;
      r.status = err.status;
      r.failure = err;
      results.push(r);
      if (opts.stopOnError) break;
      continue;
    }
    results.push(r);
  }
  return results;
}

// ---------------------------------------------------------------- types

function handleType(scope: Scope, req: OmfRequest, el: unknown, ctx: ParseContext, opts: ProcessOptions, r: MessageResult): number {
  if (req.action === "delete") {
    const d = isPlainObject(el) ? lowerKeys(el) : undefined;
    const id = checkId(d?.id, "type", scope.profile);
    const key = id.toLowerCase();
    if (!scope.types.has(key)) return 200; // try-remove: absent is success
    for (const c of scope.containers.values())
      if (c.type.key === key)
        throw new OmfFailure(conflictStatus(scope), `The type '${id}' is in use by container '${c.def.id}' and cannot be deleted.`, {
          error: "Type in use",
          parameters: { TypeId: id, ContainerId: c.def.id },
        });
    if (scope.staticInstances.get(key)?.size)
      throw new OmfFailure(conflictStatus(scope), `The type '${id}' is in use by static data and cannot be deleted.`, {
        parameters: { TypeId: id },
      });
    for (const t of scope.types.values())
      if (t.properties.some((p) => p.reftypeKey === key))
        throw new OmfFailure(conflictStatus(scope), `The type '${id}' is referenced by type '${t.id}' and cannot be deleted.`);
    scope.types.delete(key);
    return 200;
  }
  if (req.action === "update") {
    if (scope.profile === "pi")
      throw new OmfFailure(501, "Updating a type is not supported; types are immutable. Create a type with a new id.", {
        reason: "Update is not implemented for types.",
      });
    throw badRequest("SdsTypes are immutable: the 'update' action is not supported for types.", { error: "Type update not supported" });
  }
  const def = parseType(el, ctx, scope.types);
  if (scope.profile !== "pi" && def.classification === "static") {
    r.warnings.push(`Static type '${def.id}' ignored: SDS accepts dynamic types only.`);
    return 200;
  }
  const existing = scope.types.get(def.key);
  if (existing) {
    if (existing.canonical === def.canonical) return 200;
    if (scope.profile === "pi")
      throw new OmfFailure(409, "A type with the supplied ID and version already exists, but it does not match the supplied type.", {
        parameters: { TypeId: def.id, TypeVersion: def.version },
      });
    throw new OmfFailure(opts.sdsConflictStatus, "Redefinition of the type with the same ID is not allowed", {
      error: "Redefinition of the type with the same ID is not allowed",
      reason: `A type with id '${def.id}' exists with a different definition.`,
      resolution: "Create the type with a new id, or delete the existing type first.",
      parameters: { TypeId: def.id },
    });
  }
  scope.types.set(def.key, def);
  return 201;
}

// ---------------------------------------------------------------- containers

function piPointType(p: PropDef, types: Map<string, TypeDef>): string {
  if (p.reftypeKey !== undefined) return types.get(p.reftypeKey)?.isEnum ? "Digital" : "String";
  switch (p.type) {
    case "integer":
      return p.format === "int16" || p.format === "int32" || p.format === "uint16" ? "Int32" : "Float64";
    case "number":
      return p.format === "float64" ? "Float64" : "Float32";
    case "boolean":
      return "Digital";
    case "string":
      return p.format === "date-time" ? "Timestamp" : "String";
    default:
      return "String";
  }
}

function planPoints(scope: Scope, containerId: string, type: TypeDef, naming: ProcessOptions["piPointNames"]): Omit<PiPoint, "id">[] {
  const valueProps = type.properties.filter((p) => !p.isindex && !p.isquality && !p.isname);
  const simple = valueProps.length === 1 && naming === "simple";
  return valueProps.map((p) => {
    const name = simple ? containerId : `${containerId}.${p.id}`;
    return {
      name,
      key: name.toLowerCase(),
      containerKey: containerId.toLowerCase(),
      propertyId: p.id,
      pointType: piPointType(p, scope.types),
      uom: p.uom,
    };
  });
}

/** Removes a container with its points, values and the links that target it. */
export function deleteContainer(scope: Scope, rec: ContainerRecord): void {
  for (const p of rec.points) scope.points.delete(p.key);
  scope.containers.delete(rec.def.key);
  for (const [k, l] of scope.links) {
    const t = lowerKeys(l.target);
    if (typeof t.containerid === "string" && t.containerid.toLowerCase() === rec.def.key) scope.links.delete(k);
  }
}

function handleContainer(scope: Scope, req: OmfRequest, el: unknown, ctx: ParseContext, opts: ProcessOptions): number {
  if (req.action === "delete") {
    const d = isPlainObject(el) ? lowerKeys(el) : undefined;
    const id = checkId(d?.id, "container", scope.profile);
    const rec = scope.containers.get(id.toLowerCase());
    if (rec) deleteContainer(scope, rec);
    return 200;
  }
  const def = parseContainer(el, ctx);
  const type = scope.types.get(def.typeKey);
  if (!type) {
    if (scope.profile === "pi")
      throw new OmfFailure(404, `Type not found: the container's type '${def.typeid}' does not exist.`, {
        parameters: { TypeId: def.typeid },
      });
    throw badRequest(`The type '${def.typeid}' of container '${def.id}' is not defined.`, {
      error: "Type is not defined",
      parameters: { TypeId: def.typeid, ContainerId: def.id },
    });
  }
  if (scope.profile === "pi" && req.version < "1.2" && def.typeversion !== undefined && def.typeversion !== type.version)
    throw new OmfFailure(404, "A type definition with the specified ID and version does not exist.", {
      parameters: { TypeId: def.typeid, TypeVersion: def.typeversion },
    });
  if (type.classification !== "dynamic")
    throw badRequest(`Containers need a dynamic type; '${type.id}' is ${type.classification ?? "an enum"}.`, {
      parameters: { TypeId: type.id },
    });
  const existing = scope.containers.get(def.key);
  if (req.action === "update") {
    if (!existing) {
      if (scope.profile === "pi") throw new OmfFailure(404, "Container not found.", { parameters: { ContainerId: def.id } });
      throw badRequest("Container is not defined", { error: "Container is not defined", parameters: { ContainerId: def.id } });
    }
    if (existing.type.key !== type.key)
      throw new OmfFailure(conflictStatus(scope), "A container cannot change its type.", { parameters: { ContainerId: def.id } });
    existing.def = def;
    return 200;
  }
  if (existing) {
    if (existing.def.canonical === def.canonical && existing.type === type) return 200;
    if (scope.profile === "pi")
      throw new OmfFailure(409, "A container with the supplied ID already exists, but does not match the supplied container.", {
        parameters: { ContainerId: def.id },
      });
    throw new OmfFailure(opts.sdsConflictStatus, "Redefinition of the stream with the same ID is not allowed", {
      error: "Redefinition of the stream with the same ID is not allowed",
      resolution: "Create the container with a new id, or delete the existing container first.",
      parameters: { ContainerId: def.id },
    });
  }
  const rec: ContainerRecord = { def, type, series: new Series(), points: [], created: new Date().toISOString() };
  if (scope.profile === "pi") {
    const planned = planPoints(scope, def.id, type, opts.piPointNames);
    for (const p of planned) {
      const other = scope.points.get(p.key);
      if (other && other.containerKey !== def.key)
        throw new OmfFailure(409, "The supplied container overlaps with a different existing container.", {
          parameters: { ContainerId: def.id, PointName: p.name },
        });
    }
    for (const p of planned) {
      const point: PiPoint = { ...p, id: scope.nextPointId++ };
      rec.points.push(point);
      scope.points.set(point.key, point);
    }
  }
  scope.containers.set(def.key, rec);
  return 201;
}

// ---------------------------------------------------------------- data

function containerNotFound(scope: Scope, id: string): OmfFailure {
  if (scope.profile === "pi") return new OmfFailure(404, "Container not found.", { parameters: { ContainerId: id } });
  return badRequest("Container is not defined", {
    error: "Container is not defined",
    reason: `No container with id '${id}' exists.`,
    resolution: "Send the container message before data for it.",
    parameters: { ContainerId: id },
  });
}

function buildValue(type: TypeDef, raw: unknown, where: string, types: Map<string, TypeDef>, full: boolean): StoredValue {
  if (!isPlainObject(raw)) throw badRequest(`${where} must be a JSON object.`, { eventCode: 3003 });
  for (const k of Object.keys(raw)) {
    const p = type.propById.get(k) ?? type.propByLower.get(k.toLowerCase());
    if (!p)
      throw badRequest(`Property does not exist in the type definition: '${k}' is not a property of type '${type.id}'.`, {
        error: "Property does not exist in the type definition",
        eventCode: 3003,
        parameters: { Property: k, TypeId: type.id, Path: where },
      });
    checkValue(p, raw[k], `${where}.${k}`, types);
  }
  if (!full) return raw;
  const out: StoredValue = {};
  for (const p of type.properties) {
    let v = raw[p.id];
    if (v === undefined) v = findCaseInsensitive(raw, p.id);
    out[p.id] = v === undefined ? defaultValue(p) : v;
  }
  return out;
}

function findCaseInsensitive(raw: Record<string, unknown>, id: string): unknown {
  const lower = id.toLowerCase();
  for (const k of Object.keys(raw)) if (k.toLowerCase() === lower) return raw[k];
  return undefined;
}

function handleData(
  scope: Scope,
  req: OmfRequest,
  el: unknown,
  ctx: ParseContext,
  opts: ProcessOptions,
  r: MessageResult,
  i: number,
): number {
  if (!isPlainObject(el)) throw badRequest(`Message ${i} must be a JSON object.`, { eventCode: 3003 });
  const d = lowerKeys(el);
  if (d.properties !== undefined) {
    if (ctx.strict && ctx.version < "1.2")
      throw badRequest("The keyword 'properties' on data messages requires OMF version 1.2 or later.", { eventCode: 3002 });
  }
  if (!Array.isArray(d.values) && d.properties === undefined)
    throw badRequest(`Message ${i}: 'values' must be an array.`, { eventCode: 3003 });
  const values = (d.values ?? []) as unknown[];
  if (d.containerid !== undefined) return dynamicData(scope, req, d, values, ctx, opts, r, i);
  if (typeof d.typeid === "string" && d.typeid.toLowerCase() === "__link") {
    if (scope.profile !== "pi") {
      r.warnings.push("__Link data ignored by SDS.");
      return 200;
    }
    return linkData(scope, req, values, i);
  }
  if (d.typeid !== undefined || d.properties !== undefined) {
    if (scope.profile !== "pi") {
      r.warnings.push("Static data ignored by SDS.");
      return 200;
    }
    return staticData(scope, req, d, values, ctx, i);
  }
  throw badRequest(`Message ${i} needs 'containerid', 'typeid' or 'properties'.`, { eventCode: 3003 });
}

function dynamicData(
  scope: Scope,
  req: OmfRequest,
  d: Record<string, unknown>,
  values: unknown[],
  _ctx: ParseContext,
  opts: ProcessOptions,
  r: MessageResult,
  i: number,
): number {
  if (typeof d.containerid !== "string") throw badRequest(`Message ${i}: 'containerid' must be a string.`, { eventCode: 3003 });
  const id = scope.profile === "adh" ? d.containerid.replaceAll("/", "\\") : d.containerid;
  const rec = scope.containers.get(id.toLowerCase());
  if (!rec) throw containerNotFound(scope, d.containerid);
  const type = rec.type;
  const prepared: { key: string; value: StoredValue }[] = new Array(values.length);
  for (let j = 0; j < values.length; j++) {
    const where = `[${i}].values[${j}]`;
    const raw = values[j];
    if (req.action === "delete") {
      if (!isPlainObject(raw)) throw badRequest(`${where} must be a JSON object.`, { eventCode: 3003 });
      prepared[j] = { key: indexKey(type, raw, where), value: raw };
    } else {
      const value = buildValue(type, raw, where, scope.types, true);
      prepared[j] = { key: indexKey(type, value, where), value };
    }
  }
  const series = rec.series;
  const pi = scope.profile === "pi";
  if (req.action === "delete") {
    // PI removes one value per value named (Remove); an SDS event is the whole index.
    for (const p of prepared) if (pi ? series.removeOne(p.key) : series.remove(p.key)) r.values++;
    return 200;
  }
  // create follows the receiver's create mode; update replaces, except on PI under `piUpdate: createmode`.
  const mode = req.action === "update" && !(pi && opts.piUpdate === "createmode") ? "replace" : opts.createMode;
  let ignored = 0;
  const written: string[] | undefined = opts.onValues ? [] : undefined;
  for (const p of prepared) {
    if (series.put(p.key, p.value, mode, pi) === "ignored") ignored++;
    else {
      r.values++;
      written?.push(p.key);
    }
  }
  if (written) opts.onValues!(d.containerid, written);
  if (ignored > 0) r.warnings.push(`${ignored} value(s) not written: a value exists at that index (create mode NoReplace).`);
  return scope.profile === "pi" ? 202 : 200;
}

function staticData(scope: Scope, req: OmfRequest, d: Record<string, unknown>, values: unknown[], ctx: ParseContext, i: number): number {
  const typeid = typeof d.typeid === "string" ? d.typeid : undefined;
  if (typeid === undefined) {
    // type-less static data (1.2): stored as-is under "(typeless)"
    const bucket = getBucket(scope, "(typeless)");
    for (const v of values) if (isPlainObject(v)) bucket.set(JSON.stringify(v).toLowerCase(), { ...v, ...(d.properties as object) });
    return 202;
  }
  const type = scope.types.get(typeid.toLowerCase());
  if (type?.classification !== "static")
    throw new OmfFailure(409, "A type definition with the specified ID and version does not exist.", {
      reason: "Creating static data instances requires a pre-existing static type definition.",
      parameters: { TypeId: typeid },
    });
  const ix = type.indexProps[0]!;
  const prepared: [string, StoredValue][] = [];
  for (let j = 0; j < values.length; j++) {
    const where = `[${i}].values[${j}]`;
    const raw = values[j];
    const v = req.action === "delete" ? (isPlainObject(raw) ? raw : {}) : buildValue(type, raw, where, scope.types, true);
    const index = v[ix.id];
    if (typeof index !== "string" || index === "")
      throw badRequest(`${where}: the index property '${ix.id}' is required.`, { eventCode: 3003 });
    if (ctx.profile === "pi") checkId(index, "static instance", "pi", ix.id);
    prepared.push([index.toLowerCase(), v]);
  }
  const bucket = getBucket(scope, type.key);
  for (const [k, v] of prepared) {
    if (req.action === "delete") bucket.delete(k);
    else bucket.set(k, v);
  }
  return req.action === "delete" ? 200 : 201;
}

function getBucket(scope: Scope, key: string): Map<string, StoredValue> {
  let b = scope.staticInstances.get(key);
  if (!b) {
    b = new Map();
    scope.staticInstances.set(key, b);
  }
  return b;
}

function staticInstanceExists(scope: Scope, end: Record<string, unknown>): boolean {
  const typeid = typeof end.typeid === "string" ? end.typeid.toLowerCase() : undefined;
  if (typeid === undefined || typeof end.index !== "string") return false;
  return scope.staticInstances.get(typeid)?.has(end.index.toLowerCase()) ?? false;
}

function linkData(scope: Scope, req: OmfRequest, values: unknown[], i: number): number {
  const prepared: [string, Record<string, unknown>, Record<string, unknown>][] = [];
  for (let j = 0; j < values.length; j++) {
    const v = isPlainObject(values[j]) ? lowerKeys(values[j] as Record<string, unknown>) : undefined;
    if (!v || !isPlainObject(v.source) || !isPlainObject(v.target))
      throw badRequest(`[${i}].values[${j}]: a link needs 'source' and 'target' objects.`, { eventCode: 3003 });
    const source = lowerKeys(v.source);
    const target = lowerKeys(v.target);
    const key = JSON.stringify([source.typeid, source.index, target.typeid, target.containerid, target.index]).toLowerCase();
    if (req.action !== "delete") {
      if (typeof source.typeid === "string" && source.typeid.toUpperCase() === "__ROOT")
        throw badRequest("PI Web API does not support the __ROOT link source.", {
          reason: "__ROOT was used by the PI Connector Relay only.",
        });
      if (source.index === undefined && target.index === undefined && target.containerid === undefined)
        throw badRequest("Type-to-type (placeholder) links are not supported by PI Web API.");
      if (!staticInstanceExists(scope, source))
        throw new OmfFailure(409, "The specified static instance could not be found.", {
          parameters: { TypeId: String(source.typeid), Index: String(source.index) },
        });
      if (target.containerid !== undefined) {
        if (typeof target.containerid !== "string" || !scope.containers.has(target.containerid.toLowerCase()))
          throw containerNotFound(scope, String(target.containerid));
      } else if (!staticInstanceExists(scope, target)) {
        throw new OmfFailure(409, "The specified static instance could not be found.", {
          parameters: { TypeId: String(target.typeid), Index: String(target.index) },
        });
      }
    }
    prepared.push([key, v.source as Record<string, unknown>, v.target as Record<string, unknown>]);
  }
  for (const [key, source, target] of prepared) {
    if (req.action === "delete") scope.links.delete(key);
    else scope.links.set(key, { key, source, target });
  }
  return req.action === "delete" ? 200 : 201;
}

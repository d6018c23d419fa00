import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { platformToken } from "@meridian/bus";
import type { TelemetryBatch, TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import {
  containerFor,
  MAX_ID_LENGTH,
  type OmfContainer,
  OmfInvalidMessageError,
  type OmfValue,
  type OmfVersion,
  type PointKind,
  type PointSpec,
  sanitizeIdSegment,
  type TypeMapping,
  typeForShape,
} from "../platform/index.js";
import {
  convertValue,
  type MappingEntry,
  type RouteMapping,
  RouteMappingError,
  renderTemplate,
  type SourceValue,
  type TemplateSource,
} from "./route-mapping.js";

/**
 * TelemetryEvent → OMF: one dynamic type per point shape (names and kinds; `typeForShape` gives a stable id),
 * one container per source device and type, one value per event indexed by its observed time. Re-sending an
 * event writes the same index again, which the endpoint overwrites (SDS always; PI with `update`).
 * A route with an `omfMapping` option writes into the user's own types and containers instead (route-mapping.ts).
 */

export interface MappingOptions {
  omfVersion: OmfVersion;
  intFormat: "int64" | "int32";
  /** The route's own types and containers (option `omfMapping`), in place of the generated ones. */
  mapping?: RouteMapping;
  /** Why the route's `omfMapping` cannot be used: every message is held (RouteMappingError) until it is corrected. */
  mappingProblem?: string;
  /**
   * Whether the endpoint keeps static data (PI Web API; default true). ADH and EDS ignore static types and data, so
   * there the mapping's static entries write nothing, and an event only they would take is counted as skipped rather
   * than as delivered.
   */
  staticData?: boolean;
}

/** Values of one container, in event order; without a container, instances of the static type `mapping.typeId`. */
export interface ContainerValues {
  container?: OmfContainer;
  mapping: TypeMapping;
  values: OmfValue[];
}

/** One bus message for OMF: its values by container id, and how many of its events had no point to write. */
export interface MappedBatch {
  groups: Map<string, ContainerValues>;
  skipped: number;
}

const MAX_CACHE = 10_000;

/** Caches type mappings and containers (pure functions of their inputs, but hashing every event costs). */
export class EventMapper {
  private readonly types = new Map<string, TypeMapping>();
  private readonly containers = new Map<string, OmfContainer>();
  /** The route mapping's types as TypeMappings (property ids are the user's own). */
  private readonly userTypes = new Map<string, TypeMapping>();
  /** The route mapping's containers by entry and source (templates rendered, ids checked). */
  private readonly userContainers = new Map<string, OmfContainer>();
  /** Point layouts seen (names and value kinds in event order) and how their events become values. */
  private readonly plans = new Map<string, ShapePlan>();
  /** The last layout used: consecutive events nearly always share it, so it is checked before any lookup. */
  private lastPlan: ShapePlan | undefined;

  constructor(private readonly options: MappingOptions) {}

  private typeFor(shape: PointSpec[]): TypeMapping {
    const key = shape.map((p) => `${p.kind}:${p.name}`).join("\u0000");
    let m = this.types.get(key);
    if (!m) {
      if (this.types.size >= MAX_CACHE) this.types.clear();
      m = typeForShape(shape, { omfVersion: this.options.omfVersion, intFormat: this.options.intFormat });
      this.types.set(key, m);
    }
    return m;
  }

  private containerFor(event: TelemetryEvent, plan: ShapePlan, mapping: TypeMapping): OmfContainer {
    const s = event.source!;
    const key = `${s.platform}\u0000${s.connection}\u0000${s.device}`;
    let c = plan.containers.get(key);
    if (!c) {
      const whole = `${key}\u0000${mapping.typeId}`;
      c = this.containers.get(whole);
      if (!c) {
        if (this.containers.size >= MAX_CACHE) this.containers.clear();
        c = containerFor({ platform: platformToken(s.platform), connection: s.connection, device: s.device }, mapping, {
          name: `${s.connection}/${s.device}`,
        });
        this.containers.set(whole, c);
      }
      if (plan.containers.size >= MAX_CACHE) plan.containers.clear();
      plan.containers.set(key, c);
    }
    return c;
  }

  /** The plan of a point layout: made once per layout, found again by comparing names and kinds. */
  private planFor(points: TelemetryEvent["points"]): ShapePlan {
    const last = this.lastPlan;
    if (last !== undefined && sameLayout(last, points)) return last;
    let key = "";
    for (const p of points) key += `${p.value.case ?? ""}:${p.name}\u0000`;
    let plan = this.plans.get(key);
    if (!plan) {
      if (this.plans.size >= MAX_CACHE) this.plans.clear();
      plan = this.makePlan(points);
      this.plans.set(key, plan);
    }
    this.lastPlan = plan;
    return plan;
  }

  private makePlan(points: TelemetryEvent["points"]): ShapePlan {
    const plan: ShapePlan = {
      names: points.map((p) => p.name),
      cases: points.map((p) => p.value.case),
      ids: [],
      containers: new Map(),
    };
    const shape: PointSpec[] = [];
    const taken: Array<number | undefined> = [];
    const seen = new Set<string>();
    points.forEach((p, k) => {
      const kind = POINT_KIND[p.value.case ?? ""];
      if (!kind || !p.name || seen.has(p.name.toLowerCase())) return;
      seen.add(p.name.toLowerCase());
      shape.push({ name: p.name, kind });
      taken[k] = k;
    });
    if (shape.length === 0) return plan;
    shape.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    try {
      plan.mapping = this.typeFor(shape);
    } catch (err) {
      if (!(err instanceof OmfInvalidMessageError)) throw err;
      plan.problems = err.problems;
      return plan;
    }
    const mapping = plan.mapping;
    plan.ids = points.map((p, k) => (taken[k] === undefined ? undefined : mapping.propertyIds.get(p.name)));
    return plan;
  }

  /**
   * Maps the events of one bus message, grouped by container. Throws OmfInvalidMessageError when an event can
   * never be written (no source or time, a name no id can carry): that message is dead-lettered, not retried.
   */
  mapBatch(batch: TelemetryBatch): MappedBatch {
    if (this.options.mappingProblem !== undefined) throw new RouteMappingError(this.options.mappingProblem);
    const into = new Map<string, ContainerValues>();
    // The groups of this call by container object: no id hashing per event.
    const groupOf = new Map<OmfContainer, ContainerValues>();
    let skipped = 0;
    batch.events.forEach((event, i) => {
      if (!event.source) throw new OmfInvalidMessageError([`${eventWhere(i, event)}.source: required`]);
      if (!event.observedTime) throw new OmfInvalidMessageError([`${eventWhere(i, event)}.observed_time: required`]);
      let points = event.points;
      let wrote = false;
      if (this.options.mapping) {
        const used = this.mapUserTypes(this.options.mapping, event, eventWhere(i, event), into);
        wrote = used !== undefined;
        if (this.options.mapping.unmapped === "skip") {
          if (!wrote) skipped++;
          return;
        }
        if (used) points = points.filter((p) => !used.has(p.name));
      }
      const plan = this.planFor(points);
      if (plan.mapping === undefined) {
        if (plan.problems) throw new OmfInvalidMessageError(plan.problems.map((p) => `${eventWhere(i, event)}: ${p}`));
        if (!wrote) skipped++;
        return;
      }
      const container = this.containerFor(event, plan, plan.mapping);
      // Built directly rather than through valueFor: isoTime's output is a valid index, and the ids are the type's.
      const value: Record<string, unknown> = { [plan.mapping.indexName]: isoTime(event.observedTime) };
      for (let k = 0; k < points.length; k++) {
        const id = plan.ids[k];
        if (id !== undefined) value[id] = jsonValue(points[k]!.value);
      }
      let group = groupOf.get(container);
      if (!group) {
        group = into.get(container.id);
        if (!group) {
          group = { container, mapping: plan.mapping, values: [] };
          into.set(container.id, group);
        }
        groupOf.set(container, group);
      }
      group.values.push(value);
    });
    return { groups: into, skipped };
  }

  private userTypeMapping(type: MappingEntry["type"], indexName: string): TypeMapping {
    let m = this.userTypes.get(type.id);
    if (!m) {
      const ids = new Map(Object.keys(type.properties ?? {}).map((k) => [k, k]));
      m = { typeId: type.id, typeTag: "", type, indexName, propertyIds: ids };
      this.userTypes.set(type.id, m);
    }
    return m;
  }

  /**
   * Writes the event into every entry of the route's mapping that applies to it (its `when` attributes hold, and it
   * reads at least one of the event's points or attributes, unless it reads none at all). Returns the point names
   * used, or undefined when no entry applied (nothing of the event was written through the mapping).
   */
  private mapUserTypes(
    mapping: RouteMapping,
    event: TelemetryEvent,
    where: string,
    into: Map<string, ContainerValues>,
  ): Set<string> | undefined {
    const s = event.source!;
    const source: TemplateSource = { platform: platformToken(s.platform), connection: s.connection, device: s.device };
    const points = new Map<string, SourceValue>();
    for (const p of event.points) {
      const v = sourceValue(p.value);
      if (v && p.name && !points.has(p.name)) points.set(p.name, v);
    }
    const used = new Set<string>();
    let applied = false;
    const time = isoTime(event.observedTime!);
    const entries = this.options.staticData === false ? mapping.containers : mapping.containers.concat(mapping.statics);
    for (const entry of entries) {
      if (!entry.when.every(([k, v]) => event.attributes[k] === v)) continue;
      const value: Record<string, unknown> = {};
      const reads: string[] = [];
      let readSome = false;
      for (const [prop, src] of entry.properties) {
        let v: SourceValue | undefined;
        if ("point" in src) {
          v = points.get(src.point);
          if (v) reads.push(src.point);
        } else if ("attribute" in src) {
          const a = event.attributes[src.attribute];
          v = a === undefined ? undefined : { kind: "string", value: a };
        } else v = { kind: "string", value: renderTemplate(src.template, source, false) };
        if (!v) continue;
        if (!("template" in src)) readSome = true;
        const c = convertValue(v, entry.type.properties![prop]!);
        if ("problem" in c) throw new OmfInvalidMessageError([`${where}: ${entry.path}.properties.${prop}: ${c.problem}`]);
        value[prop] = c.value;
      }
      if (entry.readsEvent && !readSome) continue;
      applied = true;
      for (const r of reads) used.add(r);
      const typeMapping = this.userTypeMapping(entry.type, entry.indexName);
      if (entry.id === undefined) {
        const index = value[entry.indexName];
        if (typeof index !== "string" || index.trim() === "")
          throw new OmfInvalidMessageError([`${where}: ${entry.path}.properties.${entry.indexName}: the static instance's index is empty`]);
        const key = `\u0000static\u0000${entry.type.id}`;
        const group = into.get(key);
        if (group) group.values.push(value);
        else into.set(key, { mapping: typeMapping, values: [value] });
        continue;
      }
      value[entry.indexName] = time;
      const container = this.userContainer(entry, source, where);
      const group = into.get(container.id);
      if (group) group.values.push(value);
      else into.set(container.id, { container, mapping: typeMapping, values: [value] });
    }
    return applied ? used : undefined;
  }

  private userContainer(entry: MappingEntry, source: TemplateSource, where: string): OmfContainer {
    const key = `${entry.path}\u0000${source.platform}\u0000${source.connection}\u0000${source.device}`;
    let c = this.userContainers.get(key);
    if (!c) {
      if (this.userContainers.size >= MAX_CACHE) this.userContainers.clear();
      c = userContainerFor(entry, source, where);
      this.userContainers.set(key, c);
    }
    return c;
  }
}

function userContainerFor(entry: MappingEntry, source: TemplateSource, where: string): OmfContainer {
  const id = renderTemplate(entry.id!, source, true);
  if (id.length > MAX_ID_LENGTH || sanitizeIdSegment(id) !== id)
    throw new OmfInvalidMessageError([
      `${where}: ${entry.path}.id: "${id.slice(0, 120)}" is not a valid container id (at most ${MAX_ID_LENGTH} characters, no leading/trailing "." nor "..")`,
    ]);
  const c: { -readonly [K in keyof OmfContainer]: OmfContainer[K] } = { id, typeid: entry.type.id };
  if (entry.name !== undefined) c.name = renderTemplate(entry.name, source, false);
  if (entry.description !== undefined) c.description = renderTemplate(entry.description, source, false);
  return c;
}

/** Where an event is in its bus message, for an error: made only for one (a string per event costs at full load). */
function eventWhere(i: number, event: TelemetryEvent): string {
  return `events[${i}] (${event.id})`;
}

function sourceValue(v: TelemetryEvent["points"][number]["value"]): SourceValue | undefined {
  switch (v.case) {
    case "doubleValue":
      return { kind: "double", value: v.value };
    case "intValue":
      return { kind: "int", value: v.value };
    case "boolValue":
      return { kind: "bool", value: v.value };
    case "stringValue":
      return { kind: "string", value: v.value };
    default:
      return undefined;
  }
}

/** How the events of one point layout become values of one generated type. */
interface ShapePlan {
  /** The layout: point names and value cases, in the event's order. */
  names: string[];
  cases: Array<string | undefined>;
  /** The type; undefined when no point can be written (or the shape cannot be a type: `problems`). */
  mapping?: TypeMapping;
  problems?: readonly string[];
  /** Per point of the layout, its property id; undefined for a point not written (no value, a repeated name). */
  ids: Array<string | undefined>;
  /** Containers of this type by source (`platform NUL connection NUL device`). */
  containers: Map<string, OmfContainer>;
}

const POINT_KIND: Record<string, PointKind | undefined> = {
  doubleValue: "double",
  intValue: "int",
  boolValue: "bool",
  stringValue: "string",
};

function sameLayout(plan: ShapePlan, points: TelemetryEvent["points"]): boolean {
  if (plan.names.length !== points.length) return false;
  for (let k = 0; k < points.length; k++) {
    const p = points[k]!;
    if (plan.names[k] !== p.name || plan.cases[k] !== p.value.case) return false;
  }
  return true;
}

/** A point's value as OMF JSON (its kind is the plan's). */
function jsonValue(v: TelemetryEvent["points"][number]["value"]): unknown {
  switch (v.case) {
    case "doubleValue":
      return Number.isFinite(v.value) ? v.value : null;
    case "intValue":
      // JSON has no 64-bit integers: beyond 2^53 the value is rounded (PI stores int64 as Float64 anyway).
      return Number(v.value);
    default:
      return v.value;
  }
}

/**
 * PI and SDS store times in 100 ns ticks, so an index finer than 7 fractional digits is not stored as sent: it is
 * truncated to the tick here (never rounded, which could carry into the next second), so the index we send is the
 * one the endpoint keeps.
 */
const FRACTION_DIGITS = 7;

/** The last second formatted: the events of a batch mostly share it, and toISOString is the costly part. */
let lastSeconds: bigint | undefined;
let lastBase = "";

/** RFC 3339 UTC to the 100 ns tick (trailing zeros trimmed): the OMF index, stable across re-sends. */
export function isoTime(t: Timestamp): string {
  if (!Number.isInteger(t.nanos) || t.nanos < 0 || t.nanos > 999_999_999) {
    throw new OmfInvalidMessageError([`observed_time: out of range (${t.seconds}s ${t.nanos}ns)`]);
  }
  let base: string;
  if (t.seconds === lastSeconds) base = lastBase;
  else {
    const d = new Date(Number(t.seconds) * 1000);
    if (Number.isNaN(d.getTime())) throw new OmfInvalidMessageError([`observed_time: out of range (${t.seconds}s ${t.nanos}ns)`]);
    base = d.toISOString().slice(0, 19);
    lastSeconds = t.seconds;
    lastBase = base;
  }
  // Truncated to the tick (see FRACTION_DIGITS), then trailing zeros dropped.
  let ticks = Math.floor(t.nanos / 100);
  if (ticks === 0) return `${base}Z`;
  let digits = FRACTION_DIGITS;
  while (ticks % 10 === 0) {
    ticks /= 10;
    digits--;
  }
  return `${base}.${String(ticks).padStart(digits, "0")}Z`;
}

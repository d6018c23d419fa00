import { basename } from "node:path";
import { CliError, EXIT } from "../kit/exit.js";
import { parseJson } from "./options.js";

/**
 * The OMF seed's files as `meridian omf send` and `omf verify` read them (osisoft/sample-omf-basic_api-python:
 * OMF-Types.json, OMF-Containers.json, OMF-Data.json): each a JSON array of OMF objects of one message type, which
 * program.py sends one object per request, types first, then containers, then data. A file may also say its message
 * type and action itself (`{"messagetype": "data", "action": "update", "messages": [...]}`, or an array of those), so
 * that one file can carry an update or a delete; without that the objects say what they are (a type has properties,
 * a container a typeid, data a containerid) and the action is the flag's (create, as the seed's default).
 */

export type OmfKind = "type" | "container" | "data";
export type OmfActionName = "create" | "update" | "delete";
export const OMF_KINDS: readonly OmfKind[] = ["type", "container", "data"];
export const OMF_ACTIONS: readonly OmfActionName[] = ["create", "update", "delete"];

/** Messages a set of files may hold: more is a mistake (one request each). */
export const MAX_MESSAGES = 10_000;

export interface OmfMessage {
  file: string;
  /** Index of the object in its file (across envelopes), for errors that point at it. */
  index: number;
  kind: OmfKind;
  action: OmfActionName;
  /** The type's or container's id, data's containerid. */
  id: string;
  object: Record<string, unknown>;
}

export interface ParseDefaults {
  /** --message-type: every object of the files is of this type (not inferred). */
  kind?: OmfKind;
  /** --action: the action of objects whose file does not say one. */
  action: OmfActionName;
}

/** Parses one seed-style file's text; `file` names it in every error. */
export function parseOmfFile(file: string, text: string, defaults: ParseDefaults): OmfMessage[] {
  const doc = parseJson(text, `OMF file ${file}`);
  const out: OmfMessage[] = [];
  const envelopes = Array.isArray(doc) && doc.length > 0 && doc.every(isEnvelope) ? doc : isEnvelope(doc) ? [doc] : undefined;
  if (envelopes) {
    for (const [e, env] of envelopes.entries()) {
      const where = envelopes.length > 1 ? `${file} envelope ${e}` : file;
      const kind = envelopeKind(env, where) ?? defaults.kind;
      const action = envelopeAction(env, where) ?? defaults.action;
      const objects = env.messages ?? env.body;
      if (!Array.isArray(objects)) throw new CliError(`OMF file ${where}: "messages" must be an array of OMF objects`, EXIT.usage);
      for (const o of objects) out.push(message(file, out.length, o, kind, action));
    }
  } else if (Array.isArray(doc)) {
    for (const o of doc) out.push(message(file, out.length, o, defaults.kind, defaults.action));
  } else if (doc !== null && typeof doc === "object") {
    out.push(message(file, 0, doc, defaults.kind, defaults.action));
  } else {
    throw new CliError(`OMF file ${file}: must hold a JSON array of OMF objects (as OMF-Types.json), not ${typeof doc}`, EXIT.usage);
  }
  if (out.length === 0) throw new CliError(`OMF file ${file}: holds no OMF object`, EXIT.usage);
  return out;
}

interface Envelope {
  messagetype?: unknown;
  messageType?: unknown;
  action?: unknown;
  messages?: unknown;
  body?: unknown;
}

function isEnvelope(v: unknown): v is Envelope {
  return v !== null && typeof v === "object" && !Array.isArray(v) && ("messages" in v || "body" in v);
}

function envelopeKind(env: Envelope, where: string): OmfKind | undefined {
  const v = env.messagetype ?? env.messageType;
  if (v === undefined) return undefined;
  const k = String(v).toLowerCase();
  if ((OMF_KINDS as readonly string[]).includes(k)) return k as OmfKind;
  throw new CliError(`OMF file ${where}: messagetype "${String(v)}" is not one of ${OMF_KINDS.join(", ")}`, EXIT.usage);
}

function envelopeAction(env: Envelope, where: string): OmfActionName | undefined {
  if (env.action === undefined) return undefined;
  const a = String(env.action).toLowerCase();
  if ((OMF_ACTIONS as readonly string[]).includes(a)) return a as OmfActionName;
  throw new CliError(`OMF file ${where}: action "${String(env.action)}" is not one of ${OMF_ACTIONS.join(", ")}`, EXIT.usage);
}

/** What an OMF object is by its own fields: a type has properties (or a classification), a container a typeid, data a containerid. */
export function inferKind(o: Record<string, unknown>): OmfKind | undefined {
  if ("containerid" in o || ("values" in o && "typeid" in o)) return "data";
  if ("properties" in o || "classification" in o) return "type";
  if ("typeid" in o) return "container";
  return undefined;
}

function message(file: string, index: number, o: unknown, kind: OmfKind | undefined, action: OmfActionName): OmfMessage {
  const where = `OMF file ${file} object ${index}`;
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw new CliError(`${where}: is not a JSON object`, EXIT.usage);
  const obj = o as Record<string, unknown>;
  const k = kind ?? inferKind(obj);
  if (k === undefined)
    throw new CliError(
      `${where}: cannot tell its message type (a type has "properties", a container "typeid", data "containerid"); give --message-type`,
      EXIT.usage,
    );
  const str = (f: string) => {
    const v = obj[f];
    if (typeof v !== "string" || v === "") throw new CliError(`${where} (${k}): "${f}" must be a non-empty string`, EXIT.usage);
    return v;
  };
  let id: string;
  if (k === "type") {
    id = str("id");
    if (action !== "delete" && (obj.properties === null || typeof obj.properties !== "object"))
      throw new CliError(`${where} (type ${id}): "properties" must be an object`, EXIT.usage);
  } else if (k === "container") {
    id = str("id");
    if (action !== "delete") str("typeid");
  } else {
    id = typeof obj.containerid === "string" ? str("containerid") : str("typeid");
    if (!Array.isArray(obj.values) || obj.values.some((v) => v === null || typeof v !== "object" || Array.isArray(v)))
      throw new CliError(`${where} (data for ${id}): "values" must be an array of objects`, EXIT.usage);
  }
  return { file, index, kind: k, action, id, object: obj };
}

/** Parses every file, capped at MAX_MESSAGES in all. */
export function parseOmfFiles(files: ReadonlyArray<{ path: string; text: string }>, defaults: ParseDefaults): OmfMessage[] {
  const all: OmfMessage[] = [];
  for (const f of files) {
    all.push(...parseOmfFile(f.path, f.text, defaults));
    if (all.length > MAX_MESSAGES) throw new CliError(`the files hold more than ${MAX_MESSAGES} OMF objects (at ${f.path})`, EXIT.usage);
  }
  return all;
}

const ORDER: Record<OmfActionName, Record<OmfKind, number>> = {
  // program.py: types, then containers, then data.
  create: { type: 0, container: 1, data: 2 },
  update: { type: 0, container: 1, data: 2 },
  // test.py's cleanup: containers before the types they use; data deletes before both.
  delete: { data: 0, container: 1, type: 2 },
};

/** The order program.py (and test.py's clean-up for deletes) sends in; stable within a kind. */
export function sendOrder(messages: readonly OmfMessage[]): OmfMessage[] {
  const rank = (m: OmfMessage) => (m.action === "delete" ? 10 : 0) + ORDER[m.action][m.kind];
  return messages
    .map((m, i) => ({ m, i }))
    .sort((a, b) => rank(a.m) - rank(b.m) || a.i - b.i)
    .map((x) => x.m);
}

interface PropDecl {
  type?: unknown;
  format?: unknown;
  isindex?: unknown;
  enum?: unknown;
}

/** Data that holds null placeholders (OMF-Data.json as shipped): program.py's get_data fills them before each send. */
export function hasPlaceholders(m: OmfMessage): boolean {
  return m.kind === "data" && (m.object.values as Record<string, unknown>[]).some((v) => Object.values(v).some((x) => x === null));
}

/**
 * program.py's get_data for one iteration (0 first): each null of a data template becomes a value of its property's
 * declared type: the index a date-time `datetime.utcnow().isoformat() + 'Z'` (6 fractional digits), an integer
 * `int(100*random())`, a number `100*random()`, a string enum alternating from its first entry ("False", "True", …), an
 * integer enum from its second (1, 0, …: the seed flips its flag before use), a boolean alternating. The property
 * types come from the type messages of the same files; a template whose container or type is not among them is refused,
 * naming both. Values already given are kept.
 */
export function fillPlaceholders(
  messages: readonly OmfMessage[],
  iteration: number,
  now: Date = new Date(),
  random: () => number = Math.random,
): OmfMessage[] {
  const types = new Map<string, Record<string, PropDecl>>();
  const containers = new Map<string, string>();
  for (const m of messages) {
    if (m.kind === "type") types.set(m.id, (m.object.properties ?? {}) as Record<string, PropDecl>);
    if (m.kind === "container") containers.set(m.id, String(m.object.typeid));
  }
  const micros = String((iteration * 137 + 456) % 1000).padStart(3, "0");
  const stamp = `${now.toISOString().slice(0, 23)}${micros}Z`;
  return messages.map((m) => {
    if (!hasPlaceholders(m)) return m;
    const typeId = typeof m.object.typeid === "string" ? m.object.typeid : containers.get(m.id);
    const where = `OMF file ${m.file} object ${m.index} (data for ${m.id})`;
    if (typeId === undefined)
      throw new CliError(
        `${where}: holds null placeholders but container ${m.id} is not in the files; give its containers file too`,
        EXIT.usage,
      );
    const props = types.get(typeId);
    if (props === undefined)
      throw new CliError(`${where}: holds null placeholders but type ${typeId} is not in the files; give its types file too`, EXIT.usage);
    const values = (m.object.values as Record<string, unknown>[]).map((v) =>
      Object.fromEntries(
        Object.entries(v).map(([k, x]) => {
          if (x !== null) return [k, x];
          const p = props[k];
          if (p === undefined) throw new CliError(`${where}: property ${k} is not declared by type ${typeId}`, EXIT.usage);
          return [k, placeholderValue(p, iteration, stamp, random)];
        }),
      ),
    );
    return { ...m, object: { ...m.object, values } };
  });
}

function placeholderValue(p: PropDecl, iteration: number, stamp: string, random: () => number): unknown {
  const en = Array.isArray(p.enum) && p.enum.length > 0 ? p.enum : undefined;
  if (p.type === "string" && (p.format === "date-time" || p.isindex === true)) return stamp;
  if (en && p.type === "string") return en[iteration % en.length];
  if (en) return en[(iteration + 1) % en.length];
  if (p.type === "integer") return Math.floor(100 * random());
  if (p.type === "number") return 100 * random();
  if (p.type === "boolean") return iteration % 2 === 1;
  return `value ${iteration}`;
}

/**
 * What verify expects at the endpoint: the types and containers of the files, and per container the last value its
 * data sent (test.py compares the last iteration's values).
 */
export interface Expected {
  types: string[];
  containers: Array<{ id: string; typeId: string }>;
  /** Container → last value sent (without placeholders); absent when the files give no concrete value for it. */
  lastValues: Map<string, Record<string, unknown>>;
}

export function expectedFrom(messages: readonly OmfMessage[]): Expected {
  const types: string[] = [];
  const containers: Array<{ id: string; typeId: string }> = [];
  const lastValues = new Map<string, Record<string, unknown>>();
  for (const m of messages) {
    if (m.action === "delete") continue;
    if (m.kind === "type" && !types.includes(m.id)) types.push(m.id);
    if (m.kind === "container" && !containers.some((c) => c.id === m.id)) containers.push({ id: m.id, typeId: String(m.object.typeid) });
    if (m.kind === "data" && !hasPlaceholders(m)) {
      const values = m.object.values as Record<string, unknown>[];
      const last = values[values.length - 1];
      if (last) lastValues.set(m.id, last);
    }
  }
  return { types, containers, lastValues };
}

/** One check of verify: an object found or not, a value equal or not. */
export interface Check {
  what: "type" | "container" | "point" | "value";
  /** The type, container, point or `container.property`. */
  name: string;
  ok: boolean;
  expected?: string;
  actual?: string;
  detail?: string;
}

const show = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));

/** Equal as test.py's compare_data sees it; a PI digital state ({Name, Value}) equals its name or its value. */
export function sameValue(actual: unknown, expected: unknown): boolean {
  if (actual !== null && typeof actual === "object" && !Array.isArray(actual) && "Name" in actual) {
    const ds = actual as { Name?: unknown; Value?: unknown };
    return ds.Name === expected || ds.Value === expected || ds.Name === String(expected);
  }
  if (typeof actual === "number" && typeof expected === "number")
    return actual === expected || Math.abs(actual - expected) <= 1e-9 * Math.abs(expected);
  return JSON.stringify(actual) === JSON.stringify(expected);
}

/** test.py for a PI point: a dotted name (container.property) compares that property, a plain one every non-Timestamp value. */
export function comparePiPoint(point: string, value: unknown, sent: Record<string, unknown>): Check[] {
  const dot = point.indexOf(".");
  const keys = dot >= 0 ? [point.slice(dot + 1)] : Object.keys(sent).filter((k) => k !== "Timestamp");
  return keys.map((k) => {
    const ok = sameValue(value, sent[k]);
    return { what: "value", name: dot >= 0 ? point : `${point} ${k}`, ok, expected: show(sent[k]), actual: show(value) };
  });
}

/** SDS keeps timestamps to the 100 ns tick: the instant as ticks, whatever the digits. */
export function ticks(ts: string): bigint | undefined {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 10_000n + BigInt((m[2] ?? "").padEnd(7, "0").slice(0, 7));
}

/** test.py for a Data Hub / EDS stream's last event: every sent key equal; the Timestamp the same instant. */
export function compareSdsEvent(container: string, event: Record<string, unknown>, sent: Record<string, unknown>): Check[] {
  return Object.entries(sent).map(([k, v]) => {
    const a = event[k];
    const ok =
      k === "Timestamp" && typeof v === "string" && typeof a === "string" && ticks(v) !== undefined
        ? ticks(a) === ticks(v)
        : sameValue(a, v);
    return { what: "value", name: `${container}.${k}`, ok, expected: show(v), actual: show(a) };
  });
}

/** The message verify fails with: every difference, naming the point or container and the values. */
export function failureMessage(checks: readonly Check[]): string {
  const bad = checks.filter((c) => !c.ok);
  const lines = bad.map((c) =>
    c.what === "value" ? `${c.name}: expected ${c.expected}, found ${c.actual}` : `${c.what} ${c.name}: ${c.detail ?? "not found"}`,
  );
  return `verify failed: ${bad.length} difference${bad.length === 1 ? "" : "s"}\n  ${lines.join("\n  ")}`;
}

/** The seed's default files when none are named: OMF-Types.json, OMF-Containers.json, OMF-Data.json. */
export const SEED_FILE_NAMES = ["OMF-Types.json", "OMF-Containers.json", "OMF-Data.json"];

export function shortName(path: string): string {
  return basename(path);
}

/** The files' data with placeholders filled as sent, as a seed-style data file (what `send --record` writes for verify). */
export function recordOf(messages: readonly OmfMessage[]): Array<{ messagetype: string; action: string; messages: unknown[] }> {
  const groups: Array<{ messagetype: string; action: string; messages: unknown[] }> = [];
  for (const m of messages) {
    let g = groups.find((x) => x.messagetype === m.kind && x.action === m.action);
    if (!g) {
      g = { messagetype: m.kind, action: m.action, messages: [] };
      groups.push(g);
    }
    g.messages.push(m.object);
  }
  return groups;
}

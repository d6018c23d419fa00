import { readFileSync } from "node:fs";
import type { JsonValue } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import type { CliContext } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import { protoJson } from "../kit/output.js";

/** Files a verb reads (seed files, payloads, DTDL) are small; anything larger is a mistake, not data. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Adds the examples every verb's --help ends with. */
export function examples(cmd: Command, lines: readonly string[]): Command {
  return cmd.addHelpText("after", `\nExamples:\n${lines.map((l) => `  ${l}`).join("\n")}\n`);
}

/** An integer flag within bounds; a bad value names the flag (exit 2, nothing sent). */
export function intFlag(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new CliError(`${flag}: "${value}" is not a whole number from ${min} to ${max}`, EXIT.usage);
    return n;
  };
}

/** A number flag (seconds may be fractional) within bounds. */
export function numberFlag(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max)
      throw new CliError(`${flag}: "${value}" is not a number from ${min} to ${max}`, EXIT.usage);
    return n;
  };
}

/** A flag given several times or as a comma-separated list (the seed's --topics), in order, without empties. */
export function listFlag(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  ];
}

/** One of `choices`, case-insensitive; a bad one names the flag and lists the choices. */
export function choiceFlag<T extends string>(flag: string, choices: readonly T[]): (value: string) => T {
  return (value) => {
    const v = value.trim().toLowerCase();
    const hit = choices.find((c) => c === v);
    if (hit === undefined) throw new CliError(`${flag}: "${value}" is not one of ${choices.join(", ")}`, EXIT.usage);
    return hit;
  };
}

const RELATIVE = /^-?(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A point in time: RFC 3339 (`2026-01-02T03:04:05Z`), `now`, or a duration back from now (`15m`, `-2h`, `1d`), as an
 * operator types it.
 */
export function parseTime(flag: string, value: string, now = Date.now()): Date {
  const v = value.trim();
  if (v === "now") return new Date(now);
  const rel = RELATIVE.exec(v);
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS]);
  if (/^\d{4}-\d\d-\d\d/.test(v)) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw new CliError(
    `${flag}: "${value}" is not a time (RFC 3339 like 2026-01-02T03:04:05Z, "now", or a duration back like 15m, 2h, 1d)`,
    EXIT.usage,
  );
}

export function timeFlag(flag: string): (value: string) => Timestamp {
  return (value) => timestampFromDate(parseTime(flag, value));
}

/** A Timestamp as RFC 3339, empty when unset. */
export function ts(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toISOString() : "";
}

/** A file's text; a missing or oversized file names itself (exit 2). */
export function readText(path: string, what: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`${what} ${path}: cannot be read (${code ?? (err as Error).message})`, EXIT.usage);
  }
  if (buf.byteLength > MAX_FILE_BYTES)
    throw new CliError(`${what} ${path}: ${buf.byteLength} bytes is over the ${MAX_FILE_BYTES}-byte limit`, EXIT.usage);
  return buf.toString("utf8").replace(/^\uFEFF/, "");
}

/** JSON text, a parse error naming where it came from. */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${where}: not JSON (${(err as Error).message})`, EXIT.usage);
  }
}

/**
 * A JSON argument as curl takes one: `@file` reads the file, `@-` standard input, anything else is the JSON itself.
 */
export function jsonArg(arg: string, what: string, readStdin: () => string = () => readFileSync(0, "utf8")): unknown {
  if (arg === "@-") return parseJson(readStdin(), `${what} (standard input)`);
  if (arg.startsWith("@")) return parseJson(readText(arg.slice(1), what), `${what} ${arg.slice(1)}`);
  return parseJson(arg, what);
}

/** A JSON object (a payload, a patch): an array or a scalar is refused, naming what it is. */
export function jsonObjectArg(arg: string, what: string, readStdin?: () => string): Record<string, JsonValue> {
  const v = jsonArg(arg, what, readStdin);
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new CliError(`${what}: must be a JSON object, not ${Array.isArray(v) ? "an array" : v === null ? "null" : typeof v}`, EXIT.usage);
  return v as Record<string, JsonValue>;
}

/** `key=value` pairs (repeatable). */
export function pairFlag(flag: string): (value: string, previous: Record<string, string> | undefined) => Record<string, string> {
  return (value, previous) => {
    const i = value.indexOf("=");
    if (i <= 0) throw new CliError(`${flag}: "${value}" is not key=value`, EXIT.usage);
    return { ...(previous ?? {}), [value.slice(0, i)]: value.slice(i + 1) };
  };
}

/** A secret from a flag, a file or the environment, never echoed. A secret on the command line is visible to `ps`: warned. */
export function secretFrom(ctx: CliContext, opts: { value?: string; file?: string; env?: string }, what: string): string | undefined {
  const given = [opts.value, opts.file, opts.env].filter((v) => v !== undefined).length;
  if (given > 1) throw new CliError(`${what}: give it one way only (flag, file or environment variable)`, EXIT.usage);
  if (opts.value !== undefined) {
    ctx.out.warn(`${what} given on the command line is visible to other users of this machine; prefer the file or environment form`);
    return opts.value;
  }
  if (opts.file !== undefined) return readText(opts.file, what).replace(/\r?\n$/, "");
  if (opts.env !== undefined) {
    const v = process.env[opts.env];
    if (v === undefined || v === "") throw new CliError(`${what}: environment variable ${opts.env} is not set`, EXIT.usage);
    return v;
  }
  return undefined;
}

/** A message as protobuf JSON, its empty lists present (the kit's protoJson: one rule for every verb). */
export const asJson = protoJson;

/** Runs the stream until the context's signal is aborted (Ctrl-C), which ends it quietly. */
export async function drain<T>(stream: AsyncIterable<T>, signal: AbortSignal, each: (item: T) => void | Promise<void>): Promise<void> {
  try {
    for await (const item of stream) await each(item);
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
}

/** Seconds or milliseconds for people. */
export function ms(n: number | bigint): string {
  const v = Number(n);
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} s` : `${v} ms`;
}

/** Short JSON of a value for a table cell. */
export function cell(v: unknown, max = 60): string {
  const s = typeof v === "string" ? v : (JSON.stringify(v) ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

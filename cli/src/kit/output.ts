import { styleText } from "node:util";
import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import type { Colour, Column, JsonObject, Output } from "./context.js";
import { lazy } from "./lazy.js";
import type { OutputFormat } from "./settings.js";

/** A stream the output writes to; `isTTY` decides colour (stdout) and progress bars (stderr). */
export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface OutputOptions {
  format: OutputFormat;
  stdout: OutStream;
  stderr: OutStream;
  /** Colour wanted (not --no-color, NO_COLOR unset); it is used only where the stream is a terminal. */
  colour: boolean;
}

/**
 * A response message as protobuf JSON (the shape the HTTP/JSON API and the OpenAPI document give), except that the
 * message's own fields are always present, even when empty or zero (`"monitors": []`, `"delivered": false`,
 * `"purged": "0"`): protobuf JSON drops them, and a script reading `.monitors` or `.delivered` should not have to tell
 * "none" from "missing". Nested messages stay as the API gives them.
 */
export function protoJson<D extends DescMessage>(schema: D, msg: MessageShape<D>): Record<string, unknown> {
  const j = toJson(schema, msg) as Record<string, unknown>;
  let full: Record<string, unknown> | undefined;
  for (const f of schema.fields) {
    if (f.oneof !== undefined || f.fieldKind === "message" || j[f.jsonName] !== undefined) continue;
    full ??= toJson(schema, msg, { alwaysEmitImplicit: true }) as Record<string, unknown>;
    // Undefined still for a field with explicit presence (proto3 optional) that is unset: absent is its meaning.
    if (full[f.jsonName] !== undefined) j[f.jsonName] = full[f.jsonName];
  }
  return j;
}

/** JSON that never fails on the values protobuf messages hold outside toJson (bigint, Uint8Array, Date). */
export function toJsonText(data: unknown, indent?: number): string {
  return JSON.stringify(data, jsonReplacer, indent);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  return value;
}

function plain(data: unknown): unknown {
  return JSON.parse(toJsonText(data) ?? "null");
}

function cell(value: ReturnType<Column<unknown>["value"]>): string {
  if (value === undefined || value === null) return "";
  return String(value);
}

// kubectl-like: no borders, two spaces between columns.
const NO_BORDERS = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "  ",
};

export function createOutput(options: OutputOptions): Output {
  const { format, stdout, stderr } = options;
  const colourOut = options.colour && stdout.isTTY === true;
  const colourErr = options.colour && stderr.isTTY === true;
  const paintWith = (on: boolean, text: string, colour: Colour) => (on ? styleText(colour, text, { validateStream: false }) : text);
  const line = (s: OutStream, text: string) => s.write(text.endsWith("\n") ? text : `${text}\n`);
  const document = (data: unknown) => {
    if (format === "json") line(stdout, toJsonText(data, 2));
    else line(stdout, lazy.yaml().stringify(plain(data)));
  };

  const table = <T>(rows: readonly T[], columns: readonly Column<T>[]) => {
    if (rows.length === 0) {
      line(stdout, paintWith(colourOut, "(none)", "gray"));
      return;
    }
    const Table = lazy.table();
    const t = new Table({
      head: columns.map((c) => paintWith(colourOut, c.header.toUpperCase(), "bold")),
      chars: NO_BORDERS,
      style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
      colAligns: columns.map((c) => c.align ?? "left"),
      wordWrap: false,
    });
    for (const row of rows) {
      t.push(
        columns.map((c) => {
          const text = cell(c.value(row));
          const colour = c.colour?.(row);
          return colour ? paintWith(colourOut, text, colour) : text;
        }),
      );
    }
    // cli-table3 pads the last column too; trailing spaces are noise in a terminal and in a diff.
    line(
      stdout,
      t
        .toString()
        .split("\n")
        .map((l) => l.trimEnd())
        .join("\n"),
    );
  };

  return {
    format,
    list(rows, columns, data) {
      if (format !== "table") document(data);
      else table(rows, columns);
    },
    table(rows, columns) {
      if (format === "table") table(rows, columns);
    },
    object(data: JsonObject, fields) {
      if (format !== "table") {
        document(data);
        return;
      }
      const pairs: Array<[string, unknown]> = fields ? fields.map(([label, key]) => [label, data[key]]) : Object.entries(data);
      const width = Math.max(0, ...pairs.map(([label]) => label.length));
      for (const [label, value] of pairs) {
        const text = value === undefined || value === null ? "" : typeof value === "object" ? toJsonText(value) : String(value);
        line(stdout, `${paintWith(colourOut, `${label}:`.padEnd(width + 1), "bold")}  ${text}`.trimEnd());
      }
    },
    result(message, data) {
      if (format === "table") line(stdout, message);
      else document(data);
    },
    item(text, data) {
      if (format === "table") line(stdout, text);
      else if (format === "json") line(stdout, toJsonText(data));
      else line(stdout, `---\n${lazy.yaml().stringify(plain(data))}`);
    },
    note(message) {
      line(format === "table" ? stdout : stderr, message);
    },
    warn(message) {
      line(stderr, `${paintWith(colourErr, "warning:", "yellow")} ${message}`);
    },
    paint(text, colour) {
      return paintWith(colourOut, text, colour);
    },
  };
}

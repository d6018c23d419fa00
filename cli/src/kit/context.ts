import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";

/**
 * What a verb gets: a client of the gateway and the output. Made once the global options are parsed (the gateway URL,
 * credential and TLS from flags, environment or the profile file), so a verb never reads settings itself.
 */
export interface CliContext {
  /** A Connect client of the gateway for `service`, with the profile's URL, credential, TLS and timeout. */
  client<S extends DescService>(service: S): Client<S>;
  readonly out: Output;
  /** Aborted at Ctrl-C (SIGINT) or SIGTERM: streaming verbs stop cleanly and exit 0 (130 when work was cut short). */
  readonly signal: AbortSignal;
  /** A progress bar on stderr for long work when stderr is a terminal and the output is a table; silent otherwise. */
  progress(label: string, total?: number): Progress;
}

/** One column of a table: its header and how a row gives its cell. */
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | bigint | boolean | undefined;
  align?: "left" | "right";
  /** A colour for the cell (only where the terminal supports colour and NO_COLOR is unset). */
  colour?: (row: T) => Colour | undefined;
}

export type Colour = "red" | "green" | "yellow" | "cyan" | "gray" | "bold";

/**
 * What a verb prints for scripts: one JSON object, never a bare array, so every verb's document can gain a key without
 * breaking its readers. A verb that makes one RPC gives the response as protobuf JSON (`protoJson`); see the README's
 * "Output formats" for the rule.
 */
export type JsonObject = { readonly [key: string]: unknown };

/**
 * The one way a verb prints. `table` is for people (stdout tables, colour where supported); `json` and `yaml` are for
 * scripts: stdout holds only the data, and notes go to stderr.
 */
export interface Output {
  readonly format: "table" | "json" | "yaml";
  /**
   * A list: a table of `rows` for people; `data` for scripts, the whole response as protobuf JSON (`{"monitors": [...]}`),
   * never the rows themselves.
   */
  list<T>(rows: readonly T[], columns: readonly Column<T>[], data: JsonObject): void;
  /**
   * A table for people only, printing nothing for scripts: a further section of a verb that printed its whole document
   * (`object`/`list`) already, e.g. a twin's resources under the twin.
   */
  table<T>(rows: readonly T[], columns: readonly Column<T>[]): void;
  /**
   * One object: aligned "key  value" lines for people (`fields` picks and labels them), the object for scripts (the
   * response as protobuf JSON).
   */
  object(data: JsonObject, fields?: ReadonlyArray<readonly [label: string, key: string]>): void;
  /** A verb's outcome: `message` for people (delete, stop), `data` (the response as protobuf JSON) for scripts. */
  result(message: string, data: JsonObject): void;
  /** Streamed items (tail, watch): `line` for people, one JSON document per line (NDJSON) or one YAML document each for scripts. */
  item(line: string, data: unknown): void;
  /** A line for people: stdout with `table`, stderr otherwise. */
  note(message: string): void;
  /** A warning, always on stderr. */
  warn(message: string): void;
  /** Colours `text` when colour is on. */
  paint(text: string, colour: Colour): string;
}

export interface Progress {
  /** Sets or changes the total (unknown at first for some work). */
  total(n: number): void;
  tick(n?: number): void;
  /** Removes the bar; called in finally. */
  done(): void;
}

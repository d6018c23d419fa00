import { describe, expect, it } from "vitest";
import YAML from "yaml";
import type { Column } from "./context.js";
import { createOutput, type OutStream } from "./output.js";

function stream(isTTY: boolean): OutStream & { text: string } {
  const s = {
    text: "",
    isTTY,
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s;
}

type Row = { id: string; state: string; n: bigint };
const ROWS: Row[] = [
  { id: "a-route", state: "active", n: 12n },
  { id: "b", state: "failed", n: 3n },
];
const COLUMNS: Column<Row>[] = [
  { header: "id", value: (r) => r.id },
  { header: "state", value: (r) => r.state, colour: (r) => (r.state === "failed" ? "red" : "green") },
  { header: "count", value: (r) => r.n, align: "right" },
];
const ANSI = /\u001b\[/;

describe("output", () => {
  it("prints a table without borders, headers in capitals, numbers right-aligned, no colour when stdout is no terminal", () => {
    const stdout = stream(false);
    createOutput({ format: "table", stdout, stderr: stream(false), colour: true }).list(ROWS, COLUMNS);
    expect(stdout.text).not.toMatch(ANSI);
    expect(stdout.text.split("\n")).toEqual(["ID       STATE   COUNT", "a-route  active     12", "b        failed      3", ""]);
  });

  it("colours states only on a terminal and only when colour is wanted (--no-color / NO_COLOR off)", () => {
    const tty = stream(true);
    createOutput({ format: "table", stdout: tty, stderr: stream(true), colour: true }).list(ROWS, COLUMNS);
    expect(tty.text).toMatch(ANSI);
    expect(tty.text).toContain("\u001b[31mfailed\u001b[39m");
    const off = stream(true);
    createOutput({ format: "table", stdout: off, stderr: stream(true), colour: false }).list(ROWS, COLUMNS);
    expect(off.text).not.toMatch(ANSI);
  });

  it("prints the data as one JSON document (bigints as strings), and YAML likewise", () => {
    const json = stream(true);
    createOutput({ format: "json", stdout: json, stderr: stream(true), colour: true }).list(ROWS, COLUMNS);
    expect(json.text).not.toMatch(ANSI);
    expect(JSON.parse(json.text)).toEqual([
      { id: "a-route", state: "active", n: "12" },
      { id: "b", state: "failed", n: "3" },
    ]);
    const yaml = stream(false);
    createOutput({ format: "yaml", stdout: yaml, stderr: stream(false), colour: false }).list(ROWS, COLUMNS, { routes: ["a"] });
    expect(YAML.parse(yaml.text)).toEqual({ routes: ["a"] });
  });

  it("prints streamed items as NDJSON, one document per line, and as YAML documents", () => {
    const json = stream(false);
    const out = createOutput({ format: "json", stdout: json, stderr: stream(false), colour: false });
    out.item("line one", { a: 1 });
    out.item("line two", { a: 2, b: 3n });
    expect(json.text).toBe('{"a":1}\n{"a":2,"b":"3"}\n');
    const yaml = stream(false);
    const y = createOutput({ format: "yaml", stdout: yaml, stderr: stream(false), colour: false });
    y.item("x", { a: 1 });
    y.item("y", { a: 2 });
    expect(YAML.parseAllDocuments(yaml.text).map((d) => d.toJS())).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it("puts notes on stdout for people and on stderr for scripts, warnings always on stderr", () => {
    const [o1, e1] = [stream(false), stream(false)];
    const table = createOutput({ format: "table", stdout: o1, stderr: e1, colour: false });
    table.note("hello");
    table.warn("careful");
    expect(o1.text).toBe("hello\n");
    expect(e1.text).toBe("warning: careful\n");
    const [o2, e2] = [stream(false), stream(false)];
    createOutput({ format: "json", stdout: o2, stderr: e2, colour: false }).note("hello");
    expect(o2.text).toBe("");
    expect(e2.text).toBe("hello\n");
  });

  it("prints one object as aligned label: value lines for people, the object for scripts", () => {
    const people = stream(false);
    createOutput({ format: "table", stdout: people, stderr: stream(false), colour: false }).object({ id: "r1", displayName: "R one" }, [
      ["id", "id"],
      ["name", "displayName"],
    ]);
    expect(people.text).toBe("id:    r1\nname:  R one\n");
    const script = stream(false);
    createOutput({ format: "json", stdout: script, stderr: stream(false), colour: false }).object({ id: "r1" });
    expect(JSON.parse(script.text)).toEqual({ id: "r1" });
  });

  it("says (none) for an empty table and [] for an empty list", () => {
    const t = stream(false);
    createOutput({ format: "table", stdout: t, stderr: stream(false), colour: false }).list([], COLUMNS);
    expect(t.text).toBe("(none)\n");
    const j = stream(false);
    createOutput({ format: "json", stdout: j, stderr: stream(false), colour: false }).list([], COLUMNS);
    expect(JSON.parse(j.text)).toEqual([]);
  });
});

import { create } from "@bufbuild/protobuf";
import { RespondCommandResponseSchema } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { DeleteRouteResponseSchema, ListRoutesResponseSchema } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import type { Column } from "./context.js";
import { createOutput, type OutStream, protoJson } from "./output.js";

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
const DOC = {
  rows: [
    { id: "a-route", n: "12" },
    { id: "b", n: "3" },
  ],
};

describe("output", () => {
  it("prints a table without borders, headers in capitals, numbers right-aligned, no colour when stdout is no terminal", () => {
    const stdout = stream(false);
    createOutput({ format: "table", stdout, stderr: stream(false), colour: true }).list(ROWS, COLUMNS, DOC);
    expect(stdout.text).not.toMatch(ANSI);
    expect(stdout.text.split("\n")).toEqual(["ID       STATE   COUNT", "a-route  active     12", "b        failed      3", ""]);
  });

  it("colours states only on a terminal and only when colour is wanted (--no-color / NO_COLOR off)", () => {
    const tty = stream(true);
    createOutput({ format: "table", stdout: tty, stderr: stream(true), colour: true }).list(ROWS, COLUMNS, DOC);
    expect(tty.text).toMatch(ANSI);
    expect(tty.text).toContain("\u001b[31mfailed\u001b[39m");
    const off = stream(true);
    createOutput({ format: "table", stdout: off, stderr: stream(true), colour: false }).list(ROWS, COLUMNS, DOC);
    expect(off.text).not.toMatch(ANSI);
  });

  it("prints a list's document for scripts as one JSON document (bigints as strings), never the table's rows, and YAML likewise", () => {
    const json = stream(true);
    createOutput({ format: "json", stdout: json, stderr: stream(true), colour: true }).list(ROWS, COLUMNS, {
      routes: [{ id: "a-route", n: 12n }],
    });
    expect(json.text).not.toMatch(ANSI);
    expect(JSON.parse(json.text)).toEqual({ routes: [{ id: "a-route", n: "12" }] });
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

  it("says (none) for an empty table, and gives scripts the response with its empty list present", () => {
    const t = stream(false);
    createOutput({ format: "table", stdout: t, stderr: stream(false), colour: false }).list([], COLUMNS, DOC);
    expect(t.text).toBe("(none)\n");
    const j = stream(false);
    const empty = create(ListRoutesResponseSchema);
    createOutput({ format: "json", stdout: j, stderr: stream(false), colour: false }).list(
      empty.routes,
      [],
      protoJson(ListRoutesResponseSchema, empty),
    );
    expect(JSON.parse(j.text)).toEqual({ routes: [] });
  });

  it("prints a people-only table with table, and nothing for scripts", () => {
    const t = stream(false);
    createOutput({ format: "table", stdout: t, stderr: stream(false), colour: false }).table(ROWS.slice(0, 1), COLUMNS);
    expect(t.text.split("\n")[1]).toBe("a-route  active     12");
    for (const format of ["json", "yaml"] as const) {
      const [o, e] = [stream(false), stream(false)];
      createOutput({ format, stdout: o, stderr: e, colour: false }).table(ROWS, COLUMNS);
      expect(o.text + e.text).toBe("");
    }
  });

  it("prints an outcome as its sentence for people and the response for scripts", () => {
    const [o1, e1] = [stream(false), stream(false)];
    createOutput({ format: "table", stdout: o1, stderr: e1, colour: false }).result("route r1 deleted", { dropped: "0" });
    expect(o1.text).toBe("route r1 deleted\n");
    const [o2, e2] = [stream(false), stream(false)];
    const res = create(DeleteRouteResponseSchema, { dropped: 7n });
    createOutput({ format: "json", stdout: o2, stderr: e2, colour: false }).result(
      "route r1 deleted",
      protoJson(DeleteRouteResponseSchema, res),
    );
    expect(JSON.parse(o2.text)).toEqual({ dropped: "7" });
    expect(e2.text).toBe("");
  });
});

describe("protoJson", () => {
  it("is the protobuf JSON of the message with its own zero and empty fields written out (false, [], int64 as a string), nested ones left out as the API does", () => {
    expect(protoJson(RespondCommandResponseSchema, create(RespondCommandResponseSchema, { delivered: false }))).toEqual({
      delivered: false,
    });
    expect(protoJson(DeleteRouteResponseSchema, create(DeleteRouteResponseSchema, { dropped: 12n }))).toEqual({ dropped: "12" });
    const routes = protoJson(ListRoutesResponseSchema, create(ListRoutesResponseSchema, { routes: [{ id: "r1", displayName: "R one" }] }));
    expect(routes).toEqual({ routes: [{ id: "r1", displayName: "R one" }] });
    expect(protoJson(DeleteRouteResponseSchema, create(DeleteRouteResponseSchema))).toEqual({ dropped: "0" });
  });
});

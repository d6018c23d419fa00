// biome-ignore-all lint/suspicious/noTemplateCurlyInString: jq expressions are written ${ ... } in plain strings
import { describe, expect, it } from "vitest";
import { compileCondition, compileExpression, ExpressionError, parseJsonPath } from "./expressions.js";

const payload = { a: { b: 3, list: [10, 20, 30] }, "a b": "spaced", s: "42", iso_time: "2025/09/18 18:32:28.847244", t: true, n: null };
const on = (expr: string, p: unknown = payload, endpoint = "iot/v1/telemetry") => compileExpression(expr)({ payload: p, endpoint });
const holds = (expr: string, p: unknown = payload, endpoint = "iot/v1/telemetry") => compileCondition(expr)({ payload: p, endpoint });

function errorOf(f: () => unknown): ExpressionError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ExpressionError);
    return e as ExpressionError;
  }
  throw new Error("expected an ExpressionError");
}

describe("JsonPath", () => {
  it("reads the root, members, indexes and bracketed names", () => {
    expect(on("$")).toBe(payload);
    expect(on("$.a.b")).toBe(3);
    expect(on("$.a.list[1]")).toBe(20);
    expect(on("$['a b']")).toBe("spaced");
    expect(on('$["a b"]')).toBe("spaced");
    expect(on(" $.s ")).toBe("42");
  });

  it("gives undefined for what is missing, including indexing the wrong type", () => {
    expect(on("$.missing")).toBeUndefined();
    expect(on("$.a.b.c")).toBeUndefined();
    expect(on("$.a.list[7]")).toBeUndefined();
    expect(on("$.a[0]")).toBeUndefined();
    expect(on("$.toString")).toBeUndefined();
  });

  it("refuses syntax outside the subset, naming the expression and the position", () => {
    const e = errorOf(() => compileExpression("$.a[*]"));
    expect(e.expression).toBe("$.a[*]");
    expect(e.message).toContain("position 4");
    expect(() => compileExpression("$..a")).toThrow(ExpressionError);
    expect(() => compileExpression("$.a[?(@.b)]")).toThrow(ExpressionError);
    expect(() => compileExpression("a.b")).toThrow(/JsonPath/);
  });

  it("splits a target path into segments", () => {
    expect(parseJsonPath("$.system.cpu[2]['x y']")).toEqual(["system", "cpu", 2, "x y"]);
  });
});

describe("jq subset", () => {
  it("reads identity, fields, indexes and quoted keys", () => {
    expect(on("${.}")).toBe(payload);
    expect(on("${ .a.b }")).toBe(3);
    expect(on("${.a.list[0]}")).toBe(10);
    expect(on("${.a.list[-1]}")).toBe(30);
    expect(on('${.["a b"]}')).toBe("spaced");
    expect(on('${."a b"}')).toBe("spaced");
    expect(on("${.a | .b}")).toBe(3);
  });

  it("gives null (not undefined) for a missing key, as jq does", () => {
    expect(on("${.missing}")).toBeNull();
    expect(on("${.missing.deeper}")).toBeNull();
  });

  it("fails at run time when indexing a number, as jq does", () => {
    expect(() => on("${.a.b.c}")).toThrow(/cannot index number with "c"/);
  });

  it("evaluates literals, comparisons and boolean operators", () => {
    expect(on('${"x\\ty"}')).toBe("x\ty");
    expect(on("${1.5e1}")).toBe(15);
    expect(on("${.a.b == 3}")).toBe(true);
    expect(on("${.a.b != 3}")).toBe(false);
    expect(on("${.a.b < 4 and .a.b >= 3}")).toBe(true);
    expect(on("${.a.b > 4 or .a.b <= 2}")).toBe(false);
    expect(on("${.n == null}")).toBe(true);
    expect(on("${.t | not}")).toBe(false);
    expect(on('${(.a.b == 3) and (.s == "42")}')).toBe(true);
    // jq orders null < false < true < numbers < strings
    expect(on('${1 < "1"}')).toBe(true);
    expect(on("${null < false}")).toBe(true);
  });

  it("converts with tonumber, tostring and length", () => {
    expect(on("${.s | tonumber}")).toBe(42);
    expect(on("${.a.b | tostring}")).toBe("3");
    expect(on("${.a | tostring}")).toBe('{"b":3,"list":[10,20,30]}');
    expect(on("${.a.list | length}")).toBe(3);
    expect(on('${"héllo" | length}')).toBe(5);
    expect(on("${.a | length}")).toBe(2);
    expect(() => on('${"x" | tonumber}')).toThrow(ExpressionError);
  });

  it("reads endpoint segments 1-based", () => {
    expect(on("${endpoint(1)}")).toBe("iot");
    expect(on("${endpoint(3)}")).toBe("telemetry");
    expect(on("${endpoint(4)}")).toBeNull();
    expect(on("${endpoint(2)}", payload, "/iot/pvhd")).toBe("pvhd");
  });

  it("parses fromdateformat patterns to epoch microseconds (read as UTC: the notes name no zone)", () => {
    expect(on('${.iso_time | fromdateformat("yyyy/MM/dd HH:mm:ss.SSSSSS")}')).toBe(Date.UTC(2025, 8, 18, 18, 32, 28, 847) * 1000 + 244);
    expect(on("${\"2025-09-18T18:32:28.8Z\" | fromdateformat(\"yyyy-MM-dd'T'HH:mm:ss.S'Z'\")}")).toBe(
      Date.UTC(2025, 8, 18, 18, 32, 28, 800) * 1000,
    );
    expect(on('${"18.09.2025 07:05" | fromdateformat("dd.MM.yyyy HH:mm")}')).toBe(Date.UTC(2025, 8, 18, 7, 5) * 1000);
    expect(() => on('${"2025/02/30 00:00:00.000000" | fromdateformat("yyyy/MM/dd HH:mm:ss.SSSSSS")}')).toThrow(/does not match/);
    expect(() => compileExpression('${. | fromdateformat("yyyy-MM-dd zzz")}')).toThrow(/pattern letter 'z'/);
    expect(() => compileExpression("${. | fromdateformat(.pattern)}")).toThrow(/string literal/);
  });

  it("refuses what is outside the subset, naming the expression and the position", () => {
    const e = errorOf(() => compileExpression("${.a | map(.b)}"));
    expect(e.expression).toBe("${.a | map(.b)}");
    expect(e.message).toMatch(/unknown function 'map' at position 8/);
    expect(() => compileExpression("${.a[]}")).toThrow(/iteration/);
    expect(() => compileExpression("${..}")).toThrow(/recursive descent/);
    expect(() => compileExpression("${.a + 1}")).toThrow(/unsupported character '\+'/);
    expect(() => compileExpression("${1 == 1 == 1}")).toThrow(/do not chain/);
    expect(() => compileExpression('${"\\(.a)"}')).toThrow(/interpolation/);
    expect(() => compileExpression("${.a")).toThrow(/end with/);
    expect(() => compileExpression("${}")).toThrow(/empty/);
    expect(() => compileExpression("${(.a}")).toThrow(/expected '\)'/);
    expect(() => compileExpression(`\${${"(".repeat(100)}.${")".repeat(100)}}`)).toThrow(/nested deeper/);
    expect(() => compileExpression(`$.${"a".repeat(5000)}`)).toThrow(/longer than/);
  });
});

describe("conditions", () => {
  it('holds always for "*"', () => {
    expect(holds("*", undefined, "")).toBe(true);
  });

  it("follows jq truthiness: only false and null (and a missing JsonPath) fail", () => {
    expect(holds('${endpoint(3) == "telemetry"}')).toBe(true);
    expect(holds('${endpoint(3) == "telemetry"}', payload, "iot/pvhd")).toBe(false);
    expect(holds("${0}")).toBe(true);
    expect(holds('${""}')).toBe(true);
    expect(holds("${.n}")).toBe(false);
    expect(holds("${.missing}")).toBe(false);
    expect(holds("$.missing")).toBe(false);
    expect(holds("$.a.b")).toBe(true);
  });
});

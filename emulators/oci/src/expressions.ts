/**
 * The adapter expression language as the OCI notes describe it: plain JsonPath (`$`, `$.a.b`, `$.a[0]`, `$['a b']`)
 * and `${ jq }` with the subset the samples and docs use. Anything outside the subset is refused when the adapter is
 * stored, not when a device message arrives, so a bad adapter never rejects telemetry silently.
 */

export interface ExpressionContext {
  payload: unknown;
  endpoint: string;
}

export class ExpressionError extends Error {
  override readonly name = "ExpressionError";
  constructor(
    readonly expression: string,
    detail: string,
    position?: number,
  ) {
    super(`${JSON.stringify(expression)}: ${detail}${position === undefined ? "" : ` at position ${position + 1}`}`);
  }
}

type Evaluator = (input: unknown, ctx: ExpressionContext) => unknown;
export type PathSegment = string | number;

const MAX_EXPRESSION_LENGTH = 4096;
const MAX_NESTING = 64;

export function compileExpression(expr: string): (ctx: ExpressionContext) => unknown {
  if (typeof expr !== "string") throw new ExpressionError(String(expr), "an expression must be a string");
  if (expr.length > MAX_EXPRESSION_LENGTH) throw new ExpressionError(expr.slice(0, 64), `longer than ${MAX_EXPRESSION_LENGTH} characters`);
  const text = expr.trim();
  const start = expr.indexOf(text);
  if (text.startsWith("${")) {
    if (!text.endsWith("}")) throw new ExpressionError(expr, "a jq expression must end with '}'", start + text.length - 1);
    const run = new JqParser(expr, start + 2, start + text.length - 1).parse();
    return (ctx) => run(ctx.payload, ctx);
  }
  if (text.startsWith("$")) {
    const path = parseJsonPath(expr);
    return (ctx) => readPath(ctx.payload, path);
  }
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the jq syntax itself
  throw new ExpressionError(expr, "expected a JsonPath ('$...') or a jq expression ('${...}')", start);
}

/** `"*"` always holds; anything else holds when its value is jq-truthy (everything but false, null and missing). */
export function compileCondition(expr: string): (ctx: ExpressionContext) => boolean {
  if (typeof expr === "string" && expr.trim() === "*") return () => true;
  const run = compileExpression(expr);
  return (ctx) => truthy(run(ctx));
}

const truthy = (v: unknown) => v !== false && v !== null && v !== undefined;

// ---------------------------------------------------------------------------------------------------------------
// JsonPath

/** The segments of a plain JsonPath (`$.a[0]['b c']` → ["a", 0, "b c"]); also used for payloadMapping targets. */
export function parseJsonPath(expr: string): PathSegment[] {
  const text = expr.trim();
  const base = expr.indexOf(text);
  if (!text.startsWith("$")) throw new ExpressionError(expr, "a JsonPath starts with '$'", base);
  const out: PathSegment[] = [];
  let i = 1;
  while (i < text.length) {
    const c = text[i];
    if (c === "." && text[i + 1] !== "." && text[i + 1] !== "*") {
      const m = /^[^.[\]'"\s*]+/.exec(text.slice(i + 1));
      if (!m) throw new ExpressionError(expr, "expected a member name after '.'", base + i + 1);
      out.push(m[0]);
      i += 1 + m[0].length;
    } else if (c === "[" && /^\[\d+\]/.test(text.slice(i))) {
      const m = /^\[(\d+)\]/.exec(text.slice(i))!;
      out.push(Number(m[1]));
      i += m[0].length;
    } else if (c === "[" && (text[i + 1] === "'" || text[i + 1] === '"')) {
      const quote = text[i + 1]!;
      let j = i + 2;
      let name = "";
      while (j < text.length && text[j] !== quote) {
        if (text[j] === "\\" && j + 1 < text.length) j++;
        name += text[j];
        j++;
      }
      if (text[j] !== quote || text[j + 1] !== "]") throw new ExpressionError(expr, "unterminated bracket member name", base + i);
      out.push(name);
      i = j + 2;
    } else {
      throw new ExpressionError(expr, `unsupported JsonPath syntax '${text.slice(i, i + 8)}'`, base + i);
    }
  }
  return out;
}

function readPath(value: unknown, path: readonly PathSegment[]): unknown {
  let v = value;
  for (const seg of path) {
    if (typeof seg === "number") {
      if (!Array.isArray(v)) return undefined;
      v = v[seg];
    } else {
      if (!isObject(v) || !Object.hasOwn(v, seg)) return undefined;
      v = v[seg];
    }
  }
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------------------------
// jq subset

type Token =
  | { t: "num"; v: number; pos: number }
  | { t: "str"; v: string; pos: number }
  | { t: "field"; v: string; pos: number }
  | { t: "ident"; v: string; pos: number }
  | { t: "punct"; v: string; pos: number }
  | { t: "end"; pos: number };

const PUNCT = ["==", "!=", "<=", ">=", "<", ">", "|", "(", ")", "[", "]", "."];
const COMPARISONS = new Set(["==", "!=", "<", "<=", ">", ">="]);

class JqParser {
  private readonly tokens: Token[];
  private i = 0;
  private depth = 0;

  constructor(
    private readonly expr: string,
    from: number,
    to: number,
  ) {
    this.tokens = this.tokenize(from, to);
  }

  parse(): Evaluator {
    if (this.peek().t === "end") this.fail("empty jq expression", this.peek().pos);
    const run = this.pipe();
    const rest = this.peek();
    if (rest.t !== "end") this.fail(`unexpected ${describe(rest)}`, rest.pos);
    return run;
  }

  private fail(detail: string, pos: number): never {
    throw new ExpressionError(this.expr, detail, pos);
  }

  private tokenize(from: number, to: number): Token[] {
    const s = this.expr;
    const out: Token[] = [];
    let i = from;
    while (i < to) {
      const c = s[i]!;
      if (/\s/.test(c)) {
        i++;
      } else if (c === '"') {
        const [v, next] = this.readString(i, to);
        out.push({ t: "str", v, pos: i });
        i = next;
      } else if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(s[i + 1] ?? ""))) {
        // Only a literal takes a minus: the subset has no arithmetic.
        const m = /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(s.slice(i, to))!;
        out.push({ t: "num", v: Number(m[0]), pos: i });
        i += m[0].length;
      } else if (/[A-Za-z_]/.test(c)) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i, to))!;
        out.push({ t: "ident", v: m[0], pos: i });
        i += m[0].length;
      } else if (c === "." && s[i + 1] === ".") {
        this.fail("recursive descent '..' is not supported", i);
      } else if (c === "." && /[A-Za-z_]/.test(s[i + 1] ?? "") && i + 1 < to) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1, to))!;
        out.push({ t: "field", v: m[0], pos: i });
        i += 1 + m[0].length;
      } else if (c === "." && s[i + 1] === '"' && i + 1 < to) {
        const [v, next] = this.readString(i + 1, to);
        out.push({ t: "field", v, pos: i });
        i = next;
      } else {
        const p = PUNCT.find((x) => s.startsWith(x, i) && i + x.length <= to);
        if (!p) this.fail(`unsupported character '${c}'`, i);
        out.push({ t: "punct", v: p, pos: i });
        i += p.length;
      }
    }
    out.push({ t: "end", pos: to });
    return out;
  }

  private readString(start: number, to: number): [string, number] {
    const s = this.expr;
    let i = start + 1;
    let v = "";
    const escapes: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
    while (i < to && s[i] !== '"') {
      if (s[i] === "\\") {
        const e = s[i + 1] ?? "";
        if (e === "u" && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) {
          v += String.fromCharCode(Number.parseInt(s.slice(i + 2, i + 6), 16));
          i += 6;
          continue;
        }
        if (e === "(") this.fail("string interpolation is not supported", i);
        const r = escapes[e];
        if (r === undefined) this.fail(`unknown escape '\\${e}'`, i);
        v += r;
        i += 2;
      } else {
        v += s[i];
        i++;
      }
    }
    if (i >= to) this.fail("unterminated string", start);
    return [v, i + 1];
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    return this.tokens[this.i++]!;
  }

  private isPunct(v: string): boolean {
    const t = this.peek();
    return t.t === "punct" && t.v === v;
  }

  private isIdent(v: string): boolean {
    const t = this.peek();
    return t.t === "ident" && t.v === v;
  }

  private expect(v: string): void {
    const t = this.peek();
    if (!this.isPunct(v)) this.fail(`expected '${v}' but found ${describe(t)}`, t.pos);
    this.i++;
  }

  private pipe(): Evaluator {
    if (++this.depth > MAX_NESTING) this.fail(`nested deeper than ${MAX_NESTING}`, this.peek().pos);
    let left = this.or();
    while (this.isPunct("|")) {
      this.i++;
      const l = left;
      const r = this.or();
      left = (input, ctx) => r(l(input, ctx), ctx);
    }
    this.depth--;
    return left;
  }

  private or(): Evaluator {
    let left = this.and();
    while (this.isIdent("or")) {
      this.i++;
      const l = left;
      const r = this.and();
      left = (input, ctx) => truthy(l(input, ctx)) || truthy(r(input, ctx));
    }
    return left;
  }

  private and(): Evaluator {
    let left = this.comparison();
    while (this.isIdent("and")) {
      this.i++;
      const l = left;
      const r = this.comparison();
      left = (input, ctx) => truthy(l(input, ctx)) && truthy(r(input, ctx));
    }
    return left;
  }

  private comparison(): Evaluator {
    const l = this.postfix();
    const t = this.peek();
    if (t.t !== "punct" || !COMPARISONS.has(t.v)) return l;
    this.i++;
    const r = this.postfix();
    const after = this.peek();
    if (after.t === "punct" && COMPARISONS.has(after.v)) this.fail("comparisons do not chain: add parentheses", after.pos);
    const test: Record<string, (c: number) => boolean> = {
      "==": (c) => c === 0,
      "!=": (c) => c !== 0,
      "<": (c) => c < 0,
      "<=": (c) => c <= 0,
      ">": (c) => c > 0,
      ">=": (c) => c >= 0,
    };
    const holds = test[t.v]!;
    return (input, ctx) => holds(jqCompare(l(input, ctx), r(input, ctx)));
  }

  private postfix(): Evaluator {
    let run = this.primary();
    for (;;) {
      const t = this.peek();
      if (t.t === "field") {
        this.i++;
        run = this.indexer(run, () => t.v, t.pos);
      } else if (t.t === "punct" && t.v === "[") {
        run = this.bracket(run);
      } else if (
        t.t === "punct" &&
        t.v === "." &&
        this.tokens[this.i + 1]?.t === "punct" &&
        (this.tokens[this.i + 1] as { v: string }).v === "["
      ) {
        this.i++;
        run = this.bracket(run);
      } else {
        return run;
      }
    }
  }

  private bracket(target: Evaluator): Evaluator {
    const open = this.next();
    if (this.isPunct("]")) this.fail("iteration '[]' is not supported", open.pos);
    const key = this.pipe();
    if (!this.isPunct("]"))
      this.fail(`expected ']' (slices and multiple keys are not supported) but found ${describe(this.peek())}`, this.peek().pos);
    this.i++;
    return this.indexer(target, key, open.pos);
  }

  private indexer(target: Evaluator, key: Evaluator, pos: number): Evaluator {
    return (input, ctx) => {
      const v = target(input, ctx);
      const k = key(input, ctx);
      if (v === null || v === undefined) return null;
      if (typeof k === "string" && isObject(v)) return Object.hasOwn(v, k) ? v[k] : null;
      if (typeof k === "number" && Array.isArray(v)) {
        const n = Math.floor(k);
        return v[n < 0 ? v.length + n : n] ?? null;
      }
      throw new ExpressionError(this.expr, `cannot index ${jqType(v)} with ${typeof k === "string" ? JSON.stringify(k) : jqType(k)}`, pos);
    };
  }

  private primary(): Evaluator {
    const t = this.next();
    switch (t.t) {
      case "num":
      case "str": {
        const v = t.v;
        return () => v;
      }
      case "field":
        return this.indexer(
          (input) => input,
          () => t.v,
          t.pos,
        );
      case "punct":
        if (t.v === ".") return (input) => input;
        if (t.v === "(") {
          const inner = this.pipe();
          this.expect(")");
          return inner;
        }
        return this.fail(`unexpected ${describe(t)}`, t.pos);
      case "ident":
        return this.call(t);
      case "end":
        return this.fail("unexpected end of expression", t.pos);
    }
  }

  private call(t: { v: string; pos: number }): Evaluator {
    const literals: Record<string, unknown> = { true: true, false: false, null: null };
    if (Object.hasOwn(literals, t.v)) {
      const v = literals[t.v];
      return () => v;
    }
    const noArgs: Record<string, (input: unknown) => unknown> = {
      not: (input) => !truthy(input),
      length: (input) => this.length(input, t.pos),
      tonumber: (input) => this.toNumber(input, t.pos),
      tostring: (input) => (typeof input === "string" ? input : JSON.stringify(input ?? null)),
    };
    const f = noArgs[t.v];
    if (f) {
      if (this.isPunct("(")) this.fail(`${t.v} takes no arguments`, this.peek().pos);
      return (input) => f(input);
    }
    if (t.v !== "fromdateformat" && t.v !== "endpoint") this.fail(`unknown function '${t.v}'`, t.pos);
    if (!this.isPunct("(")) this.fail(`${t.v} needs one argument in parentheses`, this.peek().pos);
    this.i++;
    const argToken = this.peek();
    const arg = this.pipe();
    this.expect(")");
    if (t.v === "endpoint") {
      return (input, ctx) => {
        const n = arg(input, ctx);
        if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
          throw new ExpressionError(this.expr, `endpoint(n) needs a positive integer, got ${JSON.stringify(n ?? null)}`, t.pos);
        }
        return ctx.endpoint.replace(/^\/+/, "").split("/")[n - 1] ?? null;
      };
    }
    if (argToken.t !== "str" || this.tokens[this.i - 2] !== argToken) {
      this.fail("fromdateformat needs a string literal pattern", argToken.pos);
    }
    const parse = compileDatePattern(argToken.v, (detail) => this.fail(detail, argToken.pos));
    return (input) => {
      if (typeof input !== "string")
        throw new ExpressionError(this.expr, `fromdateformat needs a string input, got ${jqType(input)}`, t.pos);
      const micros = parse(input);
      if (micros === undefined)
        throw new ExpressionError(this.expr, `${JSON.stringify(input)} does not match ${JSON.stringify(argToken.v)}`, t.pos);
      return Number(micros);
    };
  }

  private length(input: unknown, pos: number): number {
    if (input === null || input === undefined) return 0;
    if (typeof input === "string") return [...input].length;
    if (typeof input === "number") return Math.abs(input);
    if (Array.isArray(input)) return input.length;
    if (isObject(input)) return Object.keys(input).length;
    throw new ExpressionError(this.expr, `${jqType(input)} has no length`, pos);
  }

  private toNumber(input: unknown, pos: number): number {
    if (typeof input === "number") return input;
    if (typeof input === "string" && input.trim() !== "" && Number.isFinite(Number(input))) return Number(input);
    throw new ExpressionError(this.expr, `cannot parse ${JSON.stringify(input ?? null)} as a number`, pos);
  }
}

function describe(t: Token): string {
  if (t.t === "end") return "end of expression";
  if (t.t === "field") return `'.${t.v}'`;
  return `'${t.v}'`;
}

function jqType(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : typeof v;
}

/** jq's total order: null < false < true < numbers < strings < arrays < objects. */
function jqCompare(a: unknown, b: unknown): number {
  const rank = (v: unknown) => {
    if (v === null || v === undefined) return 0;
    if (v === false) return 1;
    if (v === true) return 2;
    if (typeof v === "number") return 3;
    if (typeof v === "string") return 4;
    return Array.isArray(v) ? 5 : 6;
  };
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 3) return (a as number) - (b as number);
  if (ra === 4) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  if (ra === 5) {
    const x = a as unknown[];
    const y = b as unknown[];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = jqCompare(x[i], y[i]);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  }
  if (ra === 6) {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    const kx = Object.keys(x).sort();
    const ky = Object.keys(y).sort();
    const c = jqCompare(kx, ky);
    if (c !== 0) return c;
    for (const k of kx) {
      const d = jqCompare(x[k], y[k]);
      if (d !== 0) return d;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// fromdateformat: the Java DateTimeFormatter letters the samples use; the time is read as UTC (the notes name no zone).

type DateField = "year" | "year2" | "month" | "day" | "hour" | "minute" | "second" | "fraction";

function compileDatePattern(pattern: string, fail: (detail: string) => never): (s: string) => bigint | undefined {
  const fields: DateField[] = [];
  let source = "^";
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "'") {
      const close = pattern.indexOf("'", i + 1);
      if (close < 0) fail("unterminated quote in the date pattern");
      source += close === i + 1 ? "'" : escapeRegex(pattern.slice(i + 1, close));
      i = close + 1;
      continue;
    }
    if (!/[A-Za-z]/.test(c)) {
      source += escapeRegex(c);
      i++;
      continue;
    }
    let n = 1;
    while (pattern[i + n] === c) n++;
    i += n;
    const two = (field: DateField) => {
      if (n > 2) fail(`pattern '${c.repeat(n)}' is not supported`);
      fields.push(field);
      return n === 1 ? "(\\d{1,2})" : "(\\d{2})";
    };
    if (c === "y" || c === "u") {
      fields.push(n === 2 ? "year2" : "year");
      source += n === 2 ? "(\\d{2})" : `(\\d{${Math.max(n, 1)},9})`;
    } else if (c === "M") source += two("month");
    else if (c === "d") source += two("day");
    else if (c === "H") source += two("hour");
    else if (c === "m") source += two("minute");
    else if (c === "s") source += two("second");
    else if (c === "S") {
      if (n > 9) fail("more than 9 fraction digits");
      fields.push("fraction");
      source += `(\\d{${n}})`;
    } else fail(`pattern letter '${c}' is not supported`);
  }
  const re = new RegExp(`${source}$`);
  return (s) => {
    const m = re.exec(s);
    if (!m) return undefined;
    const v = { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, micros: 0 };
    fields.forEach((f, k) => {
      const text = m[k + 1]!;
      if (f === "fraction") v.micros = Number(text.padEnd(6, "0").slice(0, 6));
      else if (f === "year2") v.year = 2000 + Number(text);
      else v[f] = Number(text);
    });
    return utcMicros(v);
  };
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** Epoch microseconds of a UTC calendar time, undefined when a field is out of range (Feb 30, hour 24…). */
export function utcMicros(v: {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  micros: number;
}): bigint | undefined {
  if (v.hour > 23 || v.minute > 59 || v.second > 59) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(v.year, v.month - 1, v.day);
  d.setUTCHours(v.hour, v.minute, v.second, 0);
  if (d.getUTCFullYear() !== v.year || d.getUTCMonth() !== v.month - 1 || d.getUTCDate() !== v.day) return undefined;
  return BigInt(d.getTime()) * 1000n + BigInt(v.micros);
}

import { fromJsonString } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { type SeededRandom, seededRandom } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { keysInText, mayHaveDuplicateKeys } from "./json-request.js";

const bytes = (text: string) => new TextEncoder().encode(text);

/** protobuf-es's verdict: does fromJsonString refuse this text for a duplicate key? */
function libraryRefusesDuplicate(text: string): boolean {
  try {
    fromJsonString(ValueSchema, text);
    return false;
  } catch (err) {
    return String(err).includes("duplicate object key");
  }
}

/**
 * JSON text with keys that now and then repeat, and strings full of what a scan could trip on; `plain`: no escape
 * anywhere (no backslash in the text).
 */
function randomJson(r: SeededRandom, plain = false, depth = 0): string {
  const texts = plain
    ? ["a", "b", "id", "é", "{", "}", "[", "]", ",", ":", ": ", "\u00e9\u4e2d", "k"]
    : ["a", "b", "id", "é", "{", "}", "[", "]", ",", ":", '"', "\\", '\\"', "x\\", "\u00e9\u4e2d", "\n", "k"];
  const str = () => JSON.stringify(r.pick(texts) + (r.bool() ? r.pick(["", "a", "b"]) : ""));
  const kind = depth > 3 ? r.int(3) : r.int(6);
  switch (kind) {
    case 0:
      return str();
    case 1:
      return r.pick(["1", "-2.5e3", "true", "false", "null"]);
    case 2:
      return plain ? '"a"' : r.pick(['"a"', '"\\u0061"', '"\\\\"']);
    case 3:
    case 4: {
      const keys = Array.from({ length: r.int(5) }, () => (!plain && r.int(5) === 0 ? r.pick(['"\\u0061"', '"a\\\\"']) : str()));
      return `{${keys.map((k) => `${k}${r.bool() ? " : " : ":"}${randomJson(r, plain, depth + 1)}`).join(r.bool() ? ", " : ",")}}`;
    }
    default:
      return `[${Array.from({ length: r.int(4) }, () => randomJson(r, plain, depth + 1)).join(",")}]`;
  }
}

/** Keys of every object JSON.parse made of a text (a repeated key counted once, as JSON.parse keeps one). */
function parsedKeys(json: unknown): number {
  if (Array.isArray(json)) return json.reduce((n: number, item) => n + parsedKeys(item), 0);
  if (typeof json !== "object" || json === null) return 0;
  return Object.values(json).reduce((n: number, value) => n + 1 + parsedKeys(value), 0);
}

describe("keysInText", () => {
  it("counts more keys than JSON.parse keeps exactly when protobuf-es refuses a duplicate key, for random JSON without a backslash", () => {
    const seed = Date.now();
    const r = seededRandom(seed);
    let duplicates = 0;
    let clean = 0;
    for (let n = 0; n < 5000; n++) {
      const text = randomJson(r, true);
      expect(text).not.toContain("\\");
      const refused = libraryRefusesDuplicate(text);
      expect(keysInText(text) !== parsedKeys(JSON.parse(text)), `seed ${seed}: ${text}`).toBe(refused);
      if (refused) duplicates++;
      else clean++;
    }
    expect(duplicates).toBeGreaterThan(200);
    expect(clean).toBeGreaterThan(1000);
  });

  it("tells a colon in a string from one after a key, in objects nested in arrays", () => {
    expect(keysInText('{"a":":","b":{"a":"1:2"},"c":[{"a":1,"b":"::"},{"a":"x"}]}')).toBe(7);
    expect(keysInText('[":",{"k" : 1}]')).toBe(1);
    expect(keysInText('"a:b"')).toBe(0);
  });
});

describe("mayHaveDuplicateKeys", () => {
  it("says yes whenever protobuf-es refuses a duplicate key, for random JSON", () => {
    const seed = Date.now();
    const r = seededRandom(seed);
    let duplicates = 0;
    let clean = 0;
    for (let n = 0; n < 5000; n++) {
      const text = randomJson(r);
      const refused = libraryRefusesDuplicate(text);
      const scan = mayHaveDuplicateKeys(bytes(text));
      if (refused) {
        expect(scan, `seed ${seed}: ${text}`).toBe(true);
        duplicates++;
      } else if (!scan) {
        clean++;
      }
    }
    // Both verdicts were exercised (the scan says "maybe" only for escaped keys and very large objects).
    expect(duplicates).toBeGreaterThan(200);
    expect(clean).toBeGreaterThan(1000);
  });

  it("tells a key from a string value, in objects nested in arrays", () => {
    expect(mayHaveDuplicateKeys(bytes('{"a":"a","b":{"a":1},"c":[{"a":1,"b":2},{"a":3}]}'))).toBe(false);
    expect(mayHaveDuplicateKeys(bytes('{"a":1,"b":[{"x":1}],"a":2}'))).toBe(true);
    expect(mayHaveDuplicateKeys(bytes('[{"q\\"":1},{"q\\"":1}]'))).toBe(true); // an escaped key: not decided here
    expect(mayHaveDuplicateKeys(bytes('{"s":"\\\\","t":"\\"}{,:"}'))).toBe(false);
  });

  it("leaves an object with very many keys to the library", () => {
    const wide = `{${Array.from({ length: 100 }, (_, i) => `"k${i}":${i}`).join(",")}}`;
    expect(mayHaveDuplicateKeys(bytes(wide))).toBe(true);
    expect(libraryRefusesDuplicate(wide)).toBe(false);
  });
});

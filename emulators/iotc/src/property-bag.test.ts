import { describe, expect, it } from "vitest";
import { formatPropertyBag, parsePropertyBag } from "./property-bag.js";

describe("property bags", () => {
  it("percent-decodes keys and values, as the Node SDK encodes them with querystring", () => {
    expect(parsePropertyBag("%24.mid=m1&%24.ct=application%2Fjson%3Bcharset%3Dutf-8&a%20b=c%26d")).toEqual({
      "$.mid": "m1",
      "$.ct": "application/json;charset=utf-8",
      "a b": "c&d",
    });
  });

  it("takes literal $. keys, a trailing slash, keys without = and an empty bag", () => {
    expect(parsePropertyBag("$.ce=utf-8&flag&empty=/")).toEqual({ "$.ce": "utf-8", flag: "", empty: "" });
    expect(parsePropertyBag("")).toEqual({});
    expect(parsePropertyBag("/")).toEqual({});
  });

  it("keeps a value that is not valid percent-encoding as written", () => {
    expect(parsePropertyBag("a=100%")).toEqual({ a: "100%" });
  });

  it("round-trips through format", () => {
    const props = { "$.mid": "x", "method-name": "comp*cmd", "with space": "a&b=c/d" };
    expect(parsePropertyBag(formatPropertyBag(props))).toEqual(props);
  });
});

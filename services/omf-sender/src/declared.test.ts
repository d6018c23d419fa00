import { describe, expect, it } from "vitest";
import { parseEndpoints } from "./declared.js";

describe("endpoints file", () => {
  it("names the entry and field of every problem, and accepts both shapes", () => {
    expect(parseEndpoints([{ id: "eds", kind: "eds", url: "http://localhost:5590" }], { hasKey: false })).toHaveLength(1);
    expect(
      parseEndpoints({ endpoints: [{ id: "eds", kind: "EDS", url: "http://localhost:5590" }] }, { hasKey: false })[0]?.settings.kind,
    ).toBe("eds");
    expect(() =>
      parseEndpoints(
        [
          { id: "a", kind: "eds", url: "http://x", bogus: 1 },
          { id: "a", kind: "pi", url: "https://pi", username: "u", password: 5 },
        ],
        { hasKey: true },
      ),
    ).toThrow(/endpoints\[0\]\.bogus: unknown setting.*endpoints\[1\]\.id: duplicates endpoints\[0\]\.id.*endpoints\[1\]\.password/);
    expect(() => parseEndpoints({}, { hasKey: true })).toThrow(/OMF_ENDPOINTS_FILE/);
  });
});

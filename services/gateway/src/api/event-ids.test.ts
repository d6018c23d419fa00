import { describe, expect, it } from "vitest";
import { randomEventId } from "./event-ids.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("random event ids", () => {
  it("are version 4 UUIDs, all different across many refills of the random bytes", () => {
    const ids = Array.from({ length: 20_000 }, () => randomEventId());
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("vary in every random hex digit (none stuck), and the variant takes its four values", () => {
    const ids = Array.from({ length: 4000 }, () => randomEventId());
    for (let at = 0; at < 36; at++) {
      if ([8, 13, 18, 23, 14].includes(at)) continue;
      const seen = new Set(ids.map((id) => id[at]));
      expect(seen.size, `position ${at}`).toBe(at === 19 ? 4 : 16);
    }
  });
});

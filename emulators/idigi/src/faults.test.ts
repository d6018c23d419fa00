import { FaultConfigError } from "@meridian/emulator-kit";
import { describe, expect, it } from "vitest";
import { FaultSet, parseFault } from "./faults.js";

describe("parseFault", () => {
  it("validates each fault type's fields and names the wrong one", () => {
    expect(parseFault({ type: "dropMidFrame", afterBytes: 9, monitorId: 3, times: 2 })).toEqual({
      type: "dropMidFrame",
      afterBytes: 9,
      monitorId: 3,
    });
    expect(parseFault({ type: "refuseConnect", status: 503, silent: true, times: 2 })).toEqual({
      type: "refuseConnect",
      status: 503,
      silent: true,
      times: 2,
    });
    const field = (body: unknown) => {
      try {
        parseFault(body);
      } catch (err) {
        expect(err).toBeInstanceOf(FaultConfigError);
        return (err as FaultConfigError).field;
      }
      return undefined;
    };
    expect(field({ type: "meteor" })).toBe("type");
    expect(field({ type: "stall" })).toBe("ms");
    expect(field({ type: "splitFrames", chunkBytes: 0 })).toBe("chunkBytes");
    expect(field({ type: "dropAfterBatch", monitorId: 0 })).toBe("monitorId");
    expect(field("x")).toBe("body");
  });
});

describe("FaultSet", () => {
  it("one-shot faults are used up (times), switches stay until cleared; a monitor filter applies", () => {
    const f = new FaultSet();
    f.add({ type: "dropAfterBatch", times: 2 });
    f.add({ type: "slowReads", delayMs: 10, monitorId: 7 });
    expect(f.take("dropAfterBatch", 1)).toBeDefined();
    expect(f.take("dropAfterBatch", 1)).toBeDefined();
    expect(f.take("dropAfterBatch", 1)).toBeUndefined();
    expect(f.peek("slowReads", 1)).toBeUndefined();
    expect(f.take("slowReads", 7)).toBeDefined();
    expect(f.peek("slowReads", 7)?.fired).toBe(1);
    f.clear();
    expect(f.list()).toEqual([]);
  });
});

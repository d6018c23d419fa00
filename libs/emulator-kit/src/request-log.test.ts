import { describe, expect, it } from "vitest";
import { logRequests } from "./request-log.js";

describe("logRequests", () => {
  it("logs a failed or faulted request at info, any other at debug, with its entry", () => {
    const lines: Array<[string, unknown]> = [];
    const log = logRequests({
      info: ((o: unknown) => void lines.push(["info", o])) as never,
      debug: ((o: unknown) => void lines.push(["debug", o])) as never,
    });
    const ok = { status: 200, path: "/a" };
    const failed = { status: 503, path: "/b" };
    const faulted = { status: 200, path: "/c", fault: "latency" };
    log(ok);
    log(failed);
    log(faulted);
    expect(lines).toEqual([
      ["debug", ok],
      ["info", failed],
      ["info", faulted],
    ]);
  });
});

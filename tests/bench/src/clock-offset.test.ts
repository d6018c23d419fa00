import { describe, expect, it } from "vitest";
import { measureClockOffset, offsetFromProbes } from "./clock-offset.js";

describe("clock offset", () => {
  it("takes the probe with the shortest round trip: their clock minus the middle of ours", () => {
    // Their clock is 6 ms behind; the slow probes' answers are late or early by up to their trip.
    const probes = [
      { sentMs: 1000, remoteMs: 1000, receivedMs: 1010 },
      { sentMs: 2000, remoteMs: 1994.5, receivedMs: 2001 },
      { sentMs: 3000, remoteMs: 2999, receivedMs: 3008 },
    ];
    expect(offsetFromProbes(probes)).toEqual({ offsetMs: -6, roundTripMs: 1 });
  });

  it("refuses no probe or one whose answer came before its question", () => {
    expect(() => offsetFromProbes([])).toThrow(/no clock probe/);
    expect(() => offsetFromProbes([{ sentMs: 5, remoteMs: 1, receivedMs: 4 }])).toThrow(/out of order/);
  });

  it("measures a remote clock that runs a fixed amount ahead, within half the round trip", async () => {
    let now = 10_000;
    const local = () => now;
    const remote = async () => {
      now += 0.25;
      const answer = now + 42;
      now += 0.25;
      return answer;
    };
    const { offsetMs, roundTripMs } = await measureClockOffset(remote, local, 5);
    expect(roundTripMs).toBe(0.5);
    expect(Math.abs(offsetMs - 42)).toBeLessThanOrEqual(roundTripMs / 2);
  });
});

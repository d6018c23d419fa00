/**
 * The offset of another process's clock from this one's, as NTP estimates it: ask for its time between two readings of
 * our own, and take the probe with the shortest round trip, whose answer is the least blurred by the trip (the error
 * is at most half that round trip). Both clocks are performance.timeOrigin + performance.now(); each process's
 * timeOrigin is the wall clock at its own start, so two processes can disagree by whatever the wall clock was stepped
 * or slewed in between (one bench run saw send → sink latencies of −5 ms).
 */
export interface ClockProbe {
  /** Our clock when the question left. */
  sentMs: number;
  /** Their clock in the answer. */
  remoteMs: number;
  /** Our clock when the answer came. */
  receivedMs: number;
}

/** Their clock minus ours, in ms, and the round trip of the probe it came from. */
export function offsetFromProbes(probes: readonly ClockProbe[]): { offsetMs: number; roundTripMs: number } {
  let best: ClockProbe | undefined;
  for (const p of probes) {
    if (!(p.receivedMs >= p.sentMs) || !Number.isFinite(p.remoteMs)) throw new Error(`clock probe out of order: ${JSON.stringify(p)}`);
    if (best === undefined || p.receivedMs - p.sentMs < best.receivedMs - best.sentMs) best = p;
  }
  if (best === undefined) throw new Error("no clock probe");
  return { offsetMs: best.remoteMs - (best.sentMs + best.receivedMs) / 2, roundTripMs: best.receivedMs - best.sentMs };
}

/** Probes `remoteNowMs` `count` times against `localNowMs` and estimates the offset. */
export async function measureClockOffset(
  remoteNowMs: () => Promise<number>,
  localNowMs: () => number,
  count = 7,
): Promise<{ offsetMs: number; roundTripMs: number }> {
  const probes: ClockProbe[] = [];
  for (let i = 0; i < count; i++) {
    const sentMs = localNowMs();
    const remoteMs = await remoteNowMs();
    probes.push({ sentMs, remoteMs, receivedMs: localNowMs() });
  }
  return offsetFromProbes(probes);
}

/** The emulator's clock: wall time plus an offset a test may move, with microseconds for data rows. */
export class Clock {
  offsetMs = 0;
  private lastMicros = 0n;

  nowMs(): number {
    return Date.now() + this.offsetMs;
  }

  /** Epoch microseconds, strictly increasing within the process (rows written in one millisecond keep their order). */
  nowMicros(): bigint {
    const wall = BigInt(Math.floor((performance.timeOrigin + performance.now() + this.offsetMs) * 1000));
    this.lastMicros = wall > this.lastMicros ? wall : this.lastMicros + 1n;
    return this.lastMicros;
  }

  /** RFC 3339 with milliseconds, as the control plane writes timeCreated. */
  iso(): string {
    return new Date(this.nowMs()).toISOString();
  }
}

/**
 * Collects work and runs it together at the end of the current turn of the event loop (setImmediate, after the I/O
 * callbacks of this turn). The bus client writes what is queued within one microtask run as one socket write, but a
 * server handling many requests, or a sink handling many responses, reads each from its own socket callback with its
 * own microtask run: without this, each publish or ack would be its own write, and its own read by nats-server.
 * The delay is the rest of the current turn: nothing when idle, a fraction of a millisecond under load.
 */
export class EndOfTurn<T> {
  private queued: T[] = [];

  constructor(private readonly run: (items: T[]) => void) {}

  add(item: T): void {
    if (this.queued.push(item) === 1) setImmediate(() => this.flush());
  }

  /** Runs what is queued now (also called by the turn's end, when it may find nothing). */
  flush(): void {
    if (this.queued.length === 0) return;
    const items = this.queued;
    this.queued = [];
    this.run(items);
  }
}

import type { Logger } from "pino";

/** What stopOnSignals needs of the process: replaced in tests. */
export interface SignalTarget {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  exit(code: number): void;
}

/**
 * A stand-alone emulator's end: at SIGINT or SIGTERM it logs "stopping", runs `stop()` once (a second signal while it
 * runs does nothing) and exits 0, or 1 when stop() failed.
 */
export function stopOnSignals(stop: () => Promise<void>, log: Pick<Logger, "info">, target: SignalTarget = process): void {
  let stopping = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    target.on(sig, () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, "stopping");
      stop().then(
        () => target.exit(0),
        () => target.exit(1),
      );
    });
  }
}

import cliProgress from "cli-progress";
import type { Progress } from "./context.js";
import type { OutStream } from "./output.js";

const SILENT: Progress = { total() {}, tick() {}, done() {} };

/**
 * A bar on stderr for people watching a terminal; nothing for scripts (stderr not a terminal, or -o json|yaml), so a
 * log never fills with redraws.
 */
export function createProgress(label: string, total: number | undefined, stderr: OutStream, enabled: boolean): Progress {
  if (!enabled || stderr.isTTY !== true) return SILENT;
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr as unknown as NodeJS.WritableStream,
      format: `${label} [{bar}] {value}/{total} {percentage}% {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let count = 0;
  let known = total ?? 0;
  const start = () => {
    if (!started) {
      bar.start(known, count);
      started = true;
    }
  };
  start();
  return {
    total(n) {
      known = n;
      bar.setTotal(n);
    },
    tick(n = 1) {
      count += n;
      bar.update(count);
    },
    done() {
      if (started) bar.stop();
      started = false;
    },
  };
}

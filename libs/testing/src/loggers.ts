import { Writable } from "node:stream";
import { type Logger, pino } from "pino";

/** The logger tests pass to services: silent unless TEST_LOG_LEVEL asks for lines (e.g. TEST_LOG_LEVEL=debug). */
export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
}

export interface CapturedLogs {
  logger: Logger;
  /** Every line, parsed. */
  lines: Record<string, unknown>[];
  /** Every line as written, to look for text that must never appear (secrets). */
  raw: string[];
}

/** A debug-level pino logger whose JSON lines are kept, for tests of what is logged. */
export function captureLogger(base: Record<string, unknown> = { service: "test" }): CapturedLogs {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n").filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: pino({ level: "debug", base }, stream), lines, raw };
}

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";

/** Name and version of a service, as its status reports and startup line give them. */
export interface ServiceIdentity {
  name: string;
  version: string;
}

/**
 * The version in the package.json nearest above `moduleUrl` (pass `import.meta.url`): one source of truth for a
 * service's version, the same from `src/` (tests) and `dist/` (images).
 */
export function packageVersion(moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    try {
      const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version?: string };
      return version ?? "0.0.0";
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const parent = dirname(dir);
    if (parent === dir) return "0.0.0";
    dir = parent;
  }
}

/** `{ name, version }` for a service whose package.json sits above `moduleUrl`. */
export function serviceIdentity(name: string, moduleUrl: string): ServiceIdentity {
  return { name, version: packageVersion(moduleUrl) };
}

/** EX_CONFIG from sysexits.h: the exit code of a process that was given a setting it cannot run with. */
export const EXIT_CONFIG = 78;

/**
 * The whole of a service's main.ts: reads the settings (a bad one ends the process with exit code 78 and a message
 * naming it, before anything starts), makes the logger, starts the service. SIGTERM / SIGINT are handled by the
 * server that `start` runs (startService): a graceful stop, then exit.
 */
export async function runMain<S extends z.ZodObject>(
  name: string,
  schema: S,
  start: (config: z.infer<S>, logger: Logger) => Promise<unknown>,
): Promise<void> {
  const logger = createLogger(name);
  try {
    await start(loadConfig(schema), logger);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    logger.fatal({ err }, "start failed");
    process.exit(1);
  }
}

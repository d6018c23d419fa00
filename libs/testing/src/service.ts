import type { Logger } from "pino";
import { testIdentitiesFile } from "./identities.js";
import { testLogger } from "./loggers.js";

/** What every service starter returns, as far as a test needs it. */
export interface StartedService {
  bus: { ready: Promise<unknown> };
  stop(): Promise<void>;
}

/**
 * Starts a service in the test process the way its main.ts would, on a free port and without signal handlers, and
 * waits until its bus is up. `env` is the environment the service would see (undefined removes a key), parsed by the
 * service's own settings schema, so a test exercises the real configuration path. Authentication stays on: unless
 * `env` names AUTH_MODE or AUTH_IDENTITIES_FILE, the service trusts the test identities (TEST_KEYS).
 */
export async function startForTest<C, O extends { installSignalHandlers?: boolean }, S extends StartedService>(
  start: (config: C, logger: Logger, options: O) => Promise<S>,
  settings: { parse(input: unknown): C },
  env: Record<string, string | undefined>,
  options: Omit<O, "installSignalHandlers"> = {} as Omit<O, "installSignalHandlers">,
  logger: Logger = testLogger(),
): Promise<S> {
  const auth = "AUTH_MODE" in env || "AUTH_IDENTITIES_FILE" in env ? {} : { AUTH_IDENTITIES_FILE: testIdentitiesFile() };
  const raw = Object.fromEntries(Object.entries({ PORT: "0", ...auth, ...env }).filter(([, v]) => v !== undefined));
  const service = await start(settings.parse(raw), logger, { ...options, installSignalHandlers: false } as O);
  await service.bus.ready;
  return service;
}

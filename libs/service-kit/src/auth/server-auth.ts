import type { Logger } from "../logger.js";
import { Authenticator } from "./authenticator.js";
import type { CallerLimits } from "./interceptor.js";
import type { AuthSettings } from "./settings.js";

/** Everything the server needs to authenticate and authorise calls, made once from the settings. */
export interface ServerAuth {
  authenticator: Authenticator;
  reflection: "authenticated" | "open";
  metrics: "open" | "required";
  limits: CallerLimits;
}

export function serverAuth(settings: AuthSettings, logger: Logger): ServerAuth {
  return {
    authenticator: new Authenticator(settings, logger),
    reflection: settings.AUTH_REFLECTION,
    metrics: settings.AUTH_METRICS,
    limits: { ratePerSecond: settings.CALLER_RATE_LIMIT, burst: settings.CALLER_RATE_BURST, maxStreams: settings.CALLER_MAX_STREAMS },
  };
}

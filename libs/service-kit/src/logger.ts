import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

/**
 * Paths whose values are replaced by "[redacted]" wherever they appear in a log line. Secrets
 * must never reach a log; this list is the safety net for the objects we log whole.
 */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "secret",
  "*.secret",
  "clientSecret",
  "*.clientSecret",
  "client_secret",
  "*.client_secret",
  "token",
  "*.token",
  "accessToken",
  "*.accessToken",
  "access_token",
  "*.access_token",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  "*.headers.Authorization",
  "Authorization",
  "*.Authorization",
  "apiKey",
  "*.apiKey",
  "credentials",
  "*.credentials",
  "sharedAccessKey",
  "*.sharedAccessKey",
  "symmetricKey",
  "*.symmetricKey",
];

/** The one logger factory: JSON lines on stdout, service name on every line, secrets redacted. */
export function createLogger(service: string, options: LoggerOptions = {}): Logger {
  return pino({
    level: process.env.LOG_LEVEL ?? "info",
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
    ...options,
  });
}

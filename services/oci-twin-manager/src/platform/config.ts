import { OciInvalidArgumentError } from "./errors.js";
import type { OciClientOptions } from "./types.js";

/** Per request (one attempt), when the options give none. */
export const DEFAULT_TIMEOUT_MS = 30_000;
export const MIN_TIMEOUT_MS = 1_000;
export const MAX_TIMEOUT_MS = 300_000;

/**
 * The SDK's own retry (OciSdkDefaultRetryConfiguration: 8 attempts, up to 30 s apart, ~2 min in all) is kept for what
 * it retries (409 IncorrectState, 429 TooManyRequests, 5xx, network failures) but bounded tighter: a caller of this
 * client (the API, a pipeline) has its own backoff and must hear of an outage in seconds, not minutes.
 */
export const DEFAULT_MAX_ATTEMPTS = 4;
export const MAX_MAX_ATTEMPTS = 10;
export const DEFAULT_MAX_RETRY_DELAY_MS = 8_000;
export const MAX_MAX_RETRY_DELAY_MS = 60_000;
/** No new attempt starts after this long since the first one (a 429 with a long Retry-After ends the call instead). */
export const DEFAULT_MAX_RETRY_TOTAL_MS = 30_000;
export const MAX_MAX_RETRY_TOTAL_MS = 600_000;

/** Control-plane and ORDS answers are read up to this many bytes (a page of 1000 summaries is well under 4 MB). */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** Error bodies and the token answer are small; more is read only to be dropped. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The device endpoint takes payloads up to this size (OCI's HTTPS ingest limit for one message). */
export const MAX_DEVICE_PAYLOAD_BYTES = 256 * 1024;
export const MAX_ENDPOINT_LENGTH = 1024;

/** ORDS pages: 1 to 500 rows; 25 when the query gives none (ORDS's own default). */
export const MAX_DATA_LIMIT = 500;
export const DEFAULT_DATA_LIMIT = 25;

/** Control-plane list pages: 1 to 1000. */
export const MAX_LIST_LIMIT = 1000;
/** listAll stops (OciError code TooManyItems) rather than hold more than this in memory. */
export const DEFAULT_LIST_ALL_MAX_ITEMS = 10_000;

/** The identity-domain token is renewed this long before it expires (manage-dt's TOKEN_GRACE_SECONDS). */
export const TOKEN_GRACE_MS = 60_000;

/** waitFor: how long it polls when not told, and how often. */
export const DEFAULT_WAIT_TIMEOUT_MS = 60_000;
export const WAIT_POLL_MS = 1_000;

export interface ResolvedOptions {
  timeoutMs: number;
  maxAttempts: number;
  maxRetryDelayMs: number;
  maxRetryTotalMs: number;
  endpoint?: string;
  dataUrl?: string;
  deviceUrl?: string;
  identityUrl?: string;
}

function bounded(field: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OciInvalidArgumentError(field, `must be an integer from ${min} to ${max} (got ${value})`);
  }
  return value;
}

/**
 * A base URL as the client joins paths to it: http or https, no user, query or fragment, the trailing slash dropped.
 * Plain http is allowed for an emulator on localhost (the SDK allows it too).
 */
export function baseUrl(field: string, value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OciInvalidArgumentError(field, `not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new OciInvalidArgumentError(field, "must be an http(s) URL");
  if (url.username || url.password) throw new OciInvalidArgumentError(field, "must not carry a user or password");
  if (url.search || url.hash) throw new OciInvalidArgumentError(field, "must not have a query or fragment");
  return value.replace(/\/+$/, "");
}

/** The options with their defaults, each checked against its bounds (a wrong one is an OciInvalidArgumentError). */
export function resolveOptions(options: OciClientOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    timeoutMs: bounded("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS),
    maxAttempts: bounded("retry.maxAttempts", options.retry?.maxAttempts, DEFAULT_MAX_ATTEMPTS, 1, MAX_MAX_ATTEMPTS),
    maxRetryDelayMs: bounded("retry.maxDelayMs", options.retry?.maxDelayMs, DEFAULT_MAX_RETRY_DELAY_MS, 1, MAX_MAX_RETRY_DELAY_MS),
    maxRetryTotalMs: bounded("retry.maxTotalMs", options.retry?.maxTotalMs, DEFAULT_MAX_RETRY_TOTAL_MS, 1, MAX_MAX_RETRY_TOTAL_MS),
  };
  const endpoint = baseUrl("endpoint", options.endpoint);
  const dataUrl = baseUrl("dataUrl", options.dataUrl);
  const deviceUrl = baseUrl("deviceUrl", options.deviceUrl);
  const identityUrl = baseUrl("identityUrl", options.identityUrl);
  if (endpoint !== undefined) {
    if (/\/20250531$/.test(endpoint))
      throw new OciInvalidArgumentError("endpoint", "give the base URL without /20250531 (the SDK appends it)");
    resolved.endpoint = endpoint;
  }
  if (dataUrl !== undefined) resolved.dataUrl = dataUrl;
  if (deviceUrl !== undefined) resolved.deviceUrl = deviceUrl;
  if (identityUrl !== undefined) resolved.identityUrl = identityUrl;
  if (options.caPem !== undefined && !options.caPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new OciInvalidArgumentError("caPem", "must be a PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  return resolved;
}

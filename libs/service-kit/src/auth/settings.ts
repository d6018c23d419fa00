import { z } from "zod";

/** Authentication and per-caller settings; part of every service's settings (serviceSettings). */
export const authSettings = {
  /**
   * "required" (default): every RPC but health needs a credential holding the RPC's role. "disabled" gives every
   * caller every role; it is for benchmarks and local experiments, and the service says so at start.
   */
  AUTH_MODE: z.enum(["required", "disabled"]).default("required"),
  /** JSON file of API keys (hashed) and client-certificate identities with their roles; re-read when it changes. */
  AUTH_IDENTITIES_FILE: z.string().min(1).optional(),
  /** The token issuer's JWKS (OIDC `jwks_uri`); or AUTH_JWKS_FILE, a JWKS on disk. */
  AUTH_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  AUTH_JWKS_FILE: z.string().min(1).optional(),
  /** Required with a JWKS: tokens from any other issuer, or for any other audience, are refused. */
  AUTH_JWT_ISSUER: z.string().min(1).max(512).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).max(512).optional(),
  /** The claim that lists the caller's Meridian roles: a list, or a space-separated string like "scope". */
  AUTH_JWT_ROLES_CLAIM: z
    .string()
    .regex(/^[A-Za-z0-9_.:/-]{1,128}$/)
    .default("roles"),
  /** Server reflection: "authenticated" (default: any known caller) or "open". */
  AUTH_REFLECTION: z.enum(["authenticated", "open"]).default("authenticated"),
  /** /metrics: "open" (default; keep scrapers' reach small with the NetworkPolicies) or "required" (role metrics:read). */
  AUTH_METRICS: z.enum(["open", "required"]).default("open"),
  /** Calls per second one caller may make (token bucket), and the burst above that rate. */
  CALLER_RATE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
  CALLER_RATE_BURST: z.coerce.number().int().min(1).max(1_000_000).default(2_000),
  /** Streaming calls (Subscribe, WatchEvents) one caller may hold open at once. */
  CALLER_MAX_STREAMS: z.coerce.number().int().min(1).max(10_000).default(32),
};

const schema = z.object(authSettings);
export type AuthSettings = z.infer<typeof schema>;

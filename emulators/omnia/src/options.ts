import type { AuthOptions } from "./auth.js";
import type { FaultConfig } from "./faults.js";
import type { RateLimit } from "./rate-limit.js";
import { DEFAULT_FACILITIES } from "./seed.js";
import type { Facility } from "./store.js";

/** The resource (app id) of the Dev/Test Timeseries API: the audience a token is for. */
export const DEFAULT_RESOURCE_ID = "32f2a909-8a98-4eb8-b22d-1208d9350cb0";

export interface RequestLogEntry {
  method: string;
  path: string;
  operation: string;
  status: number;
  ms: number;
  traceId: string;
  fault?: string;
}

export interface OmniaEmulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Default true: https with a CA generated at start (`caPem`). */
  tls?: boolean;
  /** Extra names in the server certificate (a compose service name). */
  tlsHostnames?: string[];
  /** Write the CA PEM here at start. */
  caFile?: string;
  /** How tokens are checked. Default `verify`, which needs `authority` or `jwksUri`. */
  auth?: AuthOptions;
  /** The API's resource id; the accepted audiences default to it and `api://` + it. */
  resourceId?: string;
  /** Seed for the deterministic series; false starts empty. Default "meridian". */
  seed?: string | false;
  seedPoints?: number;
  seedStepSeconds?: number;
  /** The seeded history ends just before this time. Default 2026-01-01T00:00:00Z. */
  seedEndTime?: string;
  /** Every this many ms each live series gets a point stamped now. 0 (default) = no live growth. */
  liveIntervalMs?: number;
  /** How many of the seeded series grow live (the first N). Default all. */
  liveSeries?: number;
  facilities?: Facility[];
  /** Read window end inclusive (the other reading of the notes); default exclusive. */
  endInclusive?: boolean;
  defaultLimit?: number;
  maxLimit?: number;
  maxMultiItems?: number;
  maxBuckets?: number;
  defaultMetadataLimit?: number;
  maxMetadataLimit?: number;
  maxBodyBytes?: number;
  maxWritePoints?: number;
  maxCustomMetadata?: number;
  /** Points kept per series; past it the oldest go (live growth runs for days). Default 1 000 000. */
  maxPointsPerSeries?: number;
  /** Source given to series created through the API. */
  createdSource?: string;
  /** Fault switch armed at start. */
  faults?: FaultConfig;
  /** The gateway's rate limit; default none. */
  rateLimit?: RateLimit;
  onRequest?: (e: RequestLogEntry) => void;
}

export type ResolvedOptions = Required<
  Omit<OmniaEmulatorOptions, "caFile" | "faults" | "onRequest" | "liveSeries" | "auth" | "seed" | "rateLimit">
> & {
  seed: string | false;
  auth: AuthOptions;
  caFile?: string;
  faults?: FaultConfig;
  rateLimit?: RateLimit;
  onRequest?: (e: RequestLogEntry) => void;
  liveSeries?: number;
};

export function resolveOptions(o: OmniaEmulatorOptions): ResolvedOptions {
  const resourceId = o.resourceId ?? DEFAULT_RESOURCE_ID;
  return {
    port: o.port ?? 0,
    host: o.host ?? "127.0.0.1",
    tls: o.tls ?? true,
    tlsHostnames: o.tlsHostnames ?? [],
    caFile: o.caFile,
    auth: { audiences: [resourceId, `api://${resourceId}`], ...o.auth },
    resourceId,
    seed: o.seed ?? "meridian",
    seedPoints: o.seedPoints ?? 2880,
    seedStepSeconds: o.seedStepSeconds ?? 60,
    seedEndTime: o.seedEndTime ?? "2026-01-01T00:00:00Z",
    liveIntervalMs: o.liveIntervalMs ?? 0,
    liveSeries: o.liveSeries,
    facilities: o.facilities ?? DEFAULT_FACILITIES,
    endInclusive: o.endInclusive ?? false,
    defaultLimit: o.defaultLimit ?? 1000,
    maxLimit: o.maxLimit ?? 100_000,
    maxMultiItems: o.maxMultiItems ?? 100,
    maxBuckets: o.maxBuckets ?? 100_000,
    defaultMetadataLimit: o.defaultMetadataLimit ?? 1000,
    maxMetadataLimit: o.maxMetadataLimit ?? 100_000,
    maxBodyBytes: o.maxBodyBytes ?? 16 * 1024 * 1024,
    maxWritePoints: o.maxWritePoints ?? 100_000,
    maxCustomMetadata: o.maxCustomMetadata ?? 17,
    maxPointsPerSeries: o.maxPointsPerSeries ?? 1_000_000,
    createdSource: o.createdSource ?? "IFM",
    faults: o.faults,
    rateLimit: o.rateLimit,
    onRequest: o.onRequest,
  };
}

import type { FaultConfig } from "./faults.js";
import type { SettingsPatch } from "./settings.js";

/** The three OMF receivers the emulator stands in for. */
export type { Profile } from "./profile.js";

import type { Profile } from "./profile.js";

export interface PiUser {
  username: string;
  password: string;
  /** Valid credentials but no write permission: OMF POST answers 403 (event -1004). */
  readOnly?: boolean;
}

export interface AdhClient {
  clientId: string;
  clientSecret: string;
}

export interface OmfEmulatorOptions {
  /** Port to listen on; 0 (default for in-process use) picks a free one. */
  port?: number;
  /** Optional second, plain-HTTP port serving only `/_emulator/*` (health checks and tests without the CA). */
  adminPort?: number;
  /** Interface to bind; default 127.0.0.1 in-process, main.ts uses 0.0.0.0. */
  host?: string;
  /** Serve HTTPS with a CA + server certificate generated at start. Default false. */
  tls?: boolean;
  /** Extra DNS names / IPs for the server certificate (localhost, 127.0.0.1 and ::1 are always in). */
  tlsHostnames?: string[];
  /** Base URL used in discovery documents and PI links; default derived from the request's Host header. */
  publicUrl?: string;

  /** PI Web API Basic-auth users. Default one user `meridian` / `meridian`. */
  piUsers?: PiUser[];
  /** Name of the PI Data Archive served under /piwebapi/dataservers. Default `MERIDIAN-PI`. */
  piDataServerName?: string;
  /** Reject POSTs without X-Requested-With (PI `EnableCSRFDefense`, default true). */
  piCsrfDefense?: boolean;
  /** Status for a POST without X-Requested-With. Default 403 (notes only say 4xx; unverified). */
  piCsrfStatus?: number;
  /** Key holding the event object in PI results: `EventInfo` (notes' checklist) or `Event` (docs example). */
  piEventKey?: "EventInfo" | "Event";

  /** ADH/OCS client-credentials pairs. Default one client `meridian-client` / `meridian-secret`. */
  adhClients?: AdhClient[];
  /** If set, only this tenant id is served on the ADH path (others 403). Default: any tenant. */
  adhTenantId?: string;
  /** Lifetime of issued bearer tokens in seconds. Default 3600. */
  tokenLifetimeSeconds?: number;

  /** Max raw (possibly compressed) request body per profile, bytes. Defaults: PI 4 MiB, ADH/EDS 192 KiB (spec). */
  maxBodyBytes?: Partial<Record<Profile, number>>;
  /** Max inflated size of a gzip body. Default 190 MiB (SDS documented limit). */
  maxInflatedBytes?: number;
  /**
   * The switchable receiver behaviour at start (OmfCreateMode per receiver, PI / EDS release and so the OMF versions
   * accepted, strict keywords, PI point names, SDS conflict status and timestamps); see settings.ts and the README.
   */
  settings?: SettingsPatch;
  /** SDS read-back without `Accept-Verbosity: verbose` still includes null/default values. Default false. */
  sdsDefaultVerbose?: boolean;

  /** Fault switch at start (same shape as `POST /_emulator/faults`). */
  faults?: FaultConfig;
  /** Write the CA certificate PEM to this file at start (for containers sharing a volume). */
  caFile?: string;
  /** Called for each request after it is answered (main.ts logs through it). */
  onRequest?: (entry: RequestLogEntry) => void;
  /**
   * Benchmarks only: log when each data value arrives (`GET /_emulator/arrivals`; `DELETE` empties the log and every
   * container's values, keeping types and containers). Default false.
   */
  recordArrivals?: boolean;
}

export interface RequestLogEntry {
  requestId: string;
  method: string;
  path: string;
  status: number;
  profile?: Profile;
  ms: number;
  fault?: string;
  messages?: number;
}

export type ResolvedOptions = Required<
  Omit<OmfEmulatorOptions, "publicUrl" | "adhTenantId" | "faults" | "caFile" | "onRequest" | "adminPort" | "settings">
> &
  Pick<OmfEmulatorOptions, "publicUrl" | "adhTenantId" | "faults" | "caFile" | "onRequest" | "adminPort" | "settings"> & {
    maxBodyBytes: Record<Profile, number>;
  };

export const DEFAULTS = {
  piUser: { username: "meridian", password: "meridian" },
  adhClient: { clientId: "meridian-client", clientSecret: "meridian-secret" },
  piDataServerName: "MERIDIAN-PI",
  maxBodyPi: 4 * 1024 * 1024,
  maxBodySds: 192 * 1024,
  maxInflated: 190 * 1024 * 1024,
  tokenLifetimeSeconds: 3600,
} as const;

export function resolveOptions(o: OmfEmulatorOptions): ResolvedOptions {
  return {
    port: o.port ?? 0,
    adminPort: o.adminPort,
    host: o.host ?? "127.0.0.1",
    tls: o.tls ?? false,
    tlsHostnames: o.tlsHostnames ?? [],
    publicUrl: o.publicUrl,
    piUsers: o.piUsers ?? [{ ...DEFAULTS.piUser }],
    piDataServerName: o.piDataServerName ?? DEFAULTS.piDataServerName,
    piCsrfDefense: o.piCsrfDefense ?? true,
    piCsrfStatus: o.piCsrfStatus ?? 403,
    piEventKey: o.piEventKey ?? "EventInfo",
    adhClients: o.adhClients ?? [{ ...DEFAULTS.adhClient }],
    adhTenantId: o.adhTenantId,
    tokenLifetimeSeconds: o.tokenLifetimeSeconds ?? DEFAULTS.tokenLifetimeSeconds,
    maxBodyBytes: {
      pi: o.maxBodyBytes?.pi ?? DEFAULTS.maxBodyPi,
      adh: o.maxBodyBytes?.adh ?? DEFAULTS.maxBodySds,
      eds: o.maxBodyBytes?.eds ?? DEFAULTS.maxBodySds,
    },
    maxInflatedBytes: o.maxInflatedBytes ?? DEFAULTS.maxInflated,
    sdsDefaultVerbose: o.sdsDefaultVerbose ?? false,
    faults: o.faults,
    settings: o.settings,
    caFile: o.caFile,
    onRequest: o.onRequest,
    recordArrivals: o.recordArrivals ?? false,
  };
}

/**
 * Everything the emulator holds: the IoT domain and its group, the twin resources (models, adapters, instances; a
 * deleted one stays, DELETED), the data tables behind ORDS (raw, historized, rejected with their own id sequences,
 * and the snapshot per instance), the vault's secrets, issued data-API tokens and the create retry tokens.
 */
import { createHash } from "node:crypto";
import type { ModelContent } from "./dtdl.js";

export type LifecycleState = "ACTIVE" | "DELETED";

export interface Tags {
  freeformTags: Record<string, string>;
  definedTags: Record<string, Record<string, unknown>>;
  systemTags: Record<string, Record<string, unknown>>;
}

export interface BaseResource extends Tags {
  id: string;
  iotDomainId: string;
  displayName: string;
  description?: string;
  lifecycleState: LifecycleState;
  timeCreated: string;
  timeUpdated?: string;
  /** Creation order: the tie-breaker of timeCreated sorts. */
  seq: number;
  /** Bumped on every change; the etag derives from it. */
  version: number;
}

export interface Model extends BaseResource {
  specUri: string;
  spec: Record<string, unknown>;
  contents: ModelContent[];
}

export interface Adapter extends BaseResource {
  digitalTwinModelId: string;
  digitalTwinModelSpecUri: string;
  inboundEnvelope?: unknown;
  inboundRoutes?: unknown[];
}

export type ConnectivityType = "DIRECT" | "INDIRECT" | "GATEWAY" | "NONE";

export interface Instance extends BaseResource {
  connectivityType: ConnectivityType;
  authId?: string;
  externalKey: string;
  digitalTwinModelId?: string;
  digitalTwinModelSpecUri?: string;
  digitalTwinAdapterId?: string;
  gateways?: string[];
}

export interface Domain {
  id: string;
  groupId: string;
  compartmentId: string;
  region: string;
  domainShortId: string;
  groupShortId: string;
  deviceHost: string;
  dataHost: string;
  identityHost: string;
  timeCreated: string;
}

export interface RawRow {
  id: number;
  digital_twin_instance_id: string;
  endpoint: string;
  content_type: string;
  time_received: bigint;
  content: unknown;
}

export interface RejectedRow extends RawRow {
  reason_code: number;
  reason_message: string;
}

export interface HistorizedRow {
  id: number;
  digital_twin_instance_id: string;
  content_path: string;
  value: unknown;
  time_observed: bigint;
}

export interface SnapshotValue {
  value: unknown;
  time_observed: bigint;
}

export interface DataToken {
  scope: string;
  expiresAtMs: number;
}

export interface RetryRecord {
  bodyHash: string;
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/** A table with its own id sequence and a row cap (the oldest rows go first, as retention would drop them). */
export class Table<R extends { id: number }> {
  rows: R[] = [];
  private nextId = 1;
  constructor(private readonly maxRows: number) {}

  add(row: Omit<R, "id">): R {
    const full = { ...row, id: this.nextId++ } as R;
    this.rows.push(full);
    if (this.rows.length > this.maxRows) this.rows.splice(0, this.rows.length - this.maxRows);
    return full;
  }

  get(id: number): R | undefined {
    // Ids only grow, so a binary search finds a row among many.
    let lo = 0;
    let hi = this.rows.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.rows[mid]!;
      if (r.id === id) return r;
      if (r.id < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  clear(): void {
    this.rows = [];
    this.nextId = 1;
  }
}

export function etagOf(r: BaseResource): string {
  return createHash("sha256").update(`${r.id}/${r.version}`).digest("hex").slice(0, 32);
}

/** JSON with sorted keys: two bodies that mean the same hash the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value) ?? "null";
}

export class OciStore {
  readonly models = new Map<string, Model>();
  readonly adapters = new Map<string, Adapter>();
  readonly instances = new Map<string, Instance>();
  readonly raw: Table<RawRow>;
  readonly historized: Table<HistorizedRow>;
  readonly rejected: Table<RejectedRow>;
  /** instance id → content path → latest value. */
  readonly snapshot = new Map<string, Map<string, SnapshotValue>>();
  /** authId (vault secret OCID) → plaintext. */
  readonly vault = new Map<string, string>();
  readonly tokens = new Map<string, DataToken>();
  /** `<operation> <token>` → the first answer. */
  readonly retryTokens = new Map<string, RetryRecord>();
  seq = 0;

  constructor(
    readonly domain: Domain,
    private readonly maxRows: number,
  ) {
    this.raw = new Table(maxRows);
    this.historized = new Table(maxRows);
    this.rejected = new Table(maxRows);
  }

  rememberRetry(key: string, record: RetryRecord): void {
    this.retryTokens.set(key, record);
    // Bounded: the oldest tokens are forgotten first (OCI keeps them for a limited time as well).
    if (this.retryTokens.size > 10_000) this.retryTokens.delete(this.retryTokens.keys().next().value!);
  }

  activeInstanceByExternalKey(externalKey: string): Instance | undefined {
    for (const i of this.instances.values()) if (i.lifecycleState === "ACTIVE" && i.externalKey === externalKey) return i;
    return undefined;
  }

  /** Forgets resources, data, tokens and retry tokens; the domain, API keys and vault secrets stay. */
  reset(): void {
    this.models.clear();
    this.adapters.clear();
    this.instances.clear();
    this.raw.clear();
    this.historized.clear();
    this.rejected.clear();
    this.snapshot.clear();
    this.tokens.clear();
    this.retryTokens.clear();
    this.seq = 0;
  }

  counts() {
    const count = (m: Map<string, BaseResource>) => {
      let active = 0;
      for (const r of m.values()) if (r.lifecycleState === "ACTIVE") active++;
      return { active, deleted: m.size - active };
    };
    return {
      models: count(this.models),
      adapters: count(this.adapters),
      instances: count(this.instances),
      rawData: this.raw.rows.length,
      historizedData: this.historized.rows.length,
      rejectedData: this.rejected.rows.length,
      maxRows: this.maxRows,
    };
  }
}

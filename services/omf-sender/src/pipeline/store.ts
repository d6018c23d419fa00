import { createHash } from "node:crypto";
import { type Bus, jsonCodec, KvBucket } from "@meridian/bus";
import { containerMessage, type OmfClient, type OmfContainer, type OmfType, typeMessage } from "../platform/index.js";

export const STATE_BUCKET = "omf_state";
/** How often the container quota may recount a scope's containers in the bucket before refusing. */
const RECOUNT_MS = 5000;

interface Known {
  id: string;
  at: string;
  /** The definition as sent (records written before it was kept have none): what a clean-up deletes. */
  def?: OmfType | OmfContainer;
  /** The route whose pipeline created it first; absent: SendOmf (or a record older than this field). */
  route?: string;
}

/** A definition omf-sender created at an endpoint, as its state records it. */
export interface CreatedDefinition {
  kind: "type" | "container";
  id: string;
  /** Containers: their type's id (when the record kept the definition). */
  typeId?: string;
  route?: string;
  at: string;
  def?: OmfType | OmfContainer;
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 32);

/**
 * Which OMF types and containers an endpoint already has, so they are sent once per endpoint (not per batch, not
 * per replica): a KV bucket `omf_state` keyed `<endpoint>.t.<hash of type id>` / `<endpoint>.c.<hash of container
 * id>`, with an in-process cache in front. When the endpoint lost them (a 404 / "container is not defined"),
 * `forget` drops the entries and the next `ensure` sends them again.
 *
 * It also holds the container quota (OMF_MAX_CONTAINERS_PER_ENDPOINT): `admit` says which new containers may be
 * created, counting those known at the endpoint's current URL plus those admitted and not yet created. Admissions on
 * one instance are serialised with the sends of definitions; replicas admitting at the same moment may together pass
 * the quota by the containers of the batches they hold, and no further. A refusal recounts the bucket first (what
 * other replicas created, or what was forgotten), at most every RECOUNT_MS, so that a flood of forged devices at the
 * quota does not list the bucket once per batch.
 */
export class DefinitionState {
  private readonly bucket: KvBucket<Known>;
  private readonly known = new Set<string>();
  /** Containers known per scope, as last counted in the bucket (plus those remembered since). */
  private readonly counts = new Map<string, number>();
  /** When each scope's containers were last counted in the bucket. */
  private readonly countedAt = new Map<string, number>();
  /** Containers admitted per scope and not yet created (their batch is on its way). */
  private readonly reserved = new Map<string, Set<string>>();
  /** The route this view records as creator (forRoute); undefined on the shared state. */
  private readonly origin: string | undefined = undefined;

  constructor(
    bus: Bus,
    /** OMF_MAX_CONTAINERS_PER_ENDPOINT. */
    readonly maxContainers = Number.POSITIVE_INFINITY,
  ) {
    this.bucket = new KvBucket(bus, STATE_BUCKET, jsonCodec<Known>());
  }

  /** Keys carry a digest of the OMF URL too: an endpoint re-pointed elsewhere starts with nothing known. */
  private key(scope: string, kind: "t" | "c", id: string): string {
    return `${scope}.${kind}.${hash(id.toLowerCase())}`;
  }

  private scope(endpointId: string, client: OmfClient): string {
    return `${endpointId}.${hash(client.omfUrl.toLowerCase()).slice(0, 8)}`;
  }

  private async missing<T extends { id: string }>(scope: string, kind: "t" | "c", items: T[]): Promise<T[]> {
    const unknown = items.filter((i) => !this.known.has(this.key(scope, kind, i.id)));
    const found = await Promise.all(unknown.map((i) => this.bucket.get(this.key(scope, kind, i.id))));
    const out: T[] = [];
    unknown.forEach((item, n) => {
      if (found[n]) this.known.add(this.key(scope, kind, item.id));
      else out.push(item);
    });
    return out;
  }

  /**
   * This state as one route's pipeline sees it: the same bucket, caches, quota and locks, recording the route as the
   * creator of what it sends first, so that a clean-up can find what one route created. A view, not a copy: every
   * field is read through the prototype; only `origin` is its own.
   */
  forRoute(routeId: string): DefinitionState {
    return Object.create(this, { origin: { value: routeId, enumerable: true } }) as DefinitionState;
  }

  private async remember(scope: string, kind: "t" | "c", defs: readonly (OmfType | OmfContainer)[]): Promise<void> {
    const at = new Date().toISOString();
    const ids = defs.map((d) => d.id);
    await Promise.all(
      defs.map((def) =>
        this.bucket.put(this.key(scope, kind, def.id), {
          id: def.id,
          at,
          def,
          ...(this.origin === undefined ? {} : { route: this.origin }),
        }),
      ),
    );
    for (const id of ids) this.known.add(this.key(scope, kind, id));
    if (kind === "c") {
      const reserved = this.reserved.get(scope);
      for (const id of ids) reserved?.delete(id);
      const count = this.counts.get(scope);
      if (count !== undefined) this.counts.set(scope, count + ids.length);
    }
  }

  /** One ensure at a time per endpoint, so batches in flight together do not each send the same new definitions. */
  private readonly locks = new Map<string, Promise<unknown>>();

  private async locked<T>(scope: string, fn: () => Promise<T>): Promise<T> {
    const prior = this.locks.get(scope) ?? Promise.resolve();
    const run = prior.catch(() => {}).then(fn);
    this.locks.set(scope, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(scope) === run) this.locks.delete(scope);
    }
  }

  private async countContainers(scope: string): Promise<number> {
    const prefix = `${scope}.c.`;
    const n = (await this.bucket.keys()).filter((k) => k.startsWith(prefix)).length;
    this.counts.set(scope, n);
    this.countedAt.set(scope, Date.now());
    return n;
  }

  /** Containers omf-sender created at the endpoint's current URL (counted afresh). */
  async containerCount(endpointId: string, client: OmfClient): Promise<number> {
    return this.countContainers(this.scope(endpointId, client));
  }

  /**
   * Of these container ids, the new ones beyond the quota: their events must not be sent. Known containers always
   * pass; new ones pass in the order given while the quota lasts, and stay counted until they are created.
   */
  async admit(endpointId: string, client: OmfClient, containerIds: readonly string[]): Promise<Set<string>> {
    const refused = new Set<string>();
    if (!Number.isFinite(this.maxContainers)) return refused;
    const scope = this.scope(endpointId, client);
    return this.locked(scope, async () => {
      const reserved = this.reserved.get(scope) ?? new Set<string>();
      this.reserved.set(scope, reserved);
      const unknown = await this.missing(
        scope,
        "c",
        [...new Set(containerIds)].map((id) => ({ id })),
      );
      const fresh = unknown.map((c) => c.id).filter((id) => !reserved.has(id));
      if (fresh.length === 0) return refused;
      let count = this.counts.get(scope) ?? (await this.countContainers(scope));
      if (count + reserved.size + fresh.length > this.maxContainers && Date.now() - (this.countedAt.get(scope) ?? 0) > RECOUNT_MS)
        count = await this.countContainers(scope);
      for (const id of fresh) {
        if (count + reserved.size < this.maxContainers) reserved.add(id);
        else refused.add(id);
      }
      return refused;
    });
  }

  /** Sends the types, then the containers, the endpoint does not have yet. Returns how many were sent. */
  async ensure(
    endpointId: string,
    client: OmfClient,
    types: OmfType[],
    containers: OmfContainer[],
    signal?: AbortSignal,
  ): Promise<{ types: number; containers: number }> {
    return this.locked(this.scope(endpointId, client), () => this.ensureNow(endpointId, client, types, containers, signal));
  }

  private async ensureNow(
    endpointId: string,
    client: OmfClient,
    types: OmfType[],
    containers: OmfContainer[],
    signal?: AbortSignal,
  ): Promise<{ types: number; containers: number }> {
    const scope = this.scope(endpointId, client);
    const newTypes = await this.missing(scope, "t", types);
    if (newTypes.length > 0) {
      await client.sendBatched(typeMessage(newTypes), { signal });
      await this.remember(scope, "t", newTypes);
    }
    const newContainers = await this.missing(scope, "c", containers);
    if (newContainers.length > 0) {
      await client.sendBatched(containerMessage(newContainers), { signal });
      await this.remember(scope, "c", newContainers);
    }
    return { types: newTypes.length, containers: newContainers.length };
  }

  async forget(endpointId: string, client: OmfClient, typeIds: string[], containerIds: string[]): Promise<void> {
    const scope = this.scope(endpointId, client);
    const keys = [...typeIds.map((id) => this.key(scope, "t", id)), ...containerIds.map((id) => this.key(scope, "c", id))];
    for (const k of keys) this.known.delete(k);
    await Promise.all(keys.map((k) => this.bucket.delete(k)));
    this.counts.delete(scope);
  }

  /** Records definitions created outside a pipeline (SendOmf), so that they are listed and cleaned up as well. */
  async recordCreated(
    endpointId: string,
    client: OmfClient,
    types: readonly OmfType[],
    containers: readonly OmfContainer[],
  ): Promise<void> {
    const scope = this.scope(endpointId, client);
    await this.locked(scope, async () => {
      if (types.length > 0) await this.remember(scope, "t", types);
      if (containers.length > 0) await this.remember(scope, "c", containers);
    });
  }

  /**
   * What omf-sender created at the endpoint's current URL (types and containers, sorted by kind then id), optionally
   * only what one route created first. Reads every record of the endpoint: bounded by the container quota.
   */
  async created(endpointId: string, client: OmfClient, routeId?: string): Promise<CreatedDefinition[]> {
    const scope = this.scope(endpointId, client);
    const keys = (await this.bucket.keys()).filter((k) => k.startsWith(`${scope}.t.`) || k.startsWith(`${scope}.c.`));
    const out: CreatedDefinition[] = [];
    for (const k of keys) {
      const known = await this.bucket.get(k);
      if (!known) continue;
      if (routeId !== undefined && known.route !== routeId) continue;
      const kind = k.startsWith(`${scope}.t.`) ? "type" : "container";
      const typeId = kind === "container" ? (known.def as OmfContainer | undefined)?.typeid : undefined;
      out.push({
        kind,
        id: known.id,
        at: known.at,
        ...(typeId ? { typeId } : {}),
        ...(known.route ? { route: known.route } : {}),
        ...(known.def ? { def: known.def } : {}),
      });
    }
    return out.sort((a, b) => (a.kind === b.kind ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.kind === "type" ? -1 : 1));
  }

  /** Drops everything known about an endpoint (it was deleted or now points elsewhere). */
  async purge(endpointId: string): Promise<void> {
    const prefix = `${endpointId}.`;
    for (const k of [...this.known]) if (k.startsWith(prefix)) this.known.delete(k);
    for (const m of [this.counts, this.countedAt, this.reserved]) for (const k of [...m.keys()]) if (k.startsWith(prefix)) m.delete(k);
    for (const k of await this.bucket.keys()) if (k.startsWith(prefix)) await this.bucket.delete(k);
  }
}

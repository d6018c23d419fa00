import { createHash } from "node:crypto";
import { type Bus, jsonCodec, KvBucket } from "@meridian/bus";
import { containerMessage, type OmfClient, type OmfContainer, type OmfType, typeMessage } from "../platform/index.js";

export const STATE_BUCKET = "omf_state";

interface Known {
  id: string;
  at: string;
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 32);

/**
 * Which OMF types and containers an endpoint already has, so they are sent once per endpoint (not per batch, not
 * per replica): a KV bucket `omf_state` keyed `<endpoint>.t.<hash of type id>` / `<endpoint>.c.<hash of container
 * id>`, with an in-process cache in front. When the endpoint lost them (a 404 / "container is not defined"),
 * `forget` drops the entries and the next `ensure` sends them again.
 */
export class DefinitionState {
  private readonly bucket: KvBucket<Known>;
  private readonly known = new Set<string>();

  constructor(bus: Bus) {
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

  private async remember(scope: string, kind: "t" | "c", ids: string[]): Promise<void> {
    const at = new Date().toISOString();
    await Promise.all(ids.map((id) => this.bucket.put(this.key(scope, kind, id), { id, at })));
    for (const id of ids) this.known.add(this.key(scope, kind, id));
  }

  /** One ensure at a time per endpoint, so batches in flight together do not each send the same new definitions. */
  private readonly locks = new Map<string, Promise<unknown>>();

  /** Sends the types, then the containers, the endpoint does not have yet. Returns how many were sent. */
  async ensure(
    endpointId: string,
    client: OmfClient,
    types: OmfType[],
    containers: OmfContainer[],
    signal?: AbortSignal,
  ): Promise<{ types: number; containers: number }> {
    const scope = this.scope(endpointId, client);
    const prior = this.locks.get(scope) ?? Promise.resolve();
    const run = prior.catch(() => {}).then(() => this.ensureNow(endpointId, client, types, containers, signal));
    this.locks.set(scope, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(scope) === run) this.locks.delete(scope);
    }
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
      await this.remember(
        scope,
        "t",
        newTypes.map((t) => t.id),
      );
    }
    const newContainers = await this.missing(scope, "c", containers);
    if (newContainers.length > 0) {
      await client.sendBatched(containerMessage(newContainers), { signal });
      await this.remember(
        scope,
        "c",
        newContainers.map((c) => c.id),
      );
    }
    return { types: newTypes.length, containers: newContainers.length };
  }

  async forget(endpointId: string, client: OmfClient, typeIds: string[], containerIds: string[]): Promise<void> {
    const scope = this.scope(endpointId, client);
    const keys = [...typeIds.map((id) => this.key(scope, "t", id)), ...containerIds.map((id) => this.key(scope, "c", id))];
    for (const k of keys) this.known.delete(k);
    await Promise.all(keys.map((k) => this.bucket.delete(k)));
  }

  /** Drops everything known about an endpoint (it was deleted or now points elsewhere). */
  async purge(endpointId: string): Promise<void> {
    const prefix = `${endpointId}.`;
    for (const k of [...this.known]) if (k.startsWith(prefix)) this.known.delete(k);
    for (const k of await this.bucket.keys()) if (k.startsWith(prefix)) await this.bucket.delete(k);
  }
}

import type { OmfClient } from "./client.js";
import { OmfConflictError, OmfNotFoundError } from "./errors.js";
import { containerMessage, type OmfContainer, type OmfType, typeMessage } from "./messages.js";

/**
 * What a delete of one definition came to. `deleted`: a 2xx. `not_found` (404) and `conflict` (409) are taken as
 * already gone, as the reference sample's clean-up takes them; `failed` carries the error.
 */
export type DeleteOutcome =
  | { id: string; kind: "type" | "container"; outcome: "deleted" | "not_found" | "conflict" }
  | { id: string; kind: "type" | "container"; outcome: "failed"; error: Error };

/** Deletes done at once against one endpoint. */
const DELETE_CONCURRENCY = 4;

/**
 * Deletes containers, then types (a type in use cannot go before its containers), one object per request as the
 * reference sample does, so one refusal neither hides nor blocks the others. The objects are sent whole (OMF 1.0 /
 * 1.1 deletes carry the full definition; 1.2 reads only id / typeid). A type whose containers did not all go is
 * still tried: the endpoint says whether it is in use. Stops early only when `signal` aborts.
 */
export async function deleteDefinitions(
  client: OmfClient,
  containers: readonly OmfContainer[],
  types: readonly OmfType[],
  signal?: AbortSignal,
): Promise<DeleteOutcome[]> {
  const one = async (kind: "type" | "container", def: OmfType | OmfContainer): Promise<DeleteOutcome> => {
    try {
      await client.send(kind === "type" ? typeMessage([def as OmfType], "delete") : containerMessage([def as OmfContainer], "delete"), {
        signal,
      });
      return { id: def.id, kind, outcome: "deleted" };
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof OmfNotFoundError && err.status === 404) return { id: def.id, kind, outcome: "not_found" };
      if (err instanceof OmfConflictError && err.status === 409) return { id: def.id, kind, outcome: "conflict" };
      return { id: def.id, kind, outcome: "failed", error: err instanceof Error ? err : new Error(String(err)) };
    }
  };
  const out: DeleteOutcome[] = [];
  out.push(...(await inParallel(containers, (c) => one("container", c))));
  out.push(...(await inParallel(types, (t) => one("type", t))));
  return out;
}

async function inParallel<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, items.length) }, worker));
  return out;
}

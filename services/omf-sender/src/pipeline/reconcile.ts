import { type OmfClient, OmfNotFoundError, readValues } from "../platform/index.js";
import { tickOf } from "./confirm.js";
import type { ContainerValues } from "./mapping.js";

/**
 * Which of these values of a container the endpoint holds already, asked through its read path: for a message whose
 * send began and never reported back (its instance died during the endpoint's answer). Returns how many of them, from
 * the first, are there (the values a send writes are always a prefix, in order), compared by index at the 100 ns tick.
 *
 * PI: the container's points are read (the point named after the container for a type with one value property, else
 * `{container}.{property}` of its first value property; both names are tried, as receivers name them either way);
 * no such point means nothing was written. SDS: the stream of that id. A value another message wrote at the same
 * index counts as held (the receiver cannot tell them apart either).
 */
export async function heldPrefix(
  client: OmfClient,
  group: ContainerValues,
  values: readonly unknown[],
  signal?: AbortSignal,
): Promise<number> {
  if (!group.container || values.length === 0) return 0;
  const indexName = group.mapping.indexName;
  const indexes = values.map((v) => String((v as Record<string, unknown>)[indexName]));
  const ticks = indexes.map(tickOf);
  const sorted = [...ticks].sort();
  const window = { start: sorted[0], end: sorted[sorted.length - 1], maxCount: Math.min(250_000, ticks.length * 4 + 100), signal };
  const id = group.container.id;
  let names = [id];
  if (client.kind === "pi") {
    const props = Object.entries(group.mapping.type.properties ?? {}).filter(([, p]) => !(p as { isindex?: boolean }).isindex);
    const first = props[0]?.[0];
    names = first === undefined ? [id] : props.length === 1 ? [id, `${id}.${first}`] : [`${id}.${first}`, id];
  }
  let held: Set<string> | undefined;
  for (const name of names) {
    try {
      const read = await readValues(client, name, window);
      held = new Set(read.values.map((v) => tickOf(v.timestamp)));
      break;
    } catch (err) {
      if (!(err instanceof OmfNotFoundError)) throw err;
    }
  }
  if (!held) return 0;
  let n = 0;
  while (n < ticks.length && held.has(ticks[n]!)) n++;
  return n;
}

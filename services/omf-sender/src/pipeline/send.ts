import {
  batchMessage,
  type OmfClient,
  type OmfDataItem,
  type OmfMessage,
  OmfPayloadTooLargeError,
  type OmfResult,
  serializeBody,
  splitInHalf,
} from "../platform/index.js";

/** The smallest body limit a 413 can teach (below it a single value would not fit anyway). */
const MIN_LEARNED_BYTES = 1024;

/**
 * The body size each endpoint took and refused, learnt from its 413s, so that later batches go out at a size it
 * takes instead of being split again one 413 at a time. Keyed by endpoint id and OMF URL (a re-pointed endpoint
 * starts afresh). Held in memory: a restart learns again with its first 413.
 */
export class BodyLimits {
  private readonly learnt = new Map<string, number>();

  private key(endpointId: string, client: OmfClient): string {
    return `${endpointId}\u0000${client.omfUrl}`;
  }

  /** What to batch to: the configured limit, or less when the endpoint refused less. */
  maxBytes(endpointId: string, client: OmfClient): number {
    const configured = client.config.maxBodyBytes;
    const learnt = this.learnt.get(this.key(endpointId, client));
    return learnt === undefined ? configured : Math.min(configured, learnt);
  }

  /** The learnt limit, undefined when no 413 was seen. */
  learntBytes(endpointId: string, client: OmfClient): number | undefined {
    return this.learnt.get(this.key(endpointId, client));
  }

  /**
   * A body of `refusedBytes` got a 413: from now on batch to half of it (the size its halves are sent at), never
   * growing again. Returns the new limit when it went down.
   */
  refused(endpointId: string, client: OmfClient, refusedBytes: number): number | undefined {
    const k = this.key(endpointId, client);
    const next = Math.max(MIN_LEARNED_BYTES, Math.floor(refusedBytes / 2));
    const have = this.learnt.get(k);
    if (have !== undefined && have <= next) return undefined;
    this.learnt.set(k, next);
    return next;
  }
}

export interface TrackedSendOptions {
  signal?: AbortSignal;
  /** Called after each request the endpoint accepted, with that request and its result. */
  onAccepted(request: OmfMessage, result: OmfResult): void;
  /** A 413 lowered the endpoint's learnt limit to `bytes`. */
  onLearnt?(bytes: number, refusedBytes: number): void;
}

/**
 * Sends a message as the requests the endpoint's limits allow (its learnt body limit included), in order, stopping
 * at the first failure; a 413 halves the request (down to one value) and teaches `limits`. Every accepted request is
 * reported before the next one goes, so a caller knows exactly what was written when a later one fails.
 */
export async function sendTracked(
  client: OmfClient,
  endpointId: string,
  limits: BodyLimits,
  message: OmfMessage,
  options: TrackedSendOptions,
): Promise<void> {
  const requests = batchMessage(message, { maxBytes: limits.maxBytes(endpointId, client), maxValues: client.config.maxValuesPerRequest });
  const sendOne = async (request: OmfMessage): Promise<void> => {
    let result: OmfResult;
    try {
      result = await client.send(request, { signal: options.signal });
    } catch (err) {
      const halves = err instanceof OmfPayloadTooLargeError ? splitInHalf(request) : undefined;
      if (halves === undefined) throw err;
      const size = Buffer.byteLength(serializeBody(request), "utf8");
      const learnt = limits.refused(endpointId, client, size);
      if (learnt !== undefined) options.onLearnt?.(learnt, size);
      await sendOne(halves[0]);
      await sendOne(halves[1]);
      return;
    }
    options.onAccepted(request, result);
  };
  for (const r of requests) await sendOne(r);
}

/** Values per container id in a data request. */
export function valuesByContainer(request: OmfMessage): Map<string, number> {
  const out = new Map<string, number>();
  if (request.messageType !== "data") return out;
  for (const item of request.body as readonly OmfDataItem[]) {
    const id = (item as { containerid?: string }).containerid;
    if (id !== undefined) out.set(id, (out.get(id) ?? 0) + (item.values?.length ?? 0));
  }
  return out;
}

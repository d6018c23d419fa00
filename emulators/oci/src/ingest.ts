/**
 * What the platform does with one device message (§4): a raw row always; for a structured twin (an adapter) the
 * adapter normalises it into the model's contents, which update the snapshot and add a historized row per Historized
 * content, or it becomes a rejected row with the reason.
 */
import type { Clock } from "./clock.js";
import { normalize } from "./normalize.js";
import type { Instance, OciStore } from "./store.js";

export interface IngestMessage {
  endpoint: string;
  contentType: string;
  body: Buffer;
}

export interface IngestResult {
  instanceId: string;
  rawId: number;
  outcome: "raw" | "normalized" | "rejected";
  historizedIds: number[];
  rejectedId?: number;
  reasonCode?: number;
  reasonMessage?: string;
}

/** The payload as rows keep it: parsed JSON when it is JSON, else the text. */
function contentOf(body: Buffer): unknown {
  const text = body.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function ingest(store: OciStore, clock: Clock, instance: Instance, msg: IngestMessage): IngestResult {
  const timeReceived = clock.nowMicros();
  const endpoint = msg.endpoint.replace(/^\/+/, "");
  const content = contentOf(msg.body);
  const base = { digital_twin_instance_id: instance.id, endpoint, content_type: msg.contentType, time_received: timeReceived, content };
  const raw = store.raw.add(base);
  const result: IngestResult = { instanceId: instance.id, rawId: raw.id, outcome: "raw", historizedIds: [] };

  const adapter = instance.digitalTwinAdapterId ? store.adapters.get(instance.digitalTwinAdapterId) : undefined;
  const model = adapter ? store.models.get(adapter.digitalTwinModelId) : undefined;
  if (!adapter || !model) return result;

  let normalized: ReturnType<typeof normalize>;
  try {
    normalized = normalize({
      payload: content,
      endpoint,
      timeReceivedMicros: timeReceived,
      inboundEnvelope: adapter.inboundEnvelope,
      inboundRoutes: adapter.inboundRoutes,
      contents: model.contents,
    });
  } catch (err) {
    // An expression failing at run time is the adapter's problem with this message, not the emulator's.
    normalized = { ok: false, reasonCode: 500, reasonMessage: (err as Error).message };
  }
  if (!normalized.ok) {
    const rejected = store.rejected.add({ ...base, reason_code: normalized.reasonCode, reason_message: normalized.reasonMessage });
    return {
      ...result,
      outcome: "rejected",
      rejectedId: rejected.id,
      reasonCode: normalized.reasonCode,
      reasonMessage: normalized.reasonMessage,
    };
  }

  const snapshot = store.snapshot.get(instance.id) ?? new Map();
  store.snapshot.set(instance.id, snapshot);
  const historized = new Set(model.contents.filter((c) => c.historized).map((c) => c.name));
  for (const [name, value] of Object.entries(normalized.values)) {
    snapshot.set(name, { value, time_observed: normalized.timeObservedMicros });
    if (historized.has(name)) {
      const row = store.historized.add({
        digital_twin_instance_id: instance.id,
        content_path: name,
        value,
        time_observed: normalized.timeObservedMicros,
      });
      result.historizedIds.push(row.id);
    }
  }
  return { ...result, outcome: "normalized" };
}

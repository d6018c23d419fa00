/**
 * Streaming setup: the Event Hub destination and the subscriptions (list, create, delete). No Event Hub is reached;
 * once a destination is set, points written to a subscribed series (API writes, live growth, late points) are kept
 * as `datapoints_v2` events, readable at `GET /_emulator/streaming/events`.
 */
import type { EmulatorContext } from "../context.js";
import { badRequest, messageModel, notFound } from "../errors.js";
import type { Answer, Call } from "./call.js";
import { seriesOf } from "./data.js";
import { isObject } from "./request.js";

export function listSubscriptions(ctx: EmulatorContext, c: Call): Answer {
  const items = [...ctx.store.subscriptions.values()].filter((s) => s.customerId === c.principal.subject || ctx.auth.mode === "none");
  return { status: 200, json: { data: { items } } };
}

export function createSubscriptions(ctx: EmulatorContext, c: Call): Answer {
  const body = c.body();
  if (!Array.isArray(body) || body.length === 0) throw badRequest('The request body must be a JSON array of {"id": "<timeseries id>"}.');
  const ids = body.map((item, i) => {
    if (!isObject(item) || typeof item.id !== "string") throw badRequest(`items[${i}].id is required.`);
    return seriesOf(ctx, item.id).meta.id;
  });
  for (const id of ids) ctx.store.subscriptions.set(id.toLowerCase(), { id, customerId: c.principal.subject });
  return { status: 200, json: messageModel(200, `Subscribed to ${ids.length} timeseries.`, c.traceId) };
}

export function deleteSubscription(ctx: EmulatorContext, c: Call, id: string): Answer {
  if (!ctx.store.subscriptions.delete(id.toLowerCase())) throw notFound(`No subscription for timeseries '${id}'.`);
  return { status: 200, json: messageModel(200, "Subscription deleted.", c.traceId) };
}

export function setDestination(ctx: EmulatorContext, c: Call): Answer {
  const body = c.body();
  const cs = isObject(body) ? body.connectionString : undefined;
  if (typeof cs !== "string" || !/^Endpoint=sb:\/\/[^;]+;.*SharedAccessKey/i.test(cs))
    throw badRequest(
      "connectionString must be an Event Hub connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...).",
    );
  ctx.store.streamingDestination = cs;
  return { status: 200, json: messageModel(200, "Destination set.", c.traceId) };
}

import { type Bus, DurableConsumer, encodeBatch, makeBatch, telemetryFilterSubject, telemetrySubject } from "@meridian/bus";
import { headers } from "nats";
import type { Logger } from "pino";
import { rate, sampleEvent } from "./common.js";

/** Publishes in flight at once: enough to hide the ack round trip. */
export const PUBLISH_WINDOW = 256;

/**
 * The bus ceiling with the Node client: JetStream publish with acks (windowed), then durable consume + ack,
 * of single-event ~230-byte messages. Every benchmark reports its throughput against this, measured in the same run.
 */
export async function measureRawBus(bus: Bus, messages: number, logger: Logger, connection = "raw") {
  const payloads = Array.from({ length: 1000 }, (_, i) => {
    const e = sampleEvent(i, `dev-${i % 10}`, connection);
    return { subject: telemetrySubject(e.source!), data: encodeBatch(makeBatch(e.id, [e])) };
  });
  const js = bus.js();
  const h = headers();
  // Durable consumers start at new messages unless given a start: this one reads what is published from here on.
  const startTime = new Date();
  let t0 = performance.now();
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < messages; i++) {
    const p = payloads[i % payloads.length]!;
    const pr = js.publish(p.subject, p.data, { msgID: `${connection}-${i}`, headers: h });
    inflight.add(pr);
    void pr.finally(() => inflight.delete(pr));
    if (inflight.size >= PUBLISH_WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  const publishMs = performance.now() - t0;

  const consumer = new DurableConsumer(bus, {
    durable: `bench-${connection}`,
    filterSubject: telemetryFilterSubject({ connection }),
    logger,
    maxAckPending: 10_000,
    startTime,
  });
  const ac = new AbortController();
  t0 = performance.now();
  let consumed = 0;
  for await (const d of consumer.deliveries(ac.signal)) {
    d.ack();
    if (++consumed === messages) break;
  }
  const consumeMs = performance.now() - t0;
  ac.abort();
  await consumer.delete();
  return {
    messages,
    messageBytes: payloads[0]!.data.length,
    publishWindow: PUBLISH_WINDOW,
    publishPerSec: rate(messages, publishMs),
    consumeAckPerSec: rate(messages, consumeMs),
  };
}

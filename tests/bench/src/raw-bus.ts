import { setTimeout as sleep } from "node:timers/promises";
import { type Bus, DurableConsumer, encodeBatch, makeBatch, telemetryFilterSubject, telemetrySubject } from "@meridian/bus";
import { headers } from "nats";
import type { Logger } from "pino";
import { type PhaseLengths, rate, sampleEvent, sustainedWindow } from "./common.js";
import type { PerProcess, ProcessSampler } from "./sampler.js";

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

/** The raw bus figure of a run, sustained: what each bench carries as its yardstick. */
export interface RawBusFigure {
  what: string;
  messageBytes: number;
  publishWindow: number;
  warmupSeconds: number;
  seconds: number;
  /** Messages consumed and acked in the window. */
  messages: number;
  publishPerSec: number;
  consumeAckPerSec: number;
  /** CPU µs per consumed message of each sampled process (nats-server, this one) over the window. */
  cpuMicrosPerMessage: PerProcess | null;
  peakRssMiB: PerProcess;
}

/**
 * The bus ceiling with the Node client, sustained: single-event ~230-byte messages published with acks (windowed) while
 * a durable consumer in the same process consumes and acks them, both at full speed for the phase; the window counts
 * what was consumed (and published) after the warm-up. Bounded by `maxMessages` as well as time: the publisher stops
 * there, and the figure says so if the window ran dry. Afterwards the consumer drains what is left and is deleted.
 */
export async function sustainRawBus(
  bus: Bus,
  lengths: PhaseLengths,
  sampler: ProcessSampler,
  logger: Logger,
  options: { connection?: string; maxMessages?: number } = {},
): Promise<RawBusFigure> {
  const connection = options.connection ?? "raw";
  const maxMessages = options.maxMessages ?? 20_000_000;
  const payloads = Array.from({ length: 1000 }, (_, i) => {
    const e = sampleEvent(i, `dev-${i % 10}`, connection);
    return { subject: telemetrySubject(e.source!), data: encodeBatch(makeBatch(e.id, [e])) };
  });
  const consumer = new DurableConsumer(bus, {
    durable: `bench-${connection}`,
    filterSubject: telemetryFilterSubject({ connection }),
    logger,
    maxAckPending: 10_000,
    startTime: new Date(),
  });
  const ac = new AbortController();
  let consumed = 0;
  let published = 0;
  let publishing = true;
  const consuming = (async () => {
    for await (const d of consumer.deliveries(ac.signal)) {
      d.ack();
      consumed++;
    }
  })();
  const js = bus.js();
  const h = headers();
  const publisher = (async () => {
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; publishing && i < maxMessages; i++) {
      const p = payloads[i % payloads.length]!;
      const pr = js.publish(p.subject, p.data, { msgID: `${connection}-${i}`, headers: h }).then(() => published++);
      inflight.add(pr);
      void pr.finally(() => inflight.delete(pr));
      if (inflight.size >= PUBLISH_WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  })();
  sampler.resetPeak();
  const w = await sustainedWindow(lengths, sampler, () => consumed, { published: () => published });
  publishing = false;
  await publisher;
  const drainUntil = performance.now() + 60_000;
  while (consumed < published && performance.now() < drainUntil) await sleep(20);
  const drained = consumed >= published;
  ac.abort();
  await consuming.catch(() => {});
  await consumer.delete();
  if (!drained) throw new Error(`raw bus: ${published - consumed} of ${published} published messages not consumed within 60 s`);
  return {
    what: "JetStream publish with acks (windowed) and a durable consume + ack at the same time, single-event messages, this process",
    messageBytes: payloads[0]!.data.length,
    publishWindow: PUBLISH_WINDOW,
    warmupSeconds: w.warmupSeconds,
    seconds: w.seconds,
    messages: w.count,
    publishPerSec: w.alsoPerSec.published ?? 0,
    consumeAckPerSec: w.perSec,
    cpuMicrosPerMessage: w.cpuMicrosPer,
    peakRssMiB: sampler.peakRssMiB(),
  };
}

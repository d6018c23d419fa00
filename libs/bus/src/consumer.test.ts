import { create } from "@bufbuild/protobuf";
import { TelemetryBatchSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { MAX_RETRY_AFTER_MS } from "@meridian/retry";
import { captureLogger, testLogger } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import type { Bus } from "./bus.js";
import { consumerBacklog, consumerInfo, type Delivery, DurableConsumer, redeliveryDelay, settle } from "./consumer.js";
import { PermanentError } from "./errors.js";

function delivery(streamSequence = 1) {
  const calls: { acked: number; retried: Array<number | undefined>; deadLettered: string[] } = { acked: 0, retried: [], deadLettered: [] };
  const d: Delivery = {
    batch: create(TelemetryBatchSchema, { id: "b" }),
    subject: "telemetry.v1.api.c.d",
    streamSequence,
    deliveryCount: 1,
    sizeBytes: 1,
    ack: () => void calls.acked++,
    retry: (delayMs) => void calls.retried.push(delayMs),
    working: () => {},
    deadLetter: async (reason) => void calls.deadLettered.push(reason),
  };
  return { d, calls };
}

describe("settle", () => {
  it("redelivers after the error's retryAfterMs, whatever its class", async () => {
    class ThrottledBySomePlatform extends Error {
      readonly retryable = true;
      readonly retryAfterMs = 7000;
    }
    const { d, calls } = delivery();
    await settle(
      d,
      async () => {
        throw new ThrottledBySomePlatform("429");
      },
      testLogger(),
    );
    expect(calls).toEqual({ acked: 0, retried: [7000], deadLettered: [] });
  });

  it("leaves the delay to the backoff without a hint, and dead-letters a PermanentError", async () => {
    const plain = delivery();
    await settle(
      plain.d,
      async () => {
        throw new Error("down");
      },
      testLogger(),
    );
    expect(plain.calls.retried).toEqual([undefined]);
    const poison = delivery();
    await settle(
      poison.d,
      async () => {
        throw new PermanentError("schema rejected");
      },
      testLogger(),
    );
    expect(poison.calls).toEqual({ acked: 0, retried: [], deadLettered: ["schema rejected"] });
  });

  it("redelivers after the cap when the hint is longer, and says so once with both values", async () => {
    const { logger, lines } = captureLogger();
    const { d, calls } = delivery();
    await settle(
      d,
      async () => {
        throw Object.assign(new Error("429"), {
          retryable: true,
          retryAfterMs: MAX_RETRY_AFTER_MS,
          retryAfterRequestedMs: 999_999_999_000,
        });
      },
      logger,
    );
    expect(calls.retried).toEqual([MAX_RETRY_AFTER_MS]);
    const clamped = lines.filter((l) => String(l["msg"]).startsWith("Retry-After longer than the cap"));
    expect(clamped).toHaveLength(1);
    expect(clamped[0]).toMatchObject({ level: 40, retryAfterRequestedMs: 999_999_999_000, retryAfterMs: MAX_RETRY_AFTER_MS });
  });
});

describe("redeliveryDelay", () => {
  it("keeps a nak delay NATS can honour: at most the Retry-After cap, never negative", () => {
    expect(redeliveryDelay(999_999_999_000)).toBe(MAX_RETRY_AFTER_MS);
    expect(redeliveryDelay(Number.POSITIVE_INFINITY)).toBe(MAX_RETRY_AFTER_MS);
    expect(redeliveryDelay(1500)).toBe(1500);
    expect(redeliveryDelay(-5)).toBe(0);
    expect(redeliveryDelay(Number.NaN)).toBe(0);
  });
});

/** A consumer whose deliveries are the given ones, all at once: runParallel's own work without a server. */
class GivenDeliveries extends DurableConsumer {
  constructor(private readonly given: Delivery[]) {
    super({} as Bus, { durable: "test", filterSubject: "telemetry.v1.>", logger: testLogger() });
  }
  override async *deliveries(): AsyncGenerator<Delivery> {
    yield* this.given;
  }
}

describe("DurableConsumer.runParallel's acks", () => {
  /** Ten deliveries whose acks note how many handlers had finished when each ack was made. */
  function ten() {
    const handled = { n: 0 };
    const ackedAfter: number[] = [];
    const given = Array.from({ length: 10 }, (_, i) => {
      const { d } = delivery(i + 1);
      return { ...d, ack: () => void ackedAfter.push(handled.n) };
    });
    const handler = async () => void handled.n++;
    return { given, handler, ackedAfter };
  }

  it("without batchAcks: each delivery acked as its handler resolves", async () => {
    const { given, handler, ackedAfter } = ten();
    await new GivenDeliveries(given).runParallel(handler, new AbortController().signal, { maxInFlight: 10 });
    expect(ackedAfter).toHaveLength(10);
    expect(ackedAfter[0]).toBeLessThan(10);
  });

  it("with batchAcks: the acks of deliveries settled in one turn made together after it, and queued ones made before the run resolves", async () => {
    const { given, handler, ackedAfter } = ten();
    await new GivenDeliveries(given).runParallel(handler, new AbortController().signal, { maxInFlight: 10, batchAcks: true });
    // Every handler resolved within one turn; the run ended in it too, so only the run's own last flush can have acked.
    expect(ackedAfter).toEqual(Array(10).fill(10));
  });

  it("with batchAcks: a failed delivery is retried at once, not queued with the acks", async () => {
    const { given, ackedAfter } = ten();
    const retried: number[] = [];
    const withRetry = given.map((d) => ({ ...d, retry: () => void retried.push(d.streamSequence) }));
    await new GivenDeliveries(withRetry).runParallel(
      async (d) => {
        if (d.streamSequence % 2 === 0) throw new Error("down");
      },
      new AbortController().signal,
      { maxInFlight: 10, batchAcks: true },
    );
    expect(retried).toEqual([2, 4, 6, 8, 10]);
    expect(ackedAfter).toHaveLength(5);
  });
});

describe("consumerInfo / consumerBacklog", () => {
  const busAnswering = (info: () => Promise<unknown>) => ({ jsm: () => ({ consumers: { info } }) }) as unknown as Bus;

  it("reads a consumer being deleted (nats-server's info without fields, no error) as gone, like one not found", async () => {
    // What nats-server 2.9 answered to an info request during a delete (a CI run's TypeError on `delivered`).
    const deleting = busAnswering(async () => ({ type: "io.nats.jetstream.api.v1.consumer_info_response" }));
    expect(await consumerInfo(deleting, "omf-r")).toBeUndefined();
    expect(await consumerBacklog(deleting, "omf-r")).toBeUndefined();
    const notFound = busAnswering(async () => {
      throw Object.assign(new Error("consumer not found"), { api_error: { code: 404, err_code: 10014 } });
    });
    expect(await consumerBacklog(notFound, "omf-r")).toBeUndefined();
  });

  it("gives a live consumer's counts, and passes any other failure on", async () => {
    const live = busAnswering(async () => ({
      config: { durable_name: "omf-r" },
      delivered: { stream_seq: 42, consumer_seq: 40 },
      ack_floor: { stream_seq: 30, consumer_seq: 28 },
      num_pending: 5,
      num_ack_pending: 2,
    }));
    expect(await consumerBacklog(live, "omf-r")).toEqual({ pending: 5, ackPending: 2, deliveredSequence: 42 });
    const timeout = busAnswering(async () => {
      throw Object.assign(new Error("TIMEOUT"), { code: "TIMEOUT" });
    });
    await expect(consumerBacklog(timeout, "omf-r")).rejects.toThrow("TIMEOUT");
  });
});

import { create } from "@bufbuild/protobuf";
import { TelemetryBatchSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { MAX_RETRY_AFTER_MS } from "@meridian/retry";
import { captureLogger, testLogger } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { type Delivery, redeliveryDelay, settle } from "./consumer.js";
import { PermanentError } from "./errors.js";

function delivery() {
  const calls: { acked: number; retried: Array<number | undefined>; deadLettered: string[] } = { acked: 0, retried: [], deadLettered: [] };
  const d: Delivery = {
    batch: create(TelemetryBatchSchema, { id: "b" }),
    subject: "telemetry.v1.api.c.d",
    streamSequence: 1,
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

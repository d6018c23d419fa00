import { create } from "@bufbuild/protobuf";
import { TelemetryBatchSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { testLogger } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { type Delivery, settle } from "./consumer.js";
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
});

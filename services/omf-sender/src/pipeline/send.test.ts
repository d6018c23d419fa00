import { describe, expect, it } from "vitest";
import {
  dataMessage,
  type OmfClient,
  type OmfMessage,
  OmfPayloadTooLargeError,
  type OmfResult,
  OmfServerError,
  serializeBody,
} from "../platform/index.js";
import { BodyLimits, sendTracked, valuesByContainer } from "./send.js";

/** A client that refuses bodies over `limit` bytes with 413 and, optionally, fails the n-th request it would accept. */
function fakeClient(limit: number, failAt?: number) {
  const sent: OmfMessage[] = [];
  let accepted = 0;
  const client = {
    omfUrl: "https://pi.example/piwebapi/omf",
    config: { maxBodyBytes: 4 * 1024 * 1024, maxValuesPerRequest: 10_000 },
    async send(m: OmfMessage): Promise<OmfResult> {
      sent.push(m);
      if (Buffer.byteLength(serializeBody(m)) > limit) throw new OmfPayloadTooLargeError("413", { status: 413 });
      if (failAt !== undefined && ++accepted === failAt) throw new OmfServerError("503", { status: 503 });
      return { ok: true, status: 200, partial: false, messages: [] };
    },
  };
  return { client: client as unknown as OmfClient, sent };
}

const values = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ Timestamp: `2026-01-01T00:00:${String(from + i).padStart(2, "0")}Z`, v: i }));

describe("BodyLimits", () => {
  it("uses the configured limit until a 413, then half the refused size, never growing again; per endpoint", () => {
    const { client } = fakeClient(0);
    const l = new BodyLimits();
    expect(l.maxBytes("pi", client)).toBe(4 * 1024 * 1024);
    expect(l.refused("pi", client, 10_000)).toBe(5000);
    expect(l.maxBytes("pi", client)).toBe(5000);
    expect(l.refused("pi", client, 12_000)).toBeUndefined();
    expect(l.maxBytes("pi", client)).toBe(5000);
    expect(l.refused("pi", client, 4000)).toBe(2000);
    expect(l.refused("pi", client, 100)).toBe(1024); // not below the smallest useful body
    expect(l.maxBytes("other", client)).toBe(4 * 1024 * 1024);
  });
});

describe("sendTracked", () => {
  it("halves on 413, learns the limit once, and reports every accepted request in order", async () => {
    const { client, sent } = fakeClient(1500);
    const limits = new BodyLimits();
    const accepted: number[] = [];
    const learnt: number[] = [];
    const message = dataMessage([{ containerid: "c1", values: values(40) }], "create");
    const opts = {
      onAccepted: (r: OmfMessage) => accepted.push(valuesByContainer(r).get("c1") ?? 0),
      onLearnt: (b: number) => learnt.push(b),
    };
    await sendTracked(client, "pi", limits, message, opts);
    expect(accepted.reduce((a, b) => a + b, 0)).toBe(40);
    expect(learnt).toHaveLength(1);
    const refused = sent.filter((m) => Buffer.byteLength(serializeBody(m)) > 1500).length;
    expect(refused).toBeGreaterThan(0);
    // The next message is cut to the learnt size: no 413 at all.
    sent.length = 0;
    accepted.length = 0;
    await sendTracked(client, "pi", limits, dataMessage([{ containerid: "c1", values: values(40, 40) }], "create"), opts);
    expect(sent.every((m) => Buffer.byteLength(serializeBody(m)) <= 1500)).toBe(true);
    expect(accepted.reduce((a, b) => a + b, 0)).toBe(40);
    expect(learnt).toHaveLength(1);
  });

  it("stops at the first failure: what was reported accepted is a prefix of the values", async () => {
    const { client } = fakeClient(1500, 2);
    const seen: Array<Record<string, unknown>> = [];
    const message = dataMessage([{ containerid: "c1", values: values(40) }], "create");
    await expect(
      sendTracked(client, "pi", new BodyLimits(), message, {
        onAccepted: (r) => {
          for (const item of r.body as unknown as Array<{ values: Array<Record<string, unknown>> }>) seen.push(...item.values);
        },
      }),
    ).rejects.toBeInstanceOf(OmfServerError);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(40);
    expect(seen).toEqual(values(40).slice(0, seen.length));
  });
});

import { queryObjects } from "node:v8";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { until } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import { clientFactory } from "./api.js";
import { followTelemetry, MESSAGES_PER_CALL, RecentIds } from "./live-stream.js";

const BASE = Date.UTC(2026, 0, 1);

function event(i: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `ev-${i}`,
    source: { platform: Platform.API, connection: "c", device: "d" },
    observedTime: timestampFromMs(BASE + i),
    receivedTime: timestampFromMs(BASE + i),
    points: [{ name: "p", value: { case: "doubleValue", value: i } }],
  });
}

/**
 * An in-memory gateway whose stream holds events 0 … total - 1, event i received at BASE + i ms: a call replays from
 * its start time (as JetStream's start time does, the event at that time included), sends what is left, then stays
 * open. Records each call's start.
 */
function gateway(total: number, fail?: (call: number) => ConnectError | undefined) {
  const calls: Array<number | undefined> = [];
  const transport = createRouterTransport((router) =>
    router.service(TelemetryService, {
      async *subscribe(req, ctx) {
        calls.push(req.startTime ? timestampDate(req.startTime).getTime() - BASE : undefined);
        const err = fail?.(calls.length);
        if (err) throw err;
        for (let i = req.startTime ? timestampDate(req.startTime).getTime() - BASE : 0; i < total; i++) yield { event: event(i) };
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      },
    }),
  );
  return { client: clientFactory(transport), calls };
}

const stops: AbortController[] = [];
afterEach(() => {
  for (const ac of stops.splice(0)) ac.abort();
});

function follow(client: ReturnType<typeof gateway>["client"], extra: Partial<Parameters<typeof followTelemetry>[0]> = {}) {
  const ac = new AbortController();
  stops.push(ac);
  const seen: string[] = [];
  const states: string[] = [];
  const authFailures: string[] = [];
  const done = followTelemetry({
    client,
    filter: { platform: Platform.UNSPECIFIED, connection: "", device: "" },
    signal: ac.signal,
    onEvent: (e) => seen.push(e.id),
    onState: (s) => states.push(s),
    onAuthFailure: (m) => authFailures.push(m),
    ...extra,
  });
  return { ac, seen, states, authFailures, done };
}

describe("RecentIds", () => {
  it("tells new ids from repeats and forgets the oldest past its limit", () => {
    const ids = new RecentIds(3);
    expect(["a", "b", "a", "c"].map((id) => ids.add(id))).toEqual([true, true, false, true]);
    expect(ids.add("d")).toBe(true); // "a" forgotten
    expect(ids.size).toBe(3);
    expect(ids.add("b")).toBe(false);
    expect(ids.add("a")).toBe(true);
  });

  it("stays at its limit however many ids pass", () => {
    const ids = new RecentIds(50_000);
    for (let i = 0; i < 200_000; i++) ids.add(`connection-${i}`);
    expect(ids.size).toBe(50_000);
    expect(ids.add("connection-199999")).toBe(false);
    expect(ids.add("connection-149999")).toBe(true);
  });
});

describe("followTelemetry", () => {
  it("shows every event once across the calls it opens after every `messagesPerCall` messages", async () => {
    const g = gateway(25);
    const f = follow(g.client, { messagesPerCall: 10 });
    await until(() => f.seen.length === 25);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.seen).toEqual(Array.from({ length: 25 }, (_, i) => `ev-${i}`));
    // Each next call starts at the last event shown (received at BASE + i ms): that event is sent again and skipped.
    expect(g.calls).toEqual([undefined, 9, 18]);
    expect(f.states.filter((s) => s !== "Following the stream.")).toEqual([]);
  });

  it("holds a bounded heap however long one stream runs", async () => {
    // @connectrpc/connect keeps ~1 promise per message read until its call ends (see MESSAGES_PER_CALL): following
    // one call for 50,000 messages kept 100,000 promises alive (the in-memory transport adds one of its own).
    const perCall = 10_000;
    const total = 5 * perCall;
    const g = gateway(total);
    const before = queryObjects(Promise, { format: "count" }) as number;
    const f = follow(g.client, { messagesPerCall: perCall });
    await until(() => f.seen.length === total, { timeoutMs: 30_000 });
    // The last call is still open (the gateway waits for more): what it holds is counted.
    const during = queryObjects(Promise, { format: "count" }) as number;
    expect(during - before).toBeLessThan(perCall + 1000);
    expect(g.calls.length).toBeGreaterThan(1);
  }, 60_000);

  it("ends a call after MESSAGES_PER_CALL messages when not told otherwise", async () => {
    const g = gateway(MESSAGES_PER_CALL + 10);
    const f = follow(g.client);
    await until(() => f.seen.length === MESSAGES_PER_CALL + 10, { timeoutMs: 30_000 });
    expect(g.calls).toEqual([undefined, MESSAGES_PER_CALL - 1]);
  }, 60_000);

  it("reopens after a failure from the last event's time, and stops for good on a refused key", async () => {
    const g = gateway(5, (call) =>
      call === 2
        ? new ConnectError("gateway restarting", Code.Unavailable)
        : call === 3
          ? new ConnectError("bad key", Code.Unauthenticated)
          : undefined,
    );
    const f = follow(g.client, { messagesPerCall: 3 });
    await f.done;
    expect(f.seen).toEqual(["ev-0", "ev-1", "ev-2"]);
    expect(g.calls).toEqual([undefined, 2, 2]);
    expect(f.states.some((s) => s.startsWith("Reconnecting in 0.5 s"))).toBe(true);
    expect(f.authFailures).toHaveLength(1);
    expect(f.authFailures[0]).toMatch(/bad key/);
  });
});

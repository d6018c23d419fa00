import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Bus, consumerBacklog } from "@meridian/bus";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import { crash, type NatsServerHandle, putOmfRoute, startPipelineSender, startPipelineStack, until } from "./harness.js";

/**
 * Two omf-sender replicas on one route: both bind the route's durable consumer `omf-<route>` and pull from it, so
 * each message goes to one of them. PI's OmfCreateMode here is Insert (the emulator's default): every value it is
 * sent is kept, so a message written twice shows as two values at one timestamp.
 *
 * The crash: the victim's NATS connection is closed without draining (harness `crash`), the nearest in-process thing
 * to a kill -9. What it pulled and had not acked comes back to the survivor after the ack wait (3 s here). Some of it
 * PI already holds: written and recorded in the delivery ledger but not acked, or a send that was in flight and
 * landed after the connection was gone (no written record, only the "being sent" note, so the survivor asks PI's
 * read path: `foundAtEndpoint`). Either way the survivor must not write it again, which is why exactly once is
 * asserted here and not merely at-least-once; without the ledger this test finds the victim's last batch twice.
 */
const ROUTE = "shared";
const LINE = "line-shared";
const DEVICES = Array.from({ length: 10 }, (_, d) => `dev-${d}`);
const PER_PUBLISH = 100;
const BASE = Date.UTC(2026, 2, 1);

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let bus: Bus;
let endpointsFile: string;
let a: OmfSender;
let b: OmfSender;
/** The next index to publish per device (an event's index is its timestamp in seconds from BASE and its `count`). */
const next = new Map(DEVICES.map((d) => [d, 0]));

function event(device: string, i: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${LINE}:${device}:${i}`,
    source: { platform: Platform.API, connection: LINE, device },
    observedTime: timestampFromDate(new Date(BASE + i * 1000)),
    points: [
      { name: "temperature", value: { case: "doubleValue", value: 20 + i / 4 } },
      { name: "count", value: { case: "intValue", value: BigInt(i) } },
    ],
  });
}

/** Publishes `n` events in publishes of PER_PUBLISH events of one device, the devices in turn. */
async function publish(n: number): Promise<void> {
  let sent = 0;
  for (let k = 0; sent < n; k++) {
    const device = DEVICES[k % DEVICES.length]!;
    const from = next.get(device)!;
    const count = Math.min(PER_PUBLISH, n - sent);
    await bus.publishEvents(Array.from({ length: count }, (_, j) => event(device, from + j)));
    next.set(device, from + count);
    sent += count;
  }
}

const published = () => [...next.values()].reduce((s, n) => s + n, 0);

type Container = { id: string; valueCount: number; values: Array<{ Timestamp: string; count: number }> };
function containers(): Container[] {
  const s = emu.state({ scope: "pi" }) as unknown as { scopes: Record<string, { containers: Record<string, Container> }> };
  return Object.values(s.scopes.pi?.containers ?? {}).filter((c) => c.id.startsWith(`api.${LINE}.`));
}
const valueCount = () => containers().reduce((n, c) => n + c.valueCount, 0);

/**
 * Every event published is at PI exactly once: per device one container holding the indexes 0..published-1, each
 * once, each at its own timestamp. Compared as lists, so a duplicate or a gap is named in the failure.
 */
function expectExactlyOnce() {
  const cs = containers();
  expect(cs).toHaveLength(DEVICES.length);
  for (const d of DEVICES) {
    const c = cs.find((x) => x.id.startsWith(`api.${LINE}.${d}.`));
    expect(c, `container of ${d}`).toBeDefined();
    const counts = c!.values.map((v) => v.count).sort((x, y) => x - y);
    const expected = Array.from({ length: next.get(d)! }, (_, i) => i);
    const dup = counts.filter((v, i) => i > 0 && counts[i - 1] === v);
    expect(dup, `values of ${d} written more than once`).toEqual([]);
    expect(counts, `values of ${d}`).toEqual(expected);
    expect(new Set(c!.values.map((v) => v.Timestamp)).size).toBe(expected.length);
  }
}

async function settled() {
  await until(
    async () => {
      const bl = await consumerBacklog(bus, `omf-${ROUTE}`);
      return bl !== undefined && bl.pending === 0 && bl.ackPending === 0;
    },
    { timeoutMs: 30_000, what: `route ${ROUTE} acknowledged everything` },
  );
}

const countersOf = async (s: OmfSender) => (await s.pipelines.counters()).find((p) => p.name === ROUTE);
const pipelineOf = (s: OmfSender) => s.pipelines.list().find((p) => p.route.id === ROUTE);

beforeAll(async () => {
  const stack = await startPipelineStack();
  ({ nats, emu, bus, endpointsFile } = stack);
  a = stack.sender;
  b = await startPipelineSender({ nats, endpointsFile });
  await putOmfRoute(bus, ROUTE, LINE, "pi");
  // Both replicas run the route (each watches the routes bucket) before anything is published.
  await until(() => pipelineOf(a) !== undefined && pipelineOf(b) !== undefined, { timeoutMs: 10_000, what: "the route on both replicas" });
}, 30_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

describe("two omf-sender replicas on one route's durable consumer", () => {
  it("share the work: both deliver, and 20,000 events from 10 devices are at PI exactly once", async () => {
    await publish(20_000);
    await until(() => valueCount() >= 20_000, { timeoutMs: 30_000, what: "20,000 values at PI" });
    await settled();
    const ca = await countersOf(a);
    const cb = await countersOf(b);
    // Each replica took a share; between them every event once (a message is delivered to one of them).
    expect(ca?.delivered).toBeGreaterThan(0n);
    expect(cb?.delivered).toBeGreaterThan(0n);
    expect((ca?.delivered ?? 0n) + (cb?.delivered ?? 0n)).toBe(20_000n);
    expect((ca?.failed ?? 0n) + (cb?.failed ?? 0n)).toBe(0n);
    expectExactlyOnce();
  }, 45_000);

  it("one replica crashed mid-stream (connection closed, nothing drained): the other delivers everything, each event once at PI", async () => {
    const victim = a;
    const survivor = b;
    const before = (await countersOf(victim))?.delivered ?? 0n;
    // Events are being published while the victim dies, and more after: the survivor is taking new work and the
    // victim's unacknowledged messages at once.
    const publishing = publish(8_000);
    // The victim is working when it dies: it has delivered some of this stream, and messages are out unacknowledged.
    await until(
      async () =>
        ((await countersOf(victim))?.delivered ?? 0n) > before + 500n &&
        ((await consumerBacklog(bus, `omf-${ROUTE}`))?.ackPending ?? 0) > 0,
      { timeoutMs: 20_000, what: "the victim delivering the second stream" },
    );
    const redeliveredBefore = pipelineOf(survivor)!.counters.redelivered;
    await crash(victim);
    await publishing;
    await publish(2_000);
    expect(published()).toBe(30_000);
    await until(() => valueCount() >= 30_000, { timeoutMs: 30_000, what: "30,000 values at PI" });
    await settled();
    expectExactlyOnce();
    // What the victim held unacknowledged came back to the survivor (after the ack wait) and was not written again
    // where the ledger or PI's read-back showed it written.
    expect(pipelineOf(survivor)!.counters.redelivered).toBeGreaterThan(redeliveredBefore);
  }, 60_000);
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Bus, consumerBacklog, deadLetterSubject, routeBucket, STREAMS } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { captureLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import {
  logger,
  type NatsServerHandle,
  piValueCounts,
  setFaults,
  startEmulator,
  startNatsServer,
  startSender,
  TEST_BACKOFF,
  temperatureEvent,
  until,
} from "./harness.js";

/**
 * A flush that does not end. The endpoint holds one request for HANG_MS without answering, and the endpoint's own
 * timeout (60 s) is longer still, so only the flush's bound (OMF_FLUSH_MAX_MS) can end it. Before the bound, such a
 * flush kept its messages from redelivery with its heartbeat for as long as it hung, and nothing said so.
 */
const FLUSH_MAX_MS = 1500;
const HANG_MS = 45_000;

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let bus: Bus;
const logs = captureLogger();
const event = (device: string, i: number, base: number) => temperatureEvent("line-fo", device, i, base);
const valueCounts = () => piValueCounts(emu, "api.line-fo.");
const faults = (body: object | null) => setFaults(emu, body);

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  const endpointsFile = join(mkdtempSync(join(tmpdir(), "omf-fo-")), "endpoints.json");
  writeFileSync(
    endpointsFile,
    JSON.stringify([
      { id: "pi", kind: "pi", url: `${emu.url}/piwebapi`, allowHttp: true, username: "meridian", password: "meridian", timeoutMs: 60_000 },
    ]),
  );
  sender = await startSender(
    nats,
    {
      OMF_ACK_WAIT_MS: "3000",
      OMF_LINGER_MS: "50",
      OMF_FLUSH_MAX_MS: String(FLUSH_MAX_MS),
      OMF_ENDPOINTS_FILE: endpointsFile,
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
    },
    { redeliveryBackoff: TEST_BACKOFF },
    logs.logger,
  );
  bus = Bus.connect({ servers: nats.url, name: "test", logger });
  await bus.ready;
});
afterAll(async () => {
  await faults(null);
  await sender?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

describe("pipeline: a flush that outlives OMF_FLUSH_MAX_MS", () => {
  it("is aborted at the bound, logged with the stage it hung in, and its events reach PI once, long before the hang ends", async () => {
    await routeBucket(bus).put(
      "fo",
      create(RouteSchema, {
        id: "fo",
        source: { connection: "line-fo" },
        sink: { platform: Platform.OMF, target: "pi" },
        options: { lingerMs: "50" },
      }),
    );
    await until(async () => (await consumerBacklog(bus, "omf-fo")) !== undefined, { timeoutMs: 10_000, what: "the route's consumer" });
    const base = Date.UTC(2026, 5, 1);
    // Definitions and the endpoint record first, so that the hang meets a data write.
    await bus.publishEvents([event("d0", 0, base)]);
    await until(async () => (await valueCounts()).reduce((a, b) => a + b, 0) === 1, { timeoutMs: 10_000, what: "first value" });

    await faults({ hangMs: HANG_MS, hangCount: 1, profile: "pi" });
    const started = Date.now();
    const events = ["d0", "d1"].flatMap((d) => Array.from({ length: 10 }, (_, i) => event(d, i + 1, base)));
    await bus.publishEvents(events);
    // Far less than HANG_MS: without the bound the values come only after the endpoint lets go of the request.
    await until(async () => (await valueCounts()).reduce((a, b) => a + b, 0) === 21, {
      timeoutMs: 20_000,
      what: "every value after the hung request",
    });
    const tookMs = Date.now() - started;
    expect(tookMs).toBeGreaterThanOrEqual(FLUSH_MAX_MS);
    expect(tookMs).toBeLessThan(HANG_MS);

    const overruns = logs.lines.filter((l) => l["msg"] === "flush overran its bound; aborted, its messages will be retried");
    expect(overruns).toHaveLength(1);
    expect(overruns[0]).toMatchObject({ level: 50, route: "fo", endpoint: "pi", stage: "send", flushMaxMs: FLUSH_MAX_MS, events: 20 });
    // Each value once, nothing dead-lettered; the route's status names what happened.
    expect((await valueCounts()).sort()).toEqual([10, 11]);
    const [route] = (await sender.pipelines.counters()).filter((p) => p.name === "fo");
    expect(route?.failed).toBe(0n);
    expect(route?.redelivered).toBeGreaterThanOrEqual(20n);
    expect(route?.lastError).toContain(`still running after ${FLUSH_MAX_MS} ms (at send)`);
    await expect(bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: deadLetterSubject("omf-fo") })).rejects.toThrow();
  }, 60_000);
});

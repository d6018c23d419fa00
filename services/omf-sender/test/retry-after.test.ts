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
  getJson,
  logger,
  type NatsServerHandle,
  piValueCounts,
  setFaults,
  startEmulator,
  startNatsServer,
  startSender,
  temperatureEvent,
  until,
} from "./harness.js";

/**
 * An endpoint that answers 429 with a Retry-After of 31 years. Uncapped, that wait became the NATS redelivery delay:
 * the message outlived the stream's age limit and vanished, and past int64 nanoseconds it came back at once. The route
 * lowers the cap to 1 s (its `maxRetryAfterMs` option, bounded 1 s to 5 min) so that the test takes seconds.
 */
const CAP_MS = 1000;
const ASKED_S = 999_999_999;

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let bus: Bus;
const logs = captureLogger();
const event = (device: string, i: number, base: number) => temperatureEvent("line-ra", device, i, base);
const valueCounts = () => piValueCounts(emu, "api.line-ra.");
const faults = (body: object | null) => setFaults(emu, body);

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  const endpointsFile = join(mkdtempSync(join(tmpdir(), "omf-ra-")), "endpoints.json");
  writeFileSync(
    endpointsFile,
    JSON.stringify([{ id: "pi", kind: "pi", url: `${emu.url}/piwebapi`, allowHttp: true, username: "meridian", password: "meridian" }]),
  );
  sender = await startSender(
    nats,
    { OMF_ACK_WAIT_MS: "3000", OMF_LINGER_MS: "50", OMF_ENDPOINTS_FILE: endpointsFile, OMF_ALLOW_INSECURE_ENDPOINTS: "true" },
    { redeliveryBackoff: { initialMs: 200, maxMs: 2_000, multiplier: 2, jitter: 0.2 } },
    logs.logger,
  );
  bus = Bus.connect({ servers: nats.url, name: "test", logger });
  await bus.ready;
});
afterAll(async () => {
  await sender?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

describe("pipeline: an endpoint's Retry-After", () => {
  it(`429 with Retry-After: ${ASKED_S} is retried after the route's cap, logged once per answer with both values, and nothing is lost`, async () => {
    await routeBucket(bus).put(
      "ra",
      create(RouteSchema, {
        id: "ra",
        source: { connection: "line-ra" },
        sink: { platform: Platform.OMF, target: "pi" },
        options: { lingerMs: "50", maxRetryAfterMs: String(CAP_MS) },
      }),
    );
    // A new route's consumer starts at the next event: publish once omf-sender has made it.
    await until(async () => (await consumerBacklog(bus, "omf-ra")) !== undefined, { timeoutMs: 10_000, what: "the route's consumer" });
    const base = Date.UTC(2026, 5, 1);
    // Definitions first, so the 429s hit data.
    await bus.publishEvents([event("d0", 0, base)]);
    await until(async () => (await valueCounts()).reduce((a, b) => a + b, 0) === 1, { timeoutMs: 10_000, what: "first value" });
    await faults({ status: 429, retryAfterSeconds: ASKED_S, count: 2, profile: "pi" });
    const events = ["d0", "d1", "d2"].flatMap((d) => Array.from({ length: 20 }, (_, i) => event(d, i + 1, base)));
    await bus.publishEvents(events);
    await until(async () => (await valueCounts()).reduce((a, b) => a + b, 0) === 61, {
      timeoutMs: 30_000,
      what: "every value after the 429s",
    });
    await faults(null);

    const counters = (await getJson(`${emu.url}/_emulator/counters`)).body;
    expect(counters.byStatus["429"]).toBe(2);
    const clamped = logs.lines.filter((l) => String(l["msg"]).startsWith("endpoint's Retry-After is longer than the cap"));
    // One line per 429 the endpoint sent, however many bus messages that answer failed.
    expect(clamped).toHaveLength(2);
    for (const line of clamped) {
      expect(line).toMatchObject({ level: 40, route: "ra", endpoint: "pi", retryAfterRequestedMs: ASKED_S * 1000, retryAfterMs: CAP_MS });
    }
    const naks = logs.lines.filter((l) => l["msg"] === "send failed; will retry" && l["route"] === "ra");
    expect(naks.length).toBeGreaterThan(0);
    for (const line of naks) expect(line["retryAfterMs"]).toBe(CAP_MS);
    // Each value once, nothing dead-lettered.
    expect((await valueCounts()).sort()).toEqual([20, 20, 21]);
    const [route] = (await sender.pipelines.counters()).filter((p) => p.name === "ra");
    expect(route?.failed).toBe(0n);
    await expect(bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: deadLetterSubject("omf-ra") })).rejects.toThrow();
  }, 60_000);
});

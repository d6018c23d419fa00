import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GetStatusResponseSchema, Health, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { describe, expect, it } from "vitest";
import type { CliContext } from "../kit/context.js";
import { createOutput } from "../kit/output.js";
import { lagText, status } from "./status.js";

const RESPONSE = create(GetStatusResponseSchema, {
  services: [
    {
      service: "omf-sender",
      instance: "omf-1",
      version: "0.1.0",
      health: Health.SERVING,
      reportTime: timestampFromDate(new Date()),
      pipelines: [
        {
          name: "route idigi-to-pi",
          received: 120n,
          delivered: 100n,
          failed: 5n,
          skipped: 3n,
          pending: 40n,
          lag: durationFromMs(190_000),
          lastError: "400 Bad Request",
        },
        { name: "route quiet", received: 10n, delivered: 10n, lag: durationFromMs(0) },
        { name: "route catching-up", received: 50n, delivered: 50n, lag: durationFromMs(42_000) },
        { name: "route behind", received: 50n, delivered: 50n, lag: durationFromMs(75_000) },
        { name: "reader-r1", received: 4n, delivered: 4n },
      ],
    },
    { service: "idigi-listener", instance: "idigi-1", version: "0.1.0", health: Health.STALE },
  ],
  streams: [
    {
      name: "TELEMETRY",
      messages: 2048n,
      bytes: 3n * 1024n * 1024n,
      maxBytes: 1024n ** 3n,
      removed: 17n,
      firstTime: timestampFromDate(new Date()),
    },
    { name: "DEADLETTER", messages: 0n, bytes: 0n },
  ],
});

function run(args: { problems?: boolean }, format: "table" | "json" = "table") {
  let text = "";
  const out = createOutput({ format, stdout: { write: (s: string) => (text += s) }, stderr: { write: () => true }, colour: false });
  const ctx = { out, signal: new AbortController().signal, client: () => ({ getStatus: async () => RESPONSE }) } as unknown as CliContext;
  return status(ctx, args).then(() => text);
}

describe("status", () => {
  it("lag is the age of the oldest waiting message, for people; - where it is not reported", () => {
    const text = (ms?: number) => lagText(create(PipelineCountersSchema, ms === undefined ? {} : { lag: durationFromMs(ms) }));
    expect(text()).toBe("-");
    expect(text(0)).toBe("0s");
    expect(text(400)).toBe("0s");
    expect(text(42_000)).toBe("42s");
    expect(text(59_400)).toBe("59s");
    expect(text(59_600)).toBe("1m0s");
    expect(text(190_000)).toBe("3m10s");
    expect(text(7_500_000)).toBe("2h5m");
    expect(text(3 * 86_400_000 + 4 * 3_600_000 + 59_000)).toBe("3d4h");
  });

  it("prints a pipeline's received / delivered / failed / pending / lag and its last error", async () => {
    const text = await run({});
    expect(text).toMatch(/^SERVICE\s+PIPELINE\s+RECEIVED\s+DELIVERED\s+FAILED\s+PENDING\s+LAG\s+LAST ERROR$/m);
    expect(text).toMatch(/^omf-sender\s+route idigi-to-pi\s+120\s+100\s+5\s+40\s+3m10s\s+400 Bad Request$/m);
    expect(text).toMatch(/^omf-sender\s+route quiet\s+10\s+10\s+0\s+0\s+0s$/m);
    expect(text).toMatch(/^omf-sender\s+reader-r1\s+4\s+4\s+0\s+0\s+-$/m);
    expect(text).toMatch(/^idigi-listener\s+idigi-1\s+0\.1\.0\s+stale$/m);
    // messages, size, the size limit ("none" when the stream has none) and what it no longer holds.
    expect(text).toMatch(/^TELEMETRY\s+2048\s+3\.0 MiB\s+1\.0 GiB\s+17\s+\d+s ago$/m);
    expect(text).toMatch(/^DEADLETTER\s+0\s+0 B\s+none\s+0\s*$/m);
  });

  it("--problems keeps services not serving and pipelines with failures, a pending count or a lag over 60 s", async () => {
    const text = await run({ problems: true });
    expect(text).toContain("route idigi-to-pi");
    expect(text).toMatch(/^omf-sender\s+route behind\s+50\s+50\s+0\s+0\s+1m15s$/m);
    expect(text).not.toContain("route quiet");
    expect(text).not.toContain("route catching-up");
    expect(text).not.toContain("reader-r1");
    expect(text).toMatch(/^idigi-listener/m);
    expect(text).not.toMatch(/^omf-sender\s+omf-1/m);
    const json = JSON.parse(await run({ problems: true }, "json"));
    expect(json.services.map((s: { service: string }) => s.service)).toEqual(["idigi-listener"]);
  });

  it('-o json has each pipeline\'s lag as a protobuf Duration ("190s"), none where it is not reported', async () => {
    const json = JSON.parse(await run({}, "json"));
    const lags = Object.fromEntries(json.services[0].pipelines.map((p: { name: string; lag?: string }) => [p.name, p.lag]));
    expect(lags).toEqual({
      "route idigi-to-pi": "190s",
      "route quiet": "0s",
      "route catching-up": "42s",
      "route behind": "75s",
      "reader-r1": undefined,
    });
  });
});

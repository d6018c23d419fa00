import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GetStatusResponseSchema, Health } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { describe, expect, it } from "vitest";
import type { CliContext } from "../kit/context.js";
import { createOutput } from "../kit/output.js";
import { lag, status } from "./status.js";

const RESPONSE = create(GetStatusResponseSchema, {
  services: [
    {
      service: "omf-sender",
      instance: "omf-1",
      version: "0.1.0",
      health: Health.SERVING,
      reportTime: timestampFromDate(new Date()),
      pipelines: [
        { name: "route idigi-to-pi", received: 120n, delivered: 100n, failed: 5n, skipped: 3n, pending: 40n, lastError: "400 Bad Request" },
        { name: "route quiet", received: 10n, delivered: 10n },
      ],
    },
    { service: "idigi-listener", instance: "idigi-1", version: "0.1.0", health: Health.STALE },
  ],
  streams: [{ name: "TELEMETRY", messages: 2048n, bytes: 3n * 1024n * 1024n, firstTime: timestampFromDate(new Date()) }],
});

function run(args: { problems?: boolean }, format: "table" | "json" = "table") {
  let text = "";
  const out = createOutput({ format, stdout: { write: (s: string) => (text += s) }, stderr: { write: () => true }, colour: false });
  const ctx = { out, signal: new AbortController().signal, client: () => ({ getStatus: async () => RESPONSE }) } as unknown as CliContext;
  return status(ctx, args).then(() => text);
}

describe("status", () => {
  it("lag is what a pipeline received and has not delivered, skipped or failed", () => {
    expect(lag(RESPONSE.services[0]!.pipelines[0]!)).toBe(12n);
    expect(lag(RESPONSE.services[0]!.pipelines[1]!)).toBe(0n);
  });

  it("prints a pipeline's received / delivered / failed / pending / lag and its last error", async () => {
    const text = await run({});
    expect(text).toMatch(/^SERVICE\s+PIPELINE\s+RECEIVED\s+DELIVERED\s+FAILED\s+PENDING\s+LAG\s+LAST ERROR$/m);
    expect(text).toMatch(/^omf-sender\s+route idigi-to-pi\s+120\s+100\s+5\s+40\s+12\s+400 Bad Request$/m);
    expect(text).toMatch(/^idigi-listener\s+idigi-1\s+0\.1\.0\s+stale$/m);
    expect(text).toMatch(/^TELEMETRY\s+2048\s+3\.0 MiB\s+\d+s ago$/m);
  });

  it("--problems keeps services not serving and pipelines with failures or a backlog", async () => {
    const text = await run({ problems: true });
    expect(text).toContain("route idigi-to-pi");
    expect(text).not.toContain("route quiet");
    expect(text).toMatch(/^idigi-listener/m);
    expect(text).not.toMatch(/^omf-sender\s+omf-1/m);
    const json = JSON.parse(await run({ problems: true }, "json"));
    expect(json.services.map((s: { service: string }) => s.service)).toEqual(["idigi-listener"]);
  });
});

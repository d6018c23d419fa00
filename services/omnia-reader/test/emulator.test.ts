/**
 * omnia-reader against the Omnia emulator (HTTPS, tokens verified against the Entra emulator's keys), signed in at the
 * Entra emulator with the client secret, all from the service's own settings: a JSON reader and a protobuf reader of
 * the same series give the same events, each datapoint once, through Omnia's 429s and 5xx.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog, routeBucket, serviceStatusBucket } from "@meridian/bus";
import { DataFormat, OmniaReaderService, ReaderSpecSchema } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { DEFAULTS, type RunningEntraEmulator, startEntraEmulator } from "@meridian/emulator-entra";
import { type RunningOmniaEmulator, startOmniaEmulator } from "@meridian/emulator-omnia";
import {
  expectExactlyOnce,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  testLogger,
  testTransport,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { omniaReaderConfig } from "../src/config.js";
import { OmniaClient } from "../src/platform/index.js";
import { type OmniaReader, startOmniaReader } from "../src/service.js";
import { collect } from "./harness.js";

let entra: RunningEntraEmulator;
let omnia: RunningOmniaEmulator;
let nats: NatsServerHandle;
let bus: Bus;
let dir: string;
let svc: OmniaReader;
const START = new Date("2025-12-31T12:00:00Z");

beforeAll(async () => {
  entra = await startEntraEmulator({ deviceCodeIntervalSeconds: 1 });
  omnia = await startOmniaEmulator({ auth: { authority: entra.issuer(), caPem: entra.caPem } });
  nats = await startNatsServer();
  bus = Bus.connect({ servers: nats.url, name: "test-reader", logger: testLogger() });
  await bus.ready;
  dir = mkdtempSync(join(tmpdir(), "omnia-reader-"));
  writeFileSync(join(dir, "omnia-ca.pem"), omnia.caPem ?? "");
  writeFileSync(join(dir, "entra-ca.pem"), entra.caPem ?? "");
  svc = await startForTest(
    startOmniaReader,
    omniaReaderConfig,
    {
      NATS_URL: nats.url,
      OMNIA_URL: omnia.baseUrl,
      OMNIA_CA_FILE: join(dir, "omnia-ca.pem"),
      OMNIA_AUTH_MODE: "client-secret",
      AZURE_TENANT_ID: entra.tenantId,
      AZURE_CLIENT_ID: DEFAULTS.confidentialClient.clientId,
      AZURE_CLIENT_SECRET: DEFAULTS.confidentialClient.secret,
      AZURE_AUTHORITY_HOST: entra.url,
      AZURE_AUTHORITY_CA_FILE: join(dir, "entra-ca.pem"),
    },
    {
      readBackoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 },
      readAttempts: 20,
      redeliveryBackoff: { initialMs: 100, maxMs: 500, multiplier: 2, jitter: 0 },
    },
  );
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  await bus?.close();
  await nats?.stop();
  await omnia?.stop();
  await entra?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What an event says about its datapoint, without the reader it came through. */
const fact = (e: TelemetryEvent) =>
  JSON.stringify([
    e.id,
    e.source?.device,
    e.observedTime?.seconds.toString(),
    e.observedTime?.nanos,
    e.points[0]?.value.value,
    e.points[0]?.quality,
    e.points[0]?.name,
    e.points[0]?.unit,
    e.attributes["omnia.status"],
  ]);

it("JSON and protobuf readers of the emulator's series give the same events, each datapoint once, through 429s and 5xx", async () => {
  // What Omnia holds in the window, read straight with the client.
  const direct = new OmniaClient({
    environment: "test",
    baseUrl: omnia.baseUrl,
    caPem: omnia.caPem!,
    authorityHost: entra.url,
    ...(entra.caPem ? { authorityCaPem: entra.caPem } : {}),
    tenantId: entra.tenantId,
    auth: { mode: "clientSecret", clientId: DEFAULTS.confidentialClient.clientId, clientSecret: DEFAULTS.confidentialClient.secret },
  });
  const series = (await direct.searchTimeseries({ name: "JSV.20*", facility: "JSV" })).items;
  expect(series.length).toBe(2);
  let expected = 0;
  for (const s of series)
    expected += (await direct.collectDatapoints(s.id, { startTime: START, endTime: new Date(Date.now() - 60_000) })).length;
  await direct.close();
  expect(expected).toBeGreaterThan(1000);

  const since = new Date();
  const viaJson = collect(bus, "jsv-json", since);
  const viaPb = collect(bus, "jsv-pb", since);
  // A storm: every kind of refusal Omnia's gateway gives, on the reads of both readers.
  omnia.addFaultScript({
    path: "/",
    method: "GET",
    steps: [
      { status: 429, retryAfterSeconds: 1 },
      { status: 429 },
      { status: 503 },
      { status: 503 },
      { status: 503 },
      { status: 502, emptyBody: true },
      { pass: true },
      { status: 429 },
      { status: 504 },
    ],
  });
  const api = createClient(OmniaReaderService, testTransport(svc.service.url));
  const spec = (id: string, format: DataFormat) =>
    create(ReaderSpecSchema, {
      id,
      series: [{ selector: { case: "query", value: { name: "JSV.20*", facility: "JSV" } } }],
      format,
      pageSize: 250,
      intervalSeconds: 1,
      lagSeconds: 60,
      startTime: timestampFromDate(START),
    });
  await api.createReader({ reader: spec("jsv-json", DataFormat.JSON) });
  await api.createReader({ reader: spec("jsv-pb", DataFormat.PROTOBUF) });
  const [fromJson, fromPb] = await Promise.all([viaJson.exactly(expected, 30_000), viaPb.exactly(expected, 30_000)]);
  expectExactlyOnce(fromJson, expected);
  expectExactlyOnce(fromPb, expected);
  expect(fromPb.map(fact).sort()).toEqual(fromJson.map(fact).sort());
  expect(new Set(fromJson.map((e) => e.points[0]?.name))).toEqual(new Set(series.map((s) => s.name)));
  // The refusals were answered to the readers (the emulator counts them by status).
  const byStatus = omnia.state().counters.byStatus;
  expect(byStatus["429"]).toBeGreaterThanOrEqual(3);
  expect(byStatus["503"]).toBeGreaterThanOrEqual(3);
  const reader = (await api.getReader({ id: "jsv-pb" })).reader;
  expect(reader?.cursors).toHaveLength(2);
  expect(reader?.state).toBe("running");
}, 60_000);

it("a route into Omnia writes N events into the emulator exactly once across an outage of its write endpoint", async () => {
  await routeBucket(bus).put(
    "into-omnia",
    create(RouteSchema, {
      id: "into-omnia",
      source: { platform: Platform.API, connection: "line-9" },
      sink: { platform: Platform.OMNIA, target: "SNA" },
    }),
  );
  await until(async () => (await consumerBacklog(bus, "omnia-into-omnia")) !== undefined, {
    timeoutMs: 10_000,
    what: "the route's consumer",
  });
  const before = omnia.state().counters.pointsWritten;
  const refusedBefore = omnia.state().counters.byStatus["503"] ?? 0;
  // Omnia's write endpoint is down for longer than the client's own retries (3 tries): the bus redelivers.
  omnia.addFaultScript({
    path: "/data",
    method: "POST",
    steps: [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 }, { status: 429 }],
  });
  const N = 120;
  const t0 = Date.UTC(2026, 5, 1);
  for (let b = 0; b < 3; b++)
    await bus.publishEvents(
      Array.from({ length: N / 3 }, (_, j) => {
        const i = b * (N / 3) + j;
        return create(TelemetryEventSchema, {
          id: `w-${i}`,
          source: { platform: Platform.API, connection: "line-9", device: "compressor-1" },
          observedTime: timestampFromMs(t0 + i * 1000),
          points: [{ name: "temperature", unit: "degC", value: { case: "doubleValue", value: 20 + i } }],
        });
      }),
    );
  await until(
    async () => (await consumerBacklog(bus, "omnia-into-omnia"))?.ackPending === 0 && omnia.state().counters.pointsWritten - before >= N,
    {
      timeoutMs: 30_000,
      what: `${N} points in Omnia and every message acknowledged`,
    },
  );
  await new Promise((r) => setTimeout(r, 500));
  expect(omnia.state().counters.pointsWritten - before).toBe(N);
  expect((omnia.state().counters.byStatus["503"] ?? 0) - refusedBefore).toBe(4);
  const created = omnia.state().series.find((s: { name: string }) => s.name === "compressor-1.temperature") as
    | { id: string; facility: string }
    | undefined;
  expect(created?.facility).toBe("SNA");
  expect(svc.sinks.list().find((s) => s.route.id === "into-omnia")?.counters.delivered).toBe(N);
}, 60_000);

it("device code: the pending sign-in is shown by GetAuthPrompt and, without the code, in the status counters, until a person signs in", async () => {
  const signingIn = await startForTest(
    startOmniaReader,
    omniaReaderConfig,
    {
      NATS_URL: nats.url,
      INSTANCE_ID: "device-code",
      OMNIA_URL: omnia.baseUrl,
      OMNIA_CA_FILE: join(dir, "omnia-ca.pem"),
      OMNIA_AUTH_MODE: "device-code",
      AZURE_TENANT_ID: entra.tenantId,
      AZURE_AUTHORITY_HOST: entra.url,
      AZURE_AUTHORITY_CA_FILE: join(dir, "entra-ca.pem"),
    },
    { statusIntervalMs: 200 },
  );
  try {
    const api = createClient(OmniaReaderService, testTransport(signingIn.service.url));
    expect(await api.getAuthPrompt({})).toMatchObject({ userCode: "" });
    const read = api.getTimeseries({ id: omnia.seededIds()[0]! });
    await until(async () => (await api.getAuthPrompt({})).userCode !== "", { timeoutMs: 10_000, what: "the device code prompt" });
    const prompt = await api.getAuthPrompt({});
    expect(prompt.verificationUri).toMatch(/^https:\/\//);
    expect(prompt.message).toContain(prompt.userCode);
    // Status readers learn that a sign-in waits, not the code (whoever enters it signs the service in as themselves).
    await until(
      async () =>
        (await serviceStatusBucket(bus).get("omnia-reader.device-code"))?.pipelines.some((p) => p.name === "omnia-sign-in") === true,
      { timeoutMs: 5000, what: "the sign-in in the status report" },
    );
    const status = await serviceStatusBucket(bus).get("omnia-reader.device-code");
    expect(JSON.stringify(status?.pipelines.map((p) => p.lastError))).not.toContain(prompt.userCode);
    entra.approveDeviceCode(prompt.userCode);
    expect((await read).timeseries?.id).toBe(omnia.seededIds()[0]);
    await until(async () => (await api.getAuthPrompt({})).userCode === "", {
      timeoutMs: 5000,
      what: "the prompt cleared after the sign-in",
    });
  } finally {
    await signingIn.stop();
  }
}, 60_000);

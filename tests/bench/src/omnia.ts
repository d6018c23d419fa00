/**
 * npm run bench:omnia — Omnia in and out of the bus, against the Omnia and Entra ID emulators (HTTPS, tokens verified):
 *   1. read: a JSON reader and a protobuf reader each move BENCH_OMNIA_POINTS datapoints (BENCH_OMNIA_SERIES series)
 *      from Omnia onto the bus; datapoints/s from the reader's creation until the last one is on the bus;
 *   2. write: a route puts BENCH_OMNIA_POINTS events from the bus into Omnia; events/s until the last one is in Omnia;
 *   3. bytes per datapoint of a page in each encoding, as Omnia sends it;
 * each with its ratio to the raw bus figure of the same run. Everything runs in this process (emulators included), so
 * the figures are for the pipeline's own cost on a shared machine, not for a network. The defaults (2 000 000 datapoints over
 * 20 series) make each phase a sustained run of 20-90 s here.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClientSecretCredential } from "@azure/identity";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog, routeBucket } from "@meridian/bus";
import { DataFormat, OmniaReaderService, ReaderSpecSchema } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { DEFAULTS, OMNIA_RESOURCE_NONPROD, startEntraEmulator } from "@meridian/emulator-entra";
import { startOmniaEmulator } from "@meridian/emulator-omnia";
import { omniaReaderConfig, startOmniaReader } from "@meridian/omnia-reader";
import { OmniaClient } from "@meridian/omnia-reader/platform";
import { startForTest, startNatsServer, testTransport, until } from "@meridian/testing";
import { pino } from "pino";
import { machine, rate } from "./common.js";
import { measureRawBus } from "./raw-bus.js";

const POINTS = Number(process.env.BENCH_OMNIA_POINTS ?? 2_000_000);
const SERIES = Number(process.env.BENCH_OMNIA_SERIES ?? 20);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 30_000);
const logger = pino({ level: "warn" });
const START = Date.UTC(2026, 0, 1);

async function main() {
  const entra = await startEntraEmulator({});
  const omnia = await startOmniaEmulator({ auth: { authority: entra.issuer(), caPem: entra.caPem }, maxPointsPerSeries: POINTS * 2 });
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  const dir = mkdtempSync(join(tmpdir(), "bench-omnia-"));
  writeFileSync(join(dir, "omnia-ca.pem"), omnia.caPem ?? "");
  writeFileSync(join(dir, "entra-ca.pem"), entra.caPem ?? "");
  const signIn = {
    tenantId: entra.tenantId,
    auth: {
      mode: "clientSecret" as const,
      clientId: DEFAULTS.confidentialClient.clientId,
      clientSecret: DEFAULTS.confidentialClient.secret,
    },
  };
  const client = new OmniaClient({
    environment: "test",
    baseUrl: omnia.baseUrl,
    caPem: omnia.caPem!,
    authorityHost: entra.url,
    ...(entra.caPem ? { authorityCaPem: entra.caPem } : {}),
    ...signIn,
  });
  const svc = await startForTest(startOmniaReader, omniaReaderConfig, {
    NATS_URL: nats.url,
    OMNIA_URL: omnia.baseUrl,
    OMNIA_CA_FILE: join(dir, "omnia-ca.pem"),
    OMNIA_AUTH_MODE: "client-secret",
    AZURE_TENANT_ID: entra.tenantId,
    AZURE_CLIENT_ID: DEFAULTS.confidentialClient.clientId,
    AZURE_CLIENT_SECRET: DEFAULTS.confidentialClient.secret,
    AZURE_AUTHORITY_HOST: entra.url,
    AZURE_AUTHORITY_CA_FILE: join(dir, "entra-ca.pem"),
    LOG_LEVEL: "warn",
  });
  try {
    await bus.ready;
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);

    // The series to read: SERIES of them, POINTS datapoints in all, one a second from START.
    const perSeries = Math.ceil(POINTS / SERIES);
    for (let s = 0; s < SERIES; s++) {
      const series = await client.createTimeseries({ name: `BENCH.R${s}.PV`, facility: "JSV", unit: "bar", description: "bench" });
      for (let from = 0; from < perSeries; from += 50_000) {
        const n = Math.min(50_000, perSeries - from);
        await client.writeDatapoints(
          series.id,
          Array.from({ length: n }, (_, i) => ({ time: new Date(START + (from + i) * 1000), value: (from + i) % 1000, status: 192 })),
        );
      }
    }
    const total = perSeries * SERIES;

    const api = createClient(OmniaReaderService, testTransport(svc.service.url));
    const read = async (format: DataFormat, id: string) => {
      let seen = 0;
      const ac = new AbortController();
      const counting = (async () => {
        for await (const _ of bus.subscribe({ platform: Platform.OMNIA, connection: id }, { signal: ac.signal })) seen++;
      })().catch(() => {});
      const t0 = performance.now();
      await api.createReader({
        reader: create(ReaderSpecSchema, {
          id,
          series: [{ selector: { case: "query", value: { name: "BENCH.R*", facility: "JSV" } } }],
          format,
          pageSize: 10_000,
          intervalSeconds: 1,
          lagSeconds: 0,
          startTime: timestampFromDate(new Date(START)),
        }),
      });
      await until(() => seen >= total, {
        timeoutMs: 600_000,
        intervalMs: 100,
        what: `${total} datapoints of ${id} on the bus (have ${seen})`,
      });
      const ms = performance.now() - t0;
      ac.abort();
      await counting;
      await api.deleteReader({ id });
      return {
        datapoints: total,
        seconds: Number((ms / 1000).toFixed(2)),
        datapointsPerSec: rate(total, ms),
        ratioToRawPublish: Number((rate(total, ms) / raw.publishPerSec).toFixed(3)),
      };
    };
    const json = await read(DataFormat.JSON, "bench-json");
    const protobuf = await read(DataFormat.PROTOBUF, "bench-pb");

    // Write: a route into Omnia at facility SNA, POINTS events published on the bus in batches.
    await routeBucket(bus).put(
      "bench-into-omnia",
      create(RouteSchema, {
        id: "bench-into-omnia",
        source: { platform: Platform.API, connection: "bench-w" },
        sink: { platform: Platform.OMNIA, target: "SNA" },
      }),
    );
    await until(async () => (await consumerBacklog(bus, "omnia-bench-into-omnia")) !== undefined, {
      timeoutMs: 30_000,
      what: "the route's consumer",
    });
    const before = omnia.state().counters.pointsWritten;
    const t0 = performance.now();
    for (let from = 0; from < POINTS; from += 500) {
      await bus.publishEvents(
        Array.from({ length: Math.min(500, POINTS - from) }, (_, j) => {
          const i = from + j;
          return create(TelemetryEventSchema, {
            id: `bench-w-${i}`,
            source: { platform: Platform.API, connection: "bench-w", device: `dev-${i % SERIES}` },
            observedTime: timestampFromMs(START + i * 1000),
            points: [{ name: "pressure", unit: "bar", value: { case: "doubleValue", value: i % 1000 } }],
          });
        }),
      );
    }
    await until(() => omnia.state().counters.pointsWritten - before >= POINTS, {
      timeoutMs: 600_000,
      intervalMs: 100,
      what: `${POINTS} points written into Omnia`,
    });
    const writeMs = performance.now() - t0;

    // Bytes per datapoint of one page of 10 000, in each encoding, as Omnia answers it.
    const one = (await client.searchTimeseries({ name: "BENCH.R0.PV", facility: "JSV" })).items[0]!;
    const credential = new ClientSecretCredential(
      entra.tenantId,
      DEFAULTS.confidentialClient.clientId,
      DEFAULTS.confidentialClient.secret,
      {
        authorityHost: entra.url,
        disableInstanceDiscovery: true,
        ...(entra.caPem ? { tlsOptions: { ca: entra.caPem } } : {}),
      },
    );
    const token = (await credential.getToken(`${OMNIA_RESOURCE_NONPROD}/.default`))!.token;
    const pageBytes = (accept: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${omnia.baseUrl}/${one.id}/data?startTime=${new Date(START).toISOString()}&limit=10000`);
        const req = request(url, { ca: omnia.caPem, headers: { accept, authorization: `Bearer ${token}` } }, (res) => {
          let n = 0;
          res.on("data", (c: Buffer) => (n += c.length));
          res.on("end", () => resolve(n));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end();
      });
    const pagePoints = Math.min(10_000, perSeries);
    const bytesPerDatapoint = {
      json: Number(((await pageBytes("application/json")) / pagePoints).toFixed(1)),
      protobuf: Number(((await pageBytes("application/protobuf")) / pagePoints).toFixed(1)),
    };

    console.log(
      JSON.stringify(
        {
          bench: "omnia",
          machine: machine(),
          series: SERIES,
          rawBus: raw,
          read: { json, protobuf, protobufToJson: Number((protobuf.datapointsPerSec / json.datapointsPerSec).toFixed(2)) },
          write: {
            events: POINTS,
            seconds: Number((writeMs / 1000).toFixed(2)),
            eventsPerSec: rate(POINTS, writeMs),
            ratioToRawPublish: Number((rate(POINTS, writeMs) / raw.publishPerSec).toFixed(3)),
          },
          bytesPerDatapoint,
          rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
        },
        null,
        2,
      ),
    );
  } finally {
    await svc.stop();
    await client.close();
    await bus.close();
    await nats.stop();
    await omnia.stop();
    await entra.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

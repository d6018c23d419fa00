/**
 * npm run bench:oci — oci-twin-manager measured against the OCI IoT emulator (HTTPS control plane with signed requests,
 * ORDS data API with its identity-domain token, device host), on a throwaway nats-server. The manager and the gateway
 * run as deployed, each its own process from dist/main.js (the manager's CPU and RSS are its own, read from /proc); the
 * emulator, the bus client and the feeders run in this process. Prints one JSON object:
 *  1. source: historized rows/s from ORDS onto the bus. BENCH_OCI_TWINS custom-adapter M5 twins (4 Historized contents:
 *     4 rows per device message) with their historized source on; a feeder ingests device messages into the emulator
 *     as the devices would (the emulator's own ingest, in process), keeping BENCH_OCI_SOURCE_BACKLOG rows ahead of what
 *     the bus has seen, so that the manager always finds rows and the emulator's tables (BENCH_OCI_MAX_ROWS each; ORDS
 *     scans a table per page) stay bounded. Rows are counted as the events (one per observation, a point per row)
 *     arrive on the bus; after the feeder stops, every row must arrive, once;
 *  2. sink: telemetry events/s from the bus into the OCI device host: a route (sink PLATFORM_OCI_IOT, twin = the
 *     event's device) into BENCH_OCI_TWINS other twins, one event per bus message, the publisher keeping
 *     BENCH_OCI_SINK_BACKLOG events ahead; counted as the emulator accepts each post (its `ingest 202` counter);
 *  3. control plane: BENCH_OCI_CALLS sequential GetTwin (OCI's instance, adapter and model behind each) and
 *     ListDigitalTwinInstances calls through the gateway, p50 / p99.
 * 1 and 2 are sustained for BENCH_OCI_SECONDS (30) after BENCH_OCI_WARMUP_SECONDS (5), each bounded in count
 * (BENCH_OCI_MAX_ROWS_FED, BENCH_OCI_MAX_EVENTS), with their ratio to the raw bus figure of the same run, CPU µs per
 * row / event of the manager's process and of this one, and the manager's RSS.
 *
 * To profile: BENCH_OCI_PHASES=source (a comma list of source, sink, control) runs only those phases;
 * BENCH_OCI_CPU_PROF=<dir> runs the manager under `node --cpu-prof` (its profile is written into <dir> as it exits) and
 * prints each sustained window on the monotonic clock of the profile's timestamps.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog, routeConsumerName } from "@meridian/bus";
import { OciTwinManagerService } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { DEVICE_ACCEPTED_STATUS, type OciEmulator, startOciEmulator } from "@meridian/emulator-oci";
import { freePort, startNatsServer, testTransport, until } from "@meridian/testing";
import { pino } from "pino";
import { machine, percentile, rate } from "./common.js";
import { type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";

const SECONDS = Number(process.env.BENCH_OCI_SECONDS ?? 30);
const WARMUP_SECONDS = Number(process.env.BENCH_OCI_WARMUP_SECONDS ?? 5);
const TWINS = Number(process.env.BENCH_OCI_TWINS ?? 4);
/**
 * The emulator's tables: ORDS scans one per page, and a full one drops its oldest row with each new one (a shift of the
 * whole array), so both cost the emulator in proportion to the cap. The backlog must stay well under it, so that only
 * rows the manager has read are dropped. 40 000 / 8 000 made the emulator 60% of its time shifting, and the phase ~9 000
 * rows/s; 10 000 / 4 000 ~15 000 rows/s, with the manager no busier per row.
 */
const SOURCE_BACKLOG = Number(process.env.BENCH_OCI_SOURCE_BACKLOG ?? 4000);
const MAX_ROWS = Number(process.env.BENCH_OCI_MAX_ROWS ?? 10_000);
const MAX_ROWS_FED = Number(process.env.BENCH_OCI_MAX_ROWS_FED ?? 4_000_000);
const SINK_BACKLOG = Number(process.env.BENCH_OCI_SINK_BACKLOG ?? 5000);
const MAX_EVENTS = Number(process.env.BENCH_OCI_MAX_EVENTS ?? 1_000_000);
const CALLS = Number(process.env.BENCH_OCI_CALLS ?? 300);
const POLL_MS = Number(process.env.BENCH_OCI_POLL_MS ?? 200);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 30_000);
const PHASE_NAMES = ["source", "sink", "control"] as const;
type Phase = (typeof PHASE_NAMES)[number];
const PHASES = phasesFrom(process.env.BENCH_OCI_PHASES);
const CPU_PROF_DIR = process.env.BENCH_OCI_CPU_PROF || undefined;
const logger = pino({ level: "warn" });

const AUTH_ID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.benchdevicesecret";
const DEVICE_SECRET = "bench-device-secret";
const SPEC_URI = "dtmi:com:meridian:bench:m5:env;1";
/** Rows each device message makes: one per Historized content of the model. */
const ROWS_PER_MESSAGE = 4;
const HISTORIZED = ["sht_temperature", "qmp_temperature", "humidity", "pressure"] as const;
const START_US = Date.UTC(2026, 0, 1) * 1000;

function phasesFrom(raw: string | undefined): Set<Phase> {
  if (raw === undefined || raw.trim() === "") return new Set(PHASE_NAMES);
  const phases = new Set<Phase>();
  for (const name of raw.split(",").map((p) => p.trim())) {
    if (!(PHASE_NAMES as readonly string[]).includes(name))
      throw new Error(`BENCH_OCI_PHASES: unknown phase "${name}" (phases: ${PHASE_NAMES.join(", ")})`);
    phases.add(name as Phase);
  }
  return phases;
}

/** manage-dt's custom-adapter M5 twin (model with Historized contents and `system`, envelope, two routes). */
function m5Twin(key: string, source: boolean) {
  const measure = (name: string, semantic: string, unit: string): JsonObject => ({
    "@type": ["Telemetry", "Historized", semantic],
    name,
    schema: "double",
    unit,
  });
  return {
    key,
    displayName: key,
    externalKey: key,
    authId: AUTH_ID,
    deviceSecret: DEVICE_SECRET,
    model: {
      specUri: SPEC_URI,
      spec: {
        "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1", "dtmi:dtdl:extension:quantitativeTypes;1"],
        "@id": SPEC_URI,
        "@type": "Interface",
        contents: [
          measure("sht_temperature", "Temperature", "degreeCelsius"),
          measure("qmp_temperature", "Temperature", "degreeCelsius"),
          measure("humidity", "RelativeHumidity", "percent"),
          measure("pressure", "Pressure", "hectopascal"),
          { "@type": "Telemetry", name: "count", schema: "integer" },
          { "@type": ["Telemetry", "Historized"], name: "system", schema: { "@type": "Object", fields: [] } },
        ],
      },
    },
    adapter: {
      inboundEnvelope: {
        referenceEndpoint: "iot/v1/telemetry",
        referencePayload: {
          dataFormat: "JSON",
          data: { count: 0, humidity: 0, pressure: 0, qmp_temperature: 0, sht_temperature: 0, time: 0 },
        },
        envelopeMapping: { timeObserved: "$.time" },
      },
      inboundRoutes: [
        {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq condition
          condition: '${endpoint(3) == "telemetry"}',
          payloadMapping: Object.fromEntries(["count", ...HISTORIZED].map((c) => [`$.${c}`, `$.${c}`])),
        },
        // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq expression (the whole payload)
        { condition: "*", payloadMapping: { "$.system": "${.}" } },
      ],
    },
    ...(source ? { source: { historized: true, pollIntervalMs: POLL_MS, startTime: timestampFromMs(START_US / 1000 - 60_000) } } : {}),
  };
}

/** Device message n of a twin: the M5 payload observed at START + n ms. */
function m5Message(n: number): Record<string, number> {
  return {
    sht_temperature: 20 + (n % 100) / 10,
    qmp_temperature: 21 + (n % 100) / 10,
    humidity: 40 + (n % 50),
    pressure: 1000 + (n % 30),
    count: n,
    time: START_US + n * 1000,
  };
}

function sinkEvent(n: number, twin: string): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `bench-sink:${twin}:${n}`,
    source: { platform: Platform.API, connection: "bench-sink", device: twin },
    observedTime: timestampFromMs(START_US / 1000 + n),
    points: [
      ...HISTORIZED.map((name, i) => ({ name, value: { case: "doubleValue" as const, value: 20 + i + (n % 100) / 10 } })),
      { name: "count", value: { case: "intValue" as const, value: BigInt(n) } },
    ],
  });
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(2));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Now on CLOCK_MONOTONIC in µs: the clock of a V8 .cpuprofile's timestamps on Linux. */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

/** Counts taken at the start and end of a sustained window: the manager's CPU, this process's, a count, the time. */
interface Mark {
  at: number;
  mono: number;
  count: number;
  managerCpu: number;
  benchCpu: NodeJS.CpuUsage;
}

function mark(manager: RunningProcess, count: number): Mark {
  return { at: performance.now(), mono: monotonicMicros(), count, managerCpu: manager.cpuSeconds(), benchCpu: process.cpuUsage() };
}

function windowOf(a: Mark, b: Mark, raw: { publishPerSec: number; consumeAckPerSec: number }, unit: string) {
  const n = b.count - a.count;
  const ms = b.at - a.at;
  const perSec = rate(n, ms);
  const benchMicros = b.benchCpu.user + b.benchCpu.system - a.benchCpu.user - a.benchCpu.system;
  return {
    [unit]: n,
    seconds: seconds(ms),
    [`${unit}PerSec`]: perSec,
    ratioToRawPublish: Number((perSec / raw.publishPerSec).toFixed(3)),
    ratioToRawConsumeAck: Number((perSec / raw.consumeAckPerSec).toFixed(3)),
    cpuMicrosPer: {
      [unit.replace(/s$/, "")]: {
        managerProcess: Math.round(((b.managerCpu - a.managerCpu) * 1e6) / Math.max(1, n)),
        benchProcess: Math.round(benchMicros / Math.max(1, n)),
      },
    },
    ...(CPU_PROF_DIR ? { profileWindowMonotonicMicros: { from: a.mono, to: b.mono } } : {}),
  };
}

/** The manager's memory as its /metrics has it (prom-client's default metrics), in MiB: what its RSS is made of. */
async function managerMemory(url: string, manager: RunningProcess) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const metric = (name: string) => {
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "gm"))) sum += Number(m[1]);
    return Math.round(sum / 2 ** 20);
  };
  return {
    rss: manager.rssMiB(),
    heapUsed: metric("nodejs_heap_size_used_bytes"),
    heapTotal: metric("nodejs_heap_size_total_bytes"),
    external: metric("nodejs_external_memory_bytes"),
  };
}

function acceptedPosts(emu: OciEmulator): number {
  return (emu.state().requests as Record<string, number>)[`ingest ${DEVICE_ACCEPTED_STATUS}`] ?? 0;
}

async function main() {
  const nats = await startNatsServer();
  const emu = await startOciEmulator({ maxRows: MAX_ROWS, vaultSecrets: { [AUTH_ID]: DEVICE_SECRET } });
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  const dir = mkdtempSync(join(tmpdir(), "bench-oci-"));
  const keyFile = join(dir, "key.pem");
  writeFileSync(keyFile, emu.apiKey.privateKeyPem, { mode: 0o600 });
  const configFile = join(dir, "config");
  writeFileSync(
    configFile,
    `[DEFAULT]\nuser=${emu.apiKey.user}\nfingerprint=${emu.apiKey.fingerprint}\ntenancy=${emu.apiKey.tenancy}\nregion=eu-frankfurt-1\nkey_file=${keyFile}\n`,
  );
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, emu.caPem ?? "");
  const managerPort = await freePort();
  const managerUrl = `http://127.0.0.1:${managerPort}`;
  const managerEnv: Record<string, string> = {
    PORT: String(managerPort),
    NATS_URL: nats.url,
    OCI_CREDENTIALS_KEY: Buffer.alloc(32, 9).toString("base64"),
    OCI_AUTH: "api_key",
    OCI_CONFIG_FILE: configFile,
    OCI_IOT_ENDPOINT: emu.controlUrl,
    OCI_DATA_URL: emu.dataUrl,
    OCI_IDENTITY_URL: emu.identityUrl,
    OCI_DEVICE_URL: emu.deviceUrl,
    OCI_CA_FILE: caFile,
    OCI_IOT_DOMAIN_ID: emu.domain.id,
    OCI_DATA_CLIENT_ID: emu.dataAccess.clientId,
    OCI_DATA_CLIENT_SECRET: emu.dataAccess.clientSecret,
    OCI_DATA_USERNAME: emu.dataAccess.username,
    OCI_DATA_PASSWORD: emu.dataAccess.password,
    OCI_SOURCE_POLL_MS: String(POLL_MS),
    ...(CPU_PROF_DIR ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${CPU_PROF_DIR}`.trim() } : {}),
  };
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  let manager: RunningProcess | undefined;
  let gateway: RunningProcess | undefined;
  const stopFeeding = new AbortController();
  try {
    await bus.ready;
    manager = await startProcess("oci-twin-manager", "services/oci-twin-manager", managerEnv, `${managerUrl}/readyz`);
    gateway = await startProcess(
      "gateway",
      "services/gateway",
      {
        PORT: String(gatewayPort),
        NATS_URL: nats.url,
        OCI_TWIN_MANAGER_URL: managerUrl,
        CALLER_RATE_LIMIT: "1000000",
        CALLER_RATE_BURST: "1000000",
      },
      `${gatewayUrl}/readyz`,
    );
    const transport = testTransport(gatewayUrl);
    const api = createClient(OciTwinManagerService, transport);
    const routes = createClient(RouteService, transport);
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);
    const results: Record<string, unknown> = { rawBus: raw, managerMemoryAtStartMiB: await managerMemory(managerUrl, manager) };

    // 1. Source: ORDS → bus.
    if (PHASES.has("source")) {
      const keys = Array.from({ length: TWINS }, (_, i) => `bench-src-${i}`);
      let events = 0;
      let rows = 0;
      let firstAt = 0;
      let lastAt = 0;
      const ids = new Set<string>();
      const watching = new AbortController();
      const counting = (async () => {
        for await (const e of bus.subscribe({ platform: Platform.OCI_IOT }, { signal: watching.signal })) {
          lastAt = performance.now();
          if (events === 0) firstAt = lastAt;
          events++;
          rows += e.points.length;
          ids.add(e.id);
        }
      })().catch(() => {});
      await sleep(200);
      for (const key of keys) await api.createTwin({ twin: m5Twin(key, true) });
      // The feeder: device messages into the emulator as the twins' devices, round robin, BACKLOG rows ahead of the bus.
      const next = new Map(keys.map((k) => [k, 0]));
      let fed = 0;
      const feeding = (async () => {
        let k = 0;
        while (!stopFeeding.signal.aborted && fed < MAX_ROWS_FED) {
          if (fed - rows >= SOURCE_BACKLOG) {
            await sleep(2);
            continue;
          }
          for (let i = 0; i < 50; i++) {
            const key = keys[k++ % keys.length]!;
            const n = next.get(key)!;
            next.set(key, n + 1);
            const r = emu.ingest(key, m5Message(n));
            if (r.outcome !== "normalized") throw new Error(`bench message ${n} of ${key} was ${r.outcome}: ${r.reasonMessage}`);
            fed += r.historizedIds.length;
          }
          await new Promise((r) => setImmediate(r));
        }
      })();
      const fedStart = performance.now();
      await sleep(WARMUP_SECONDS * 1000);
      const a = mark(manager, rows);
      await sleep(SECONDS * 1000);
      const b = mark(manager, rows);
      stopFeeding.abort();
      await feeding;
      const fedMs = performance.now() - fedStart;
      await until(async () => rows >= fed, {
        timeoutMs: 120_000,
        intervalMs: 50,
        what: `every fed row on the bus (have ${rows} of ${fed})`,
      }).catch(() => {});
      await sleep(1000);
      watching.abort();
      await counting;
      results.source = {
        twins: TWINS,
        rowsPerDeviceMessage: ROWS_PER_MESSAGE,
        sustained: windowOf(a, b, raw, "rows"),
        eventsInWindowApprox: Math.round((b.count - a.count) / ROWS_PER_MESSAGE),
        firstToLastEventOnBus: {
          rows,
          events,
          seconds: seconds(lastAt - firstAt),
          rowsPerSec: rate(rows, lastAt - firstAt),
        },
        rowsFed: fed,
        rowsFedPerSec: rate(fed, fedMs),
        rowsMissing: Math.max(0, fed - rows),
        eventsSeenMoreThanOnce: events - ids.size,
        managerMemoryMiB: await managerMemory(managerUrl, manager),
        emulatorRowsPerTableCap: MAX_ROWS,
      };
      // Turned off, so that the sink phase has the manager to itself.
      for (const key of keys) await api.setTwinSource({ twin: { ref: { case: "key", value: key } } });
    }

    // 2. Sink: bus → device host.
    if (PHASES.has("sink")) {
      const keys = Array.from({ length: TWINS }, (_, i) => `bench-sink-${i}`);
      for (const key of keys) await api.createTwin({ twin: m5Twin(key, false) });
      const routeId = "bench-into-oci";
      await routes.createRoute({
        route: {
          id: routeId,
          source: { platform: Platform.API, connection: "bench-sink" },
          sink: { platform: Platform.OCI_IOT, target: "default" },
          startTime: timestampFromDate(new Date(Date.now() - 1000)),
        },
      });
      const before = acceptedPosts(emu);
      let arrived = 0;
      const sampling = setInterval(() => {
        arrived = acceptedPosts(emu) - before;
      }, 20);
      let published = 0;
      const feed = new AbortController();
      const publishing = (async () => {
        let n = 0;
        while (!feed.signal.aborted && published < MAX_EVENTS) {
          if (published - arrived >= SINK_BACKLOG) {
            await sleep(2);
            continue;
          }
          const batch: TelemetryEvent[] = [];
          for (let i = 0; i < 100; i++) batch.push(sinkEvent(n, keys[n++ % keys.length]!));
          // One event per bus message, as the raw figure's messages are.
          await Promise.all(batch.map((e) => bus.publishEvents([e])));
          published += batch.length;
        }
      })();
      await sleep(WARMUP_SECONDS * 1000);
      const a = mark(manager, arrived);
      await sleep(SECONDS * 1000);
      const b = mark(manager, arrived);
      feed.abort();
      await publishing;
      await until(async () => arrived >= published, {
        timeoutMs: 120_000,
        intervalMs: 50,
        what: `every published event posted (have ${arrived} of ${published})`,
      }).catch(() => {});
      await until(async () => (await consumerBacklog(bus, routeConsumerName(routeId, Platform.OCI_IOT)))?.ackPending === 0, {
        timeoutMs: 30_000,
        what: "the route's messages all acknowledged",
      }).catch(() => {});
      await sleep(1000);
      clearInterval(sampling);
      arrived = acceptedPosts(emu) - before;
      const counts = emu.state().counts as { rejectedData: number };
      results.sink = {
        twins: TWINS,
        eventsPerBusMessage: 1,
        sustained: windowOf(a, b, raw, "events"),
        published,
        postedAndAccepted: arrived,
        postedMoreThanOnce: Math.max(0, arrived - published),
        missing: Math.max(0, published - arrived),
        rejectedRowsInEmulator: counts.rejectedData,
        managerMemoryMiB: await managerMemory(managerUrl, manager),
        settings: { OCI_SINK_MAX_IN_FLIGHT: Number(process.env.OCI_SINK_MAX_IN_FLIGHT ?? 64) },
      };
      await routes.deleteRoute({ id: routeId }).catch(() => {});
    }

    // 3. Control plane through the gateway.
    if (PHASES.has("control")) {
      const key = "bench-control";
      await api.createTwin({ twin: m5Twin(key, false) });
      const timed = async (call: () => Promise<unknown>) => {
        for (let i = 0; i < 10; i++) await call();
        const times: number[] = [];
        const cpu0 = manager!.cpuSeconds();
        for (let i = 0; i < CALLS; i++) {
          const t = performance.now();
          await call();
          times.push(performance.now() - t);
        }
        const cpu = manager!.cpuSeconds() - cpu0;
        times.sort((x, y) => x - y);
        return {
          calls: CALLS,
          p50Ms: Number(percentile(times, 50).toFixed(1)),
          p99Ms: Number(percentile(times, 99).toFixed(1)),
          maxMs: Number((times.at(-1) ?? 0).toFixed(1)),
          managerCpuMsPerCall: Number(((cpu * 1000) / CALLS).toFixed(2)),
        };
      };
      results.controlPlane = {
        via: "gateway (gRPC, test admin key) → oci-twin-manager → the emulator's control plane (HTTPS, signed), one call at a time",
        getTwin: await timed(() => api.getTwin({ twin: { ref: { case: "key", value: key } } })),
        listDigitalTwinInstances: await timed(() => api.listDigitalTwinInstances({ pageSize: 100 })),
        managerMemoryMiB: await managerMemory(managerUrl, manager),
      };
    }

    console.log(
      JSON.stringify(
        {
          bench: "oci",
          machine: machine(),
          setup: {
            natsServer: "nats-server single node, file storage, loopback",
            manager: "oci-twin-manager in its own process (dist/main.js), CPU and RSS from /proc",
            gateway: "gateway in its own process (dist/main.js)",
            emulator: "emulator-oci in the bench's process (with the feeders and the bus client), HTTPS on loopback",
            managerSettings: { OCI_SOURCE_POLL_MS: POLL_MS, OCI_SOURCE_PAGE_ROWS: Number(process.env.OCI_SOURCE_PAGE_ROWS ?? 500) },
            warmupSeconds: WARMUP_SECONDS,
            sustainedSeconds: SECONDS,
          },
          phases: [...PHASES],
          ...(CPU_PROF_DIR ? { cpuProfiles: CPU_PROF_DIR, managerPid: manager.proc.pid } : {}),
          ...results,
        },
        null,
        2,
      ),
    );
  } finally {
    stopFeeding.abort();
    await gateway?.stop();
    await manager?.stop();
    await bus.close();
    await emu.stop();
    await nats.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

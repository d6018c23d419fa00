/**
 * npm run bench:iotc — iotc-bridge measured against the IoT Central emulator (DPS and IoT Hub over MQTT/TLS), on a
 * throwaway nats-server. The bridge runs as deployed, its own process from dist/main.js (so its CPU and RSS are its
 * own, read from /proc); the emulator, nats-server's client and the publisher run in this process. Prints one JSON
 * object:
 *  1. throughput: BENCH_IOTC_EVENTS events of BENCH_IOTC_DEVICES devices (one event per bus message) drained from the
 *     bus by a route into the emulator, counted as the emulator receives them (it PUBACKs each as it records it),
 *     after a warm-up that registers and connects every device; its ratio to the raw bus figure of the same run, and
 *     CPU µs per event of the bridge's process and of this one;
 *  2. latency: bus publish → the emulator's receipt of that message id, at BENCH_IOTC_RATE events/s for
 *     BENCH_IOTC_SECONDS;
 *  3. connect rate: BENCH_IOTC_CONNECT_DEVICES devices through RegisterDevice, cold (DPS registration, then the hub)
 *     and warm (the registrations come from KV, no DPS), each in a freshly started bridge so that only the cache differs;
 *  4. RSS of the bridge's process before and after BENCH_IOTC_RSS_DEVICES devices are connected, after a restart,
 *     opened at BENCH_IOTC_RSS_CONNECT_RATE.
 * IOTC_CONNECT_RATE is raised to BENCH_IOTC_CONNECT_RATE (default 1000/s, the setting's bound) so that the connect
 * figures are the bridge's and the emulator's, not the limiter's. The defaults keep the run near 5-6 minutes on 2 cores (the throughput phase lasts 30-40 s after its warm-up).
 *
 * To profile: BENCH_IOTC_PHASES=throughput (a comma list of throughput, latency, connect, rss; latency runs on the
 * throughput phase's route and devices, so it needs it) runs only those phases; BENCH_IOTC_CPU_PROF=<dir> starts every
 * bridge process under `node --cpu-prof`, writing its profile into <dir> when it exits, and prints the sustained
 * throughput window on the monotonic clock the profile's timestamps use, so that a reader can keep only its samples.
 * BENCH_IOTC_BRIDGE_DIR runs the bridge from another package folder (relative to the repository), e.g. an earlier
 * revision's build, for a before/after comparison under the same conditions.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog, routeBucket, routeConsumerName } from "@meridian/bus";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type IotcEmulator, startIotcEmulator, type TelemetryMessage } from "@meridian/emulator-iotc";
import { freePort, startNatsServer, testTransport, until } from "@meridian/testing";
import { pino } from "pino";
import { machine, percentile, rate, sampleEvent } from "./common.js";
import { type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus } from "./raw-bus.js";

const DEVICES = Number(process.env.BENCH_IOTC_DEVICES ?? 100);
const EVENTS = Number(process.env.BENCH_IOTC_EVENTS ?? 320_000);
/** Warm-up events per device, drained before the sustained phase is timed: every device registered and connected. */
const WARMUP_PER_DEVICE = Number(process.env.BENCH_IOTC_WARMUP_PER_DEVICE ?? 10);
const RATE = Number(process.env.BENCH_IOTC_RATE ?? 500);
const SECONDS = Number(process.env.BENCH_IOTC_SECONDS ?? 30);
const CONNECT_DEVICES = Number(process.env.BENCH_IOTC_CONNECT_DEVICES ?? 200);
const RSS_DEVICES = Number(process.env.BENCH_IOTC_RSS_DEVICES ?? 1000);
const CONNECT_RATE = Number(process.env.BENCH_IOTC_CONNECT_RATE ?? 1000);
/**
 * IOTC_CONNECT_RATE of the RSS phase. Opened all at once (1000/s), 1000 devices overrun this 2-core machine: the opens
 * pile up and hub CONNECTs pass the client's 30 s timeout. The RSS figure needs them connected, not fast.
 */
const RSS_CONNECT_RATE = Number(process.env.BENCH_IOTC_RSS_CONNECT_RATE ?? 50);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 30_000);
/** Latency phase: publish every TICK_MS, RATE × TICK_MS / 1000 events per tick. */
const TICK_MS = 10;
const PHASE_NAMES = ["throughput", "latency", "connect", "rss"] as const;
type Phase = (typeof PHASE_NAMES)[number];
const PHASES = phasesFrom(process.env.BENCH_IOTC_PHASES);
/** A directory: each bridge process runs under --cpu-prof and writes its .cpuprofile there as it exits. */
const CPU_PROF_DIR = process.env.BENCH_IOTC_CPU_PROF || undefined;
/** The bridge's package folder (its dist/main.js runs), relative to the repository: another revision's build to compare. */
const BRIDGE_DIR = process.env.BENCH_IOTC_BRIDGE_DIR || "services/iotc-bridge";
const APPLICATION = "bench";
const CONNECTION = "bench";
const logger = pino({ level: "warn" });

/**
 * What the emulator received, as it received it. The emulator keeps a bounded log, not a count: the bench watches its
 * model's addTelemetry, which the hub surface calls as a telemetry PUBLISH arrives, right before its PUBACK.
 */
class Arrivals {
  count = 0;
  /** Message id → publish time (performance.now()) of the events whose latency is measured. */
  readonly published = new Map<string, number>();
  readonly latencies: number[] = [];
  private waiters: Array<{ n: number; done: (at: number) => void }> = [];

  constructor(emu: IotcEmulator) {
    const add = emu.model.addTelemetry.bind(emu.model);
    emu.model.addTelemetry = (m: TelemetryMessage) => {
      const at = performance.now();
      this.count++;
      const sent = m.messageId === undefined ? undefined : this.published.get(m.messageId);
      if (sent !== undefined) {
        this.latencies.push(at - sent);
        this.published.delete(m.messageId!);
      }
      if (this.waiters.length > 0) {
        this.waiters = this.waiters.filter((w) => {
          if (this.count < w.n) return true;
          w.done(at);
          return false;
        });
      }
      add(m);
    };
  }

  /** Resolves with the time the n-th message arrived; rejects after timeoutMs. */
  reach(n: number, timeoutMs: number): Promise<number> {
    if (this.count >= n) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${n} telemetry messages not received in ${timeoutMs} ms (have ${this.count})`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        done: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      });
    });
  }
}

function phasesFrom(raw: string | undefined): Set<Phase> {
  if (raw === undefined || raw.trim() === "") return new Set(PHASE_NAMES);
  const phases = new Set<Phase>();
  for (const name of raw.split(",").map((p) => p.trim())) {
    if (!(PHASE_NAMES as readonly string[]).includes(name))
      throw new Error(`BENCH_IOTC_PHASES: unknown phase "${name}" (phases: ${PHASE_NAMES.join(", ")})`);
    phases.add(name as Phase);
  }
  if (phases.has("latency") && !phases.has("throughput"))
    throw new Error("BENCH_IOTC_PHASES: latency runs on the throughput phase's route and devices; list throughput too");
  return phases;
}

/** Now on CLOCK_MONOTONIC in µs: the clock of a V8 .cpuprofile's startTime, endTime and timeDeltas on Linux. */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

function deviceEvents(from: number, count: number): TelemetryEvent[] {
  return Array.from({ length: count }, (_, k) => sampleEvent(from + k, `dev-${(from + k) % DEVICES}`, CONNECTION));
}

/** Publishes `count` events from `from` on, one event per bus message, DEVICES messages per call. */
async function publish(bus: Bus, from: number, count: number): Promise<void> {
  for (let i = 0; i < count; i += DEVICES) await bus.publishEvents(deviceEvents(from + i, Math.min(DEVICES, count - i)));
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(2));
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

async function main() {
  const nats = await startNatsServer();
  const emu = await startIotcEmulator({
    // One "assigning" answer and its poll, as DPS gives, without DPS's 1-3 s wait: at the connect rate that wait is
    // latency, not throughput, and the figure would be the emulator's pacing.
    assigningPolls: 1,
    retryAfterSeconds: 0,
    // The bench counts arrivals itself; the emulator's log only needs to hold a little.
    maxTelemetry: 1000,
  });
  const arrivals = new Arrivals(emu);
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  const dir = mkdtempSync(join(tmpdir(), "bench-iotc-"));
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, emu.caPem);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const bridgeEnv = {
    PORT: String(port),
    NATS_URL: nats.url,
    IOTC_CREDENTIALS_KEY: Buffer.alloc(32, 7).toString("base64"),
    IOTC_CA_FILE: caFile,
    IOTC_CONNECT_RATE: String(CONNECT_RATE),
    IOTC_MAX_DEVICES: String(Math.min(100_000, DEVICES + CONNECT_DEVICES + RSS_DEVICES)),
  };
  /**
   * "iotc-ca-file": the emulator's CA through IOTC_CA_FILE, as compose runs it; the bridge then gives every device
   * connection that CA beside the default ones. "process-wide": through NODE_EXTRA_CA_CERTS instead, so the device
   * connections use the default trust store, as a bridge talking to Azure (public roots, no IOTC_CA_FILE) does.
   */
  const startBridge = (connectRate = CONNECT_RATE, trust: "iotc-ca-file" | "process-wide" = "iotc-ca-file") => {
    const { IOTC_CA_FILE: _, ...withoutCaFile } = bridgeEnv;
    const env = trust === "iotc-ca-file" ? bridgeEnv : { ...withoutCaFile, NODE_EXTRA_CA_CERTS: caFile };
    const profile: Record<string, string> = CPU_PROF_DIR
      ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${CPU_PROF_DIR}`.trim() }
      : {};
    return startProcess("iotc-bridge", BRIDGE_DIR, { ...env, ...profile, IOTC_CONNECT_RATE: String(connectRate) }, `${url}/readyz`);
  };
  let bridge: RunningProcess | undefined;
  try {
    await bus.ready;
    bridge = await startBridge();
    const api = createClient(IotcBridgeService, testTransport(url));
    await api.createApplication({
      application: {
        id: APPLICATION,
        idScope: emu.idScope,
        provisioningHost: emu.mqttHost,
        gatewayHost: emu.mqttHost,
        enrollmentGroup: { credential: { case: "groupKey", value: emu.groupKey } },
      },
    });

    const results: Record<string, unknown> = {};
    const warmup = WARMUP_PER_DEVICE * DEVICES;

    // 1. Throughput. The warm-up and the events are on the bus before the route exists; the route starts at them.
    if (PHASES.has("throughput")) {
      const raw = await measureRawBus(bus, RAW_MESSAGES, logger);
      const backlogStart = new Date();
      const t = performance.now();
      await publish(bus, 0, warmup + EVENTS);
      const publishMs = performance.now() - t;
      await routeBucket(bus).put(
        "bench-iotc",
        create(RouteSchema, {
          id: "bench-iotc",
          source: { platform: Platform.API, connection: CONNECTION },
          sink: { platform: Platform.IOT_CENTRAL, target: APPLICATION },
          startTime: timestampFromDate(backlogStart),
        }),
      );
      const warmStart = performance.now();
      const warmEnd = await arrivals.reach(warmup, 300_000);
      const connected = emu.devices().filter((d) => d.deviceId.startsWith(`${CONNECTION}-`) && d.connected).length;
      const c1 = arrivals.count;
      const bridgeCpu1 = bridge.cpuSeconds();
      const benchCpu1 = process.cpuUsage();
      const t1 = performance.now();
      const m1 = monotonicMicros();
      const t2 = await arrivals.reach(warmup + EVENTS, 600_000);
      const m2 = monotonicMicros();
      const bridgeCpu2 = bridge.cpuSeconds();
      const benchCpu = process.cpuUsage(benchCpu1);
      const sustained = warmup + EVENTS - c1;
      const sustainedMs = t2 - t1;
      const eventsPerSec = rate(sustained, sustainedMs);
      await until(async () => (await consumerBacklog(bus, routeConsumerName("bench-iotc", Platform.IOT_CENTRAL)))?.ackPending === 0, {
        timeoutMs: 30_000,
        what: "the route's messages all acknowledged",
      });
      const extra = arrivals.count - (warmup + EVENTS);
      results.rawBus = raw;
      results.throughput = {
        devices: DEVICES,
        devicesConnectedAfterWarmup: connected,
        warmupEvents: warmup,
        warmupSeconds: seconds(warmEnd - warmStart),
        events: sustained,
        seconds: seconds(sustainedMs),
        sustainedAtLeast30s: sustainedMs >= 30_000,
        eventsPerSec,
        ratioToRawPublish: Number((eventsPerSec / raw.publishPerSec).toFixed(3)),
        ratioToRawConsumeAck: Number((eventsPerSec / raw.consumeAckPerSec).toFixed(3)),
        receivedMoreThanOnce: extra,
        backlogPublishPerSec: rate(warmup + EVENTS, publishMs),
        cpuMicrosPerEvent: {
          bridgeProcess: Math.round(((bridgeCpu2 - bridgeCpu1) * 1e6) / sustained),
          benchProcess: Math.round((benchCpu.user + benchCpu.system) / sustained),
          benchProcessHolds: "the emulator (TLS, MQTT, JSON parse) and the bench; nats-server is in neither figure",
        },
        ...(CPU_PROF_DIR ? { profileWindowMonotonicMicros: { from: m1, to: m2, pid: bridge.proc.pid } } : {}),
      };
    }

    // 2. Latency at a fixed rate, through the same route and devices.
    if (PHASES.has("latency")) {
      const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
      const ticks = Math.round((SECONDS * 1000) / TICK_MS);
      let next = warmup + EVENTS;
      let behind = 0;
      const pending = new Set<Promise<unknown>>();
      const latStart = performance.now();
      for (let k = 0; k < ticks; k++) {
        const wait = latStart + k * TICK_MS - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else behind++;
        const batch = deviceEvents(next, perTick);
        next += perTick;
        const at = performance.now();
        for (const e of batch) arrivals.published.set(e.id, at);
        const p = bus.publishEvents(batch);
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      await Promise.all(pending);
      const latPublishSeconds = seconds(performance.now() - latStart);
      const latSent = perTick * ticks;
      await until(() => arrivals.latencies.length >= latSent, {
        timeoutMs: 60_000,
        intervalMs: 20,
        what: "the latency phase's events",
      }).catch(() => {});
      const latencies = [...arrivals.latencies].sort((a, b) => a - b);
      results.latency = {
        ratePerSec: RATE,
        seconds: SECONDS,
        publishSeconds: latPublishSeconds,
        ticksBehind: behind,
        sent: latSent,
        received: arrivals.latencies.length,
        what: "bus publish (before the call) → the emulator's receipt of that message id (its PUBACK follows at once)",
        p50Ms: Number(percentile(latencies, 50).toFixed(1)),
        p99Ms: Number(percentile(latencies, 99).toFixed(1)),
        maxMs: Number((latencies.at(-1) ?? 0).toFixed(1)),
      };
    }

    // 3. Connect rate, cold (DPS, then the hub) and warm (after a restart: the registration from KV, the hub only).
    const connectIds = Array.from({ length: Math.max(CONNECT_DEVICES, RSS_DEVICES) }, (_, i) => `conn-${i}`);
    const registrations = (ids: string[]) => {
      const want = new Set(ids);
      let regs = 0;
      let connects = 0;
      let online = 0;
      for (const d of emu.devices()) {
        if (!want.has(d.deviceId)) continue;
        regs += d.registrations;
        connects += d.connects;
        if (d.connected) online++;
      }
      return { regs, connects, online };
    };
    const connectAll = async (client: Client<typeof IotcBridgeService>, ids: string[]) => {
      const before = registrations(ids);
      const times: number[] = [];
      const errors = new Map<string, number>();
      const bridgeCpu0 = bridge!.cpuSeconds();
      const benchCpu0 = process.cpuUsage();
      const t0 = performance.now();
      // When each device first shows connected on the hub's side, sampled every 50 ms.
      const connectedAt: number[] = [];
      const seen = new Set<string>();
      const want = new Set(ids);
      const sampler = setInterval(() => {
        const now = performance.now() - t0;
        for (const d of emu.devices()) {
          if (d.connected && want.has(d.deviceId) && !seen.has(d.deviceId)) {
            seen.add(d.deviceId);
            connectedAt.push(now);
          }
        }
      }, 50);
      await Promise.all(
        ids.map(async (deviceId) => {
          const s = performance.now();
          try {
            await client.registerDevice({ applicationId: APPLICATION, deviceId });
            times.push(performance.now() - s);
          } catch (err) {
            const m = (err as Error).message;
            errors.set(m, (errors.get(m) ?? 0) + 1);
          }
        }),
      );
      const ms = performance.now() - t0;
      clearInterval(sampler);
      const benchCpu = process.cpuUsage(benchCpu0);
      const bridgeCpu = bridge!.cpuSeconds() - bridgeCpu0;
      const after = registrations(ids);
      times.sort((a, b) => a - b);
      return {
        devices: ids.length,
        seconds: seconds(ms),
        devicesPerSec: rate(times.length, ms),
        failed: Object.fromEntries(errors),
        hubConnectedAtMs: {
          first: Math.round(connectedAt[0] ?? 0),
          p50: Math.round(percentile(connectedAt, 50)),
          last: Math.round(connectedAt.at(-1) ?? 0),
        },
        registerDeviceP50Ms: Math.round(percentile(times, 50)),
        registerDeviceP99Ms: Math.round(percentile(times, 99)),
        dpsRegistrations: after.regs - before.regs,
        hubConnects: after.connects - before.connects,
        connectedAtEnd: after.online,
        cpuMsPerDevice: {
          bridgeProcess: Number(((bridgeCpu * 1000) / ids.length).toFixed(1)),
          benchProcess: Number(((benchCpu.user + benchCpu.system) / 1000 / ids.length).toFixed(1)),
        },
      };
    };
    if (PHASES.has("connect")) {
      await bridge.stop();
      bridge = await startBridge();
      const cold = await connectAll(api, connectIds.slice(0, CONNECT_DEVICES));
      await bridge.stop();
      bridge = await startBridge();
      const warm = await connectAll(api, connectIds.slice(0, CONNECT_DEVICES));
      results.connect = {
        connectRateSetting: CONNECT_RATE,
        via: "RegisterDevice for every device at once, each case in a bridge process just started (the limiter spaces the opens)",
        cold,
        warmAfterRestart: warm,
      };
    }

    // 4. RSS with RSS_DEVICES connected, from a fresh process, with each way of trusting the emulator's CA. The first
    // time the devices past CONNECT_DEVICES register with DPS; the second time (IOTC_CA_FILE, as compose runs it) all
    // come from KV, so that DPS's share cannot be what makes that one bigger.
    const rssPhase = async (trust: "iotc-ca-file" | "process-wide") => {
      await bridge!.stop();
      bridge = await startBridge(RSS_CONNECT_RATE, trust);
      await new Promise((r) => setTimeout(r, 3000));
      const before = bridge.rssMiB();
      const benchBefore = process.memoryUsage().rss;
      const connect = await connectAll(api, connectIds.slice(0, RSS_DEVICES));
      await new Promise((r) => setTimeout(r, 5000));
      const after = bridge.rssMiB();
      return {
        connect,
        bridgeMiBBefore: before,
        bridgeMiBAfter: after,
        bridgeKiBPerDevice: Math.round(((after - before) * 1024) / Math.max(1, connect.connectedAtEnd)),
        benchProcessMiBDelta: mib(process.memoryUsage().rss - benchBefore),
      };
    };
    if (PHASES.has("rss")) {
      const rssProcessWide = await rssPhase("process-wide");
      const rssCaFile = await rssPhase("iotc-ca-file");
      results.rss = {
        devices: RSS_DEVICES,
        connectRateSetting: RSS_CONNECT_RATE,
        note: "the bridge's own process, 5 s after the last device connected; the emulator's side of the connections is in the bench process's delta",
        emulatorCaProcessWide: rssProcessWide,
        emulatorCaByIotcCaFile: rssCaFile,
      };
    }

    console.log(
      JSON.stringify(
        {
          bench: "iotc",
          machine: machine(),
          setup: {
            natsServer: "nats-server single node, file storage, loopback",
            bridge:
              "iotc-bridge in its own process (dist/main.js), settings at their defaults except those below; CPU and RSS read from /proc",
            bridgeSettings: {
              IOTC_CONNECT_RATE: `${CONNECT_RATE} (the RSS phase: ${RSS_CONNECT_RATE})`,
              IOTC_MAX_DEVICES: Number(bridgeEnv.IOTC_MAX_DEVICES),
              // The bridge inherits this process's environment: an IOTC_* setting given to the bench reaches it.
              IOTC_MAX_IN_FLIGHT: Number(process.env.IOTC_MAX_IN_FLIGHT ?? 8),
              IOTC_SINK_MAX_PARALLEL: Number(process.env.IOTC_SINK_MAX_PARALLEL ?? 64),
            },
            emulator:
              "emulator-iotc in the bench's process (with the publisher and the bus client): MQTT/TLS on loopback, DPS answers 'assigning' once with retry-after 0",
            eventBytes: "≈300 on the bus (4 points, 2 attributes), one event per bus message = one telemetry message",
          },
          phases: [...PHASES],
          ...(BRIDGE_DIR === "services/iotc-bridge" ? {} : { bridgeDir: BRIDGE_DIR }),
          ...(CPU_PROF_DIR ? { cpuProfiles: CPU_PROF_DIR } : {}),
          ...results,
        },
        null,
        2,
      ),
    );
  } finally {
    await bridge?.stop();
    await bus.close();
    await emu.stop();
    await nats.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

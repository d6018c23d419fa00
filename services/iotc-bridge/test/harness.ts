/** What iotc-bridge's integration tests share: a fake IoT Central device client, the bridge's API, routes and dead letters. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog, DEAD_LETTER_HEADERS, routeBucket, routeConsumerName, STREAMS } from "@meridian/bus";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type IotcEmulator, startIotcEmulator } from "@meridian/emulator-iotc";
import { type NatsServerHandle, startForTest, startNatsServer, testLogger, testTransport, until } from "@meridian/testing";
import { iotcBridgeConfig } from "../src/config.js";
import { IotcDeviceDisabledError, IotcNotConnectedError, IotcThrottledError } from "../src/platform/errors.js";
import type { IotcDeviceOptions } from "../src/platform/index.js";
import type { DeviceConnectionState, DeviceRegistration, IotcDevice, TelemetryOptions, Twin } from "../src/platform/types.js";
import { type IotcBridge, startIotcBridge } from "../src/service.js";

/** A test key for IOTC_CREDENTIALS_KEY. */
export const CREDENTIALS_KEY = Buffer.alloc(32, 9).toString("base64");
export const GROUP_KEY = Buffer.alloc(32, 3).toString("base64");

export interface EmulatorStack {
  nats: NatsServerHandle;
  /** A bus client of the test's own, to put routes and publish events. */
  bus: Bus;
  /** The emulator, answering at once when it throttles (retryAfterSeconds 0) unless a fault says otherwise. */
  emu: IotcEmulator;
  /** The emulator's CA in a file, for the bridge's IOTC_CA_FILE. */
  caFile: string;
  stop(): Promise<void>;
}

/** nats-server, a bus client and the IoT Central emulator, for the tests that run the bridge against the emulator. */
export async function startEmulatorStack(): Promise<EmulatorStack> {
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "test-publisher", logger: testLogger() });
  await bus.ready;
  const emu = await startIotcEmulator({ retryAfterSeconds: 0 });
  const caFile = join(mkdtempSync(join(tmpdir(), "iotc-bridge-")), "ca.pem");
  writeFileSync(caFile, emu.caPem);
  return {
    nats,
    bus,
    emu,
    caFile,
    async stop() {
      await emu.stop();
      await bus.close();
      await nats.stop();
    },
  };
}

export function api(url: string): Client<typeof IotcBridgeService> {
  return createClient(IotcBridgeService, testTransport(url));
}

export interface SentMessage {
  deviceId: string;
  payload: Record<string, unknown>;
  options: TelemetryOptions;
}

/**
 * IoT Central as the device client would show it, without a network: registrations (kept in the bridge's store, as
 * the real client does), connections, telemetry; faults per device (disabled) or for the next calls (throttled, not
 * connected).
 */
export class FakeCentral {
  readonly sent: SentMessage[] = [];
  readonly registrations = new Map<string, number>();
  readonly opens = new Map<string, number>();
  readonly made: IotcDeviceOptions[] = [];
  readonly disabled = new Set<string>();
  /** Faults the next sends answer with. */
  sendFaults: Array<"throttled" | "not_connected"> = [];
  openFaults: Array<"throttled"> = [];
  /** How long each open takes (a slow DPS or hub). */
  openDelayMs = 0;

  readonly createDevice = (o: IotcDeviceOptions): IotcDevice => {
    this.made.push(o);
    const central = this;
    let state: DeviceConnectionState = "disconnected";
    let registration: DeviceRegistration | undefined;
    return {
      registrationId: o.registrationId,
      get state() {
        return state;
      },
      get registration() {
        return registration;
      },
      async open(opts) {
        state = "connecting";
        o.handlers?.state?.("connecting");
        if (central.openDelayMs > 0) await new Promise((r) => setTimeout(r, central.openDelayMs));
        if (central.openFaults.shift() === "throttled") throw new IotcThrottledError("DPS 429", 20);
        if (central.disabled.has(o.registrationId)) {
          state = "failed";
          const err = new IotcDeviceDisabledError(`device ${o.registrationId} is disabled`);
          o.handlers?.state?.("failed", err);
          throw err;
        }
        registration = opts?.force ? undefined : await o.store.get(o.registrationId);
        if (!registration) {
          central.registrations.set(o.registrationId, (central.registrations.get(o.registrationId) ?? 0) + 1);
          registration = {
            registrationId: o.registrationId,
            deviceId: o.registrationId,
            assignedHub: "fake-hub.azure-devices.net",
            credential: { kind: "sas", deviceKey: Buffer.alloc(32, 4).toString("base64") },
            registeredAt: new Date().toISOString(),
            ...(o.modelId ? { modelId: o.modelId } : {}),
          };
          await o.store.put(registration);
        }
        central.opens.set(o.registrationId, (central.opens.get(o.registrationId) ?? 0) + 1);
        state = "connected";
        o.handlers?.state?.("connected");
      },
      async close() {
        state = "disconnected";
      },
      async sendTelemetry(payload, options = {}) {
        const f = central.sendFaults.shift();
        if (f === "throttled") throw new IotcThrottledError("hub throttled", 20);
        if (f === "not_connected") throw new IotcNotConnectedError("connection lost");
        if (central.disabled.has(o.registrationId)) throw new IotcDeviceDisabledError(`device ${o.registrationId} is disabled`);
        central.sent.push({ deviceId: o.registrationId, payload, options });
      },
      async updateReportedProperties() {
        return 2;
      },
      async getTwin(): Promise<Twin> {
        return { desired: { $version: 1 }, reported: { $version: 1 } };
      },
    };
  };

  messageIds(deviceId?: string): string[] {
    return this.sent.filter((m) => !deviceId || m.deviceId === deviceId).map((m) => m.options.messageId ?? "");
  }
}

/** Puts a route from bus telemetry of `connection` into application `target`, and waits for its consumer. */
export async function routeInto(bus: Bus, id: string, connection: string, target: string, options: Record<string, string> = {}) {
  await routeBucket(bus).put(
    id,
    create(RouteSchema, { id, source: { platform: Platform.API, connection }, sink: { platform: Platform.IOT_CENTRAL, target }, options }),
  );
  await until(async () => (await consumerBacklog(bus, routeConsumerName(id, Platform.IOT_CENTRAL))) !== undefined, {
    timeoutMs: 10_000,
    what: `route ${id}'s consumer`,
  });
}

/** Dead letters of a route so far, with their reasons. */
export async function deadLetters(bus: Bus, routeId: string): Promise<Array<{ reason: string; subject: string }>> {
  const durable = routeConsumerName(routeId, Platform.IOT_CENTRAL);
  const out: Array<{ reason: string; subject: string }> = [];
  const jsm = bus.jsm();
  let info: Awaited<ReturnType<typeof jsm.streams.info>>;
  try {
    info = await jsm.streams.info(STREAMS.deadLetter);
  } catch {
    return out;
  }
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && seq > 0; seq++) {
    try {
      const m = await jsm.streams.getMessage(STREAMS.deadLetter, { seq });
      if (!m.subject.endsWith(`.${durable}`)) continue;
      out.push({ reason: m.header.get(DEAD_LETTER_HEADERS.reason) ?? "", subject: m.header.get(DEAD_LETTER_HEADERS.subject) ?? "" });
    } catch {
      // deleted or purged
    }
  }
  return out;
}

/** Telemetry events `${connection}-${device}-${i}` for i in from..from+n-1, one temperature point each. */
export function telemetryEvents(connection: string, device: string, from: number, n: number): TelemetryEvent[] {
  return Array.from({ length: n }, (_, j) =>
    create(TelemetryEventSchema, {
      id: `${connection}-${device}-${from + j}`,
      source: { platform: Platform.API, connection, device },
      observedTime: timestampFromMs(Date.UTC(2026, 10, 30) + (from + j) * 1000),
      points: [{ name: "temperature", value: { case: "doubleValue", value: from + j } }],
    }),
  );
}

/** The bridge as deployed against the IoT Central emulator: its CA from IOTC_CA_FILE, DPS and the hub behind the emulator's port. */
export function emulatorBridge(natsUrl: string, caFile: string, instance: string, env: Record<string, string> = {}): Promise<IotcBridge> {
  return startForTest(
    startIotcBridge,
    iotcBridgeConfig,
    {
      NATS_URL: natsUrl,
      INSTANCE_ID: instance,
      IOTC_CREDENTIALS_KEY: CREDENTIALS_KEY,
      IOTC_CA_FILE: caFile,
      IOTC_CONNECT_RATE: "50",
      ...env,
    },
    { redeliveryBackoff: { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0 }, failureHoldMs: 200 },
  );
}

/** An application whose devices register with the emulator's DPS (group key) and connect to its hub. */
export async function createEmulatorApplication(svc: IotcBridge, emu: IotcEmulator, id: string): Promise<void> {
  await api(svc.service.url).createApplication({
    application: {
      id,
      idScope: emu.idScope,
      provisioningHost: emu.mqttHost,
      gatewayHost: emu.mqttHost,
      enrollmentGroup: { credential: { case: "groupKey", value: emu.groupKey } },
    },
  });
}

import { testLogger } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import type { IotcDevice, IotcDeviceOptions } from "../platform/index.js";
import type { Applications } from "./applications.js";
import { ConnectLimiter, DeviceManager } from "./devices.js";
import { TooManyDevicesError } from "./errors.js";
import type { ApplicationRecord, IotcStore } from "./store.js";

const app: ApplicationRecord = {
  id: "plant",
  displayName: "",
  idScope: "0ne00000001",
  provisioningHost: "dps.example.com",
  writablePropertyAck: "accepted",
  origin: "api",
  createTime: "",
};

// What the manager needs of the store when every device uses the application's group key.
const store = {
  getDevice: async () => undefined,
  putDevice: async () => {},
  openOwnCredential: () => undefined,
  openApplication: () => ({ kind: "group_key", groupKey: "a2V5" }),
  registrations: () => ({ get: async () => undefined, put: async () => {}, delete: async () => {} }),
} as unknown as IotcStore;
const applications = { get: async () => app } as unknown as Applications;

interface FakeDevice extends IotcDevice {
  closed: boolean;
  inFlight: number;
  maxInFlight: number;
}

function manager(o: {
  maxDevices?: number;
  connectRate?: number;
  idleSeconds?: number;
  maxInFlight?: number;
  openMs?: number;
  sendMs?: number;
}) {
  const made: FakeDevice[] = [];
  const opens: number[] = [];
  const createDevice = (d: IotcDeviceOptions): IotcDevice => {
    const dev: FakeDevice = {
      registrationId: d.registrationId,
      state: "disconnected",
      registration: undefined,
      closed: false,
      inFlight: 0,
      maxInFlight: 0,
      async open() {
        opens.push(Date.now());
        await new Promise((r) => setTimeout(r, o.openMs ?? 0));
        (dev as { state: string }).state = "connected";
      },
      async close() {
        dev.closed = true;
      },
      async sendTelemetry() {
        dev.inFlight++;
        dev.maxInFlight = Math.max(dev.maxInFlight, dev.inFlight);
        await new Promise((r) => setTimeout(r, o.sendMs ?? 0));
        dev.inFlight--;
      },
      async updateReportedProperties() {
        return 1;
      },
      async getTwin() {
        return { desired: {}, reported: {} };
      },
    };
    made.push(dev);
    return dev;
  };
  const m = new DeviceManager({
    store,
    applications: () => applications,
    createDevice,
    logger: testLogger(),
    maxDevices: o.maxDevices ?? 100,
    connectRate: o.connectRate ?? 1000,
    idleDisconnectSeconds: o.idleSeconds ?? 900,
    tokenValiditySeconds: 3600,
    tokenRenewalMarginSeconds: 900,
    maxInFlight: o.maxInFlight ?? 8,
  });
  return { m, made, opens };
}

describe("DeviceManager", () => {
  it("spaces device connects at IOTC_CONNECT_RATE across devices", async () => {
    const { m, opens } = manager({ connectRate: 20 });
    await Promise.all(["a", "b", "c", "d", "e"].map((id) => m.open("plant", id)));
    // 20/s: the i-th connect no earlier than i × 50 ms after the first (a late timer may bring two closer, never earlier).
    const since = opens.map((t) => t - opens[0]!).sort((a, b) => a - b);
    for (const [i, t] of since.entries()) expect(t).toBeGreaterThanOrEqual(i * 50 - 5);
    await m.stop();
  });

  it("concurrent uses of one device open it once", async () => {
    const { m, made } = manager({ openMs: 30 });
    await Promise.all(Array.from({ length: 10 }, () => m.sendTelemetry("plant", "a", { x: 1 }, {})));
    expect(made).toHaveLength(1);
    expect(m.status("plant", "a")).toMatchObject({ state: "connected", messagesSent: 10 });
    await m.stop();
  });

  it("keeps at most IOTC_MAX_IN_FLIGHT messages of one device waiting for PUBACK", async () => {
    const { m, made } = manager({ maxInFlight: 3, sendMs: 20 });
    await Promise.all(Array.from({ length: 12 }, () => m.sendTelemetry("plant", "a", { x: 1 }, {})));
    expect(made[0]?.maxInFlight).toBe(3);
    await m.stop();
  });

  it("at IOTC_MAX_DEVICES the least recently used idle device is closed; with none idle, TooManyDevicesError (retryable)", async () => {
    const { m, made } = manager({ maxDevices: 2 });
    await m.open("plant", "a");
    await new Promise((r) => setTimeout(r, 5));
    await m.open("plant", "b");
    await m.open("plant", "c");
    expect(made.find((d) => d.registrationId === "a")?.closed).toBe(true);
    expect(made.find((d) => d.registrationId === "b")?.closed).toBe(false);
    expect(m.openCount).toBe(2);
    await m.stop();

    const slow = manager({ maxDevices: 1, openMs: 200 });
    const first = slow.m.open("plant", "a");
    const err = await slow.m.open("plant", "b").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManyDevicesError);
    expect((err as TooManyDevicesError).retryable).toBe(true);
    await first;
    await slow.m.stop();
  });

  it("closes a device after its idle time and opens it again on demand", async () => {
    const { m, made } = manager({ idleSeconds: 0.05 });
    await m.sendTelemetry("plant", "a", { x: 1 }, {});
    await new Promise((r) => setTimeout(r, 120));
    expect(made[0]?.closed).toBe(true);
    expect(m.status("plant", "a")?.state).toBe("disconnected");
    await m.sendTelemetry("plant", "a", { x: 2 }, {});
    expect(made).toHaveLength(2);
    expect(m.status("plant", "a")).toMatchObject({ state: "connected", messagesSent: 2 });
    await m.stop();
  });
});

describe("ConnectLimiter", () => {
  it("lets the first through at once", async () => {
    const l = new ConnectLimiter(1);
    // "At once": without waiting on any timer, so before a setImmediate queued beside it (a sleep of even 0 ms would
    // come after it). No clock is read, so a slow machine cannot fail this; a wait of 1 s for the first one would.
    const first = await Promise.race([l.take().then(() => "taken"), new Promise((r) => setImmediate(() => r("waited")))]);
    expect(first).toBe("taken");
  });
});

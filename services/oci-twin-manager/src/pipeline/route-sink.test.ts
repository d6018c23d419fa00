import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Bus, consumerBacklog, DEAD_LETTER_HEADERS, routeBucket, routeConsumerName, STREAMS } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OciInvalidArgumentError, OciNotAuthenticatedError, OciUnavailableError } from "../platform/errors.js";
import type { DeviceCredentials, DeviceEndpointClient, JsonObject } from "../platform/types.js";
import { OciRouteSinks, routeOptionsProblem, twinKeyFor } from "./route-sink.js";
import type { StoredTwin } from "./store.js";

const logger = testLogger();
const DOMAIN = "ocid1.iotdomain.oc1.test.sink";
let nats: NatsServerHandle;
let bus: Bus;

beforeAll(async () => {
  nats = await startNatsServer();
  bus = Bus.connect({ servers: nats.url, name: "sink-test", logger });
  await bus.ready;
});

afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

class FakeDevice implements DeviceEndpointClient {
  readonly posts: Array<{ credentials: DeviceCredentials; endpoint: string; payload: JsonObject }> = [];
  faults: Error[] = [];
  delayMs = 0;
  active = 0;
  maxActive = 0;
  async post(credentials: DeviceCredentials, endpoint: string, payload: JsonObject): Promise<void> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      const f = this.faults.shift();
      if (f) throw f;
      this.posts.push({ credentials, endpoint, payload });
    } finally {
      this.active--;
    }
  }
}

function twin(key: string, secret?: string): StoredTwin & { secret?: string } {
  return {
    key,
    iotDomainId: DOMAIN,
    kind: "unstructured",
    instanceId: `ocid1.iotdigitaltwininstance.oc1.test.${key}`,
    externalKey: `ext-${key}`,
    specHash: "h",
    createTime: "2026-01-01T00:00:00Z",
    ...(secret ? { secret } : {}),
  };
}

function sinks(twins: Array<StoredTwin & { secret?: string }>, device: FakeDevice) {
  const byKey = new Map(twins.map((t) => [t.key, t]));
  return new OciRouteSinks({
    bus,
    store: {
      get: async (key) => byKey.get(key),
      deviceCredentials: (t) => {
        const s = (t as { secret?: string }).secret;
        return s && t.externalKey ? { externalKey: t.externalKey, secret: s } : undefined;
      },
    },
    domains: {
      resolve: (id) => (id === "default" ? DOMAIN : id),
      device: async () => device,
    },
    logger,
    ackWaitMs: 5000,
    maxInFlight: 4,
    backoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 },
  });
}

async function routeInto(id: string, connection: string, options: Record<string, string> = {}, target = "default") {
  await routeBucket(bus).put(
    id,
    create(RouteSchema, { id, source: { platform: Platform.API, connection }, sink: { platform: Platform.OCI_IOT, target }, options }),
  );
  await until(async () => (await consumerBacklog(bus, routeConsumerName(id, Platform.OCI_IOT))) !== undefined, {
    timeoutMs: 10_000,
    what: `route ${id}'s consumer`,
  });
}

function events(connection: string, device: string, from: number, n: number): TelemetryEvent[] {
  return Array.from({ length: n }, (_, j) =>
    create(TelemetryEventSchema, {
      id: `${connection}-${device}-${from + j}`,
      source: { platform: Platform.API, connection, device },
      observedTime: timestampFromMs(1_700_000_000_000 + (from + j) * 1000),
      points: [{ name: "temperature", value: { case: "doubleValue", value: from + j } }],
    }),
  );
}

async function deadLetters(routeId: string): Promise<string[]> {
  const durable = routeConsumerName(routeId, Platform.OCI_IOT);
  const jsm = bus.jsm();
  const info = await jsm.streams.info(STREAMS.deadLetter).catch(() => undefined);
  const out: string[] = [];
  if (!info) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && seq > 0; seq++) {
    const m = await jsm.streams.getMessage(STREAMS.deadLetter, { seq }).catch(() => undefined);
    if (m?.subject.endsWith(`.${durable}`)) out.push(m.header.get(DEAD_LETTER_HEADERS.reason) ?? "");
  }
  return out;
}

describe("route options", () => {
  it("twin template and endpoint are checked; anything else is refused by name", () => {
    expect(routeOptionsProblem({ twin: "{connection}-{device}", endpoint: "iot/v1/telemetry" })).toBeUndefined();
    expect(routeOptionsProblem({ twin: "{site}" })).toMatch(/unknown placeholder \{site\}/);
    expect(routeOptionsProblem({ endpoint: "/iot/v1" })).toMatch(/endpoint/);
    expect(routeOptionsProblem({ component: "x" })).toMatch(/unknown option component/);
    expect(twinKeyFor("{platform}-{connection}-{device}", { platform: Platform.API, connection: "l", device: "d" })).toBe("api-l-d");
  });
});

describe("OciRouteSink", () => {
  it("posts each event as the twin's device on the route's endpoint, and catches up after OCI was down", async () => {
    const device = new FakeDevice();
    const s = sinks([twin("pump-1", "s3cret")], device);
    s.start();
    try {
      await routeInto("r1", "line-1", { endpoint: "iot/v1/env" });
      device.faults = [new OciUnavailableError("503"), new OciUnavailableError("503"), new OciUnavailableError("connection refused")];
      for (let i = 0; i < 10; i += 2) await bus.publishEvents(events("line-1", "pump-1", i, 2));
      await until(() => device.posts.length >= 10, { timeoutMs: 10_000, what: "10 posts" });
      await new Promise((r) => setTimeout(r, 300));
      expect(device.faults).toHaveLength(0);
      const temps = device.posts.map((p) => p.payload["temperature"]).sort((a, b) => (a as number) - (b as number));
      expect(temps).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(device.posts[0]).toMatchObject({ credentials: { externalKey: "ext-pump-1", secret: "s3cret" }, endpoint: "iot/v1/env" });
      expect(device.posts.find((p) => p.payload["temperature"] === 3)!.payload["time"]).toBe(1_700_000_003_000_000);
      await until(async () => (await consumerBacklog(bus, "oci-r1"))?.ackPending === 0, { timeoutMs: 5000, what: "all acked" });
      expect(s.list()[0]!.counters).toMatchObject({ received: 10, delivered: 10, skipped: 0 });
      expect(await deadLetters("r1")).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it("posts at most OCI_SINK_MAX_IN_FLIGHT at once, across the route's messages", async () => {
    const device = new FakeDevice();
    device.delayMs = 30;
    const s = sinks([twin("a", "x"), twin("b", "y")], device);
    s.start();
    try {
      await routeInto("r4", "line-4");
      await bus.publishEvents(events("line-4", "a", 0, 12));
      await bus.publishEvents(events("line-4", "b", 0, 12));
      await until(() => device.posts.length >= 24, { timeoutMs: 10_000, what: "24 posts" });
      expect(device.maxActive).toBe(4);
    } finally {
      await s.stop();
    }
  });

  it("an unknown twin, a twin without device secret and a post OCI refuses are dead letters naming the twin", async () => {
    const device = new FakeDevice();
    const s = sinks([twin("no-secret"), twin("refused", "x")], device);
    s.start();
    try {
      await routeInto("r2", "line-2");
      await bus.publishEvents(events("line-2", "nobody", 0, 1));
      await bus.publishEvents(events("line-2", "no-secret", 0, 1));
      device.faults = [new OciInvalidArgumentError("payload", "400 from OCI")];
      await bus.publishEvents(events("line-2", "refused", 0, 1));
      await bus.publishEvents(events("line-2", "Not A Key", 0, 1));
      await until(async () => (await deadLetters("r2")).length >= 4, { timeoutMs: 10_000, what: "4 dead letters" });
      // In any order: the messages are worked on at once, and a key that is not one is refused before any lookup.
      const reasons = await deadLetters("r2");
      expect(reasons).toHaveLength(4);
      expect(reasons).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/twin nobody .*is not a twin of oci-twin-manager/),
          expect.stringMatching(/twin no-secret has no device secret/),
          expect.stringMatching(/OCI refused the data of twin refused on iot\/v1\/telemetry/),
          expect.stringMatching(/twin "Not A Key" .*is not a twin key/),
        ]),
      );
      expect(device.posts).toHaveLength(0);
    } finally {
      await s.stop();
    }
  });

  it("a wrong device secret (401 on the post) is a dead letter; a twin in another domain too", async () => {
    const device = new FakeDevice();
    const other = { ...twin("elsewhere", "x"), iotDomainId: "ocid1.iotdomain.oc1.test.other" };
    const s = sinks([twin("wrong", "bad"), other], device);
    s.start();
    try {
      await routeInto("r3", "line-3");
      device.faults = [new OciNotAuthenticatedError("401")];
      await bus.publishEvents(events("line-3", "wrong", 0, 1));
      await bus.publishEvents(events("line-3", "elsewhere", 0, 1));
      await until(async () => (await deadLetters("r3")).length >= 2, { timeoutMs: 10_000, what: "2 dead letters" });
      // In either order: the messages are worked on at once, and only the first waits for OCI's answer.
      const letters = await deadLetters("r3");
      expect(letters).toHaveLength(2);
      expect(letters).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/twin wrong/),
          expect.stringMatching(/twin elsewhere is in IoT domain ocid1.iotdomain.oc1.test.other/),
        ]),
      );
    } finally {
      await s.stop();
    }
  });
});

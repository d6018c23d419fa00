import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EndpointKind, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { testCredential } from "@meridian/testing";
import { GenericContainer, Network, type StartedNetwork, type StartedTestContainer, Wait } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, containerLogs, docker, NATS_IMAGE, NATS_USERS, REPO_ROOT, startService, untilUp } from "./harness.js";

/**
 * The production shape of the bus: a 3-node JetStream cluster (deploy/compose/nats-cluster.conf) with R3 streams and
 * KV, gateway and omf-sender given all three URLs. Events are published through the gateway without a pause while the
 * telemetry stream's leader is killed (SIGKILL), and then, with the first back, the node leading the route's consumer.
 * At the PI emulator (which inserts every value it is sent, so a duplicate shows): every event the gateway
 * acknowledged, none twice.
 */

const NODES = ["nats-1", "nats-2", "nats-3"];
const PI_PASSWORD = "cluster-test-pi-password";
const CONNECTION = "cluster-test";
const DEVICES = 10;
const EVENTS_PER_PUBLISH = 100;
const PUBLISHERS = 3;
const TIME_BASE = Date.UTC(2025, 0, 1);

interface Jsz {
  account_details?: Array<{
    stream_detail?: Array<{
      name: string;
      state?: { messages?: number };
      cluster?: { leader?: string };
      consumer_detail?: Array<{ name: string; cluster?: { leader?: string }; num_pending?: number; num_ack_pending?: number }>;
    }>;
  }>;
}

function startNatsNode(network: StartedNetwork, name: string): Promise<StartedTestContainer> {
  return new GenericContainer(NATS_IMAGE)
    .withNetwork(network)
    .withNetworkAliases(name)
    .withName(`meridian-cluster-test-${name}-${process.pid}`)
    .withCopyFilesToContainer(
      ["nats-cluster.conf", "nats-users.conf"].map((f) => ({ source: join(REPO_ROOT, "deploy", "compose", f), target: `/etc/nats/${f}` })),
    )
    .withEnvironment({ NATS_SERVER_NAME: name, ...Object.fromEntries(Object.values(NATS_USERS).map((u) => [u.env, u.password])) })
    .withCommand(["--config", "/etc/nats/nats-cluster.conf"])
    .withExposedPorts(4222, 8222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
}

/** The node's monitoring URL; read again each time, since a node started again after a kill gets new host ports. */
async function monitorUrl(node: StartedTestContainer): Promise<string> {
  const out = await docker("port", node.getId(), "8222/tcp");
  const port = out.split("\n")[0]?.trim().split(":").pop();
  return `http://127.0.0.1:${port}`;
}

function event(n: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${CONNECTION}-${n}`,
    source: { platform: Platform.API, connection: CONNECTION, device: `dev-${n % DEVICES}` },
    // One value per event in its device's container, indexed by this time: distinct per device.
    observedTime: timestampFromDate(new Date(TIME_BASE + n)),
    points: [
      { name: "pressure", value: { case: "doubleValue", value: 4 + (n % 100) / 100 } },
      { name: "temperature", value: { case: "doubleValue", value: 80 + (n % 50) / 10 } },
      { name: "cycle_count", value: { case: "intValue", value: BigInt(n) } },
      { name: "running", value: { case: "boolValue", value: n % 7 !== 0 } },
    ],
  });
}

describe("system: a 3-node JetStream cluster loses and duplicates nothing when nodes die", () => {
  let network: StartedNetwork;
  const nats = new Map<string, StartedTestContainer>();
  let omfEmulator: StartedTestContainer;
  let omfSender: StartedTestContainer;
  let gateway: StartedTestContainer;

  const running = new Set(NODES);

  async function leaderOf(stream: string, consumer?: string): Promise<string | undefined> {
    for (const name of running) {
      try {
        const res = await fetch(`${await monitorUrl(nats.get(name)!)}/jsz?${consumer ? "consumers" : "streams"}=true`);
        const jsz = (await res.json()) as Jsz;
        const s = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((x) => x.name === stream);
        const leader = consumer ? s?.consumer_detail?.find((c) => c.name === consumer)?.cluster?.leader : s?.cluster?.leader;
        if (leader && running.has(leader)) return leader;
      } catch {
        // this node is not answering yet; ask another
      }
    }
    return undefined;
  }

  /** The route consumer's messages not yet delivered plus those delivered and not acked, as its leader sees them. */
  async function consumerOutstanding(consumer: string): Promise<number | undefined> {
    const leader = await leaderOf("TELEMETRY", consumer);
    if (!leader) return undefined;
    const res = await fetch(`${await monitorUrl(nats.get(leader)!)}/jsz?consumers=true`);
    const jsz = (await res.json()) as Jsz;
    const c = jsz.account_details
      ?.flatMap((a) => a.stream_detail ?? [])
      .find((x) => x.name === "TELEMETRY")
      ?.consumer_detail?.find((x) => x.name === consumer);
    return c ? (c.num_pending ?? 0) + (c.num_ack_pending ?? 0) : undefined;
  }

  /** The stream's message count, as its leader sees it. */
  async function streamMessages(stream: string): Promise<number | undefined> {
    const leader = await leaderOf(stream);
    if (!leader) return undefined;
    const jsz = (await (await fetch(`${await monitorUrl(nats.get(leader)!)}/jsz?streams=true`)).json()) as Jsz;
    return jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((x) => x.name === stream)?.state?.messages;
  }

  async function allHealthy(): Promise<void> {
    await untilUp("every NATS node healthy", async () => {
      for (const name of NODES) if (!(await fetch(`${await monitorUrl(nats.get(name)!)}/healthz`)).ok) return false;
      return true;
    });
  }

  async function kill(name: string): Promise<void> {
    running.delete(name);
    await docker("kill", "--signal", "KILL", nats.get(name)!.getId());
  }

  async function start(name: string): Promise<void> {
    await docker("start", nats.get(name)!.getId());
    running.add(name);
    await allHealthy();
  }

  async function piValues(): Promise<Array<{ container: string; timestamp: string }>> {
    const res = await fetch(`${baseUrl(omfEmulator, 8443)}/_emulator/state?scope=pi`);
    const state = (await res.json()) as { scopes: { pi: { containers: Record<string, { values?: Array<Record<string, unknown>> }> } } };
    return Object.entries(state.scopes.pi.containers).flatMap(([container, c]) =>
      (c.values ?? []).map((v) => ({ container, timestamp: String(v.timestamp ?? v.Timestamp ?? v.time) })),
    );
  }

  beforeAll(async () => {
    network = await new Network().start();
    const [nodes, emulator] = await Promise.all([
      Promise.all(NODES.map((name) => startNatsNode(network, name))),
      startService(
        network,
        "emulators/omf",
        "omf-emulator",
        {
          OMF_EMULATOR_TLS: "false",
          OMF_EMULATOR_PI_PASSWORD: PI_PASSWORD,
          // Every value sent is kept, even at a time the container has: a duplicate is counted, not overwritten.
          OMF_EMULATOR_PI_CREATE_MODE: "insert",
          HEALTHCHECK_URL: "http://127.0.0.1:8443/_emulator/health",
        },
        8443,
        "/_emulator/health",
      ),
    ]);
    for (const [i, name] of NODES.entries()) nats.set(name, nodes[i]!);
    omfEmulator = emulator;
    await allHealthy();
    const natsEnv = { NATS_URL: NODES.map((n) => `nats://${n}:4222`).join(","), NATS_STREAM_REPLICAS: "3" };
    omfSender = await startService(
      network,
      "services/omf-sender",
      "omf-sender",
      {
        ...natsEnv,
        OMF_CREDENTIALS_KEY: Buffer.alloc(32, 7).toString("base64"),
        OMF_ALLOW_INSECURE_ENDPOINTS: "true",
        OMF_ALLOWED_HOSTS: "omf-emulator",
      },
      8081,
    );
    gateway = await startService(network, "services/gateway", "gateway", { ...natsEnv, OMF_SENDER_URL: "http://omf-sender:8081" });
  });

  afterAll(async () => {
    for (const c of [gateway, omfSender, omfEmulator, ...nats.values()]) await c?.stop().catch(() => {});
    await network?.stop().catch(() => {});
  });

  it("every event the gateway acknowledged arrives at PI once, across a kill of the stream leader and then of another node", async () => {
    const transport = createConnectTransport({ interceptors: [testCredential()], baseUrl: baseUrl(gateway), httpVersion: "1.1" });
    const omf = createClient(OmfSenderService, transport);
    const routes = createClient(RouteService, transport);
    const telemetry = createClient(TelemetryService, transport);
    await omf.createEndpoint({
      endpoint: {
        id: "pi",
        kind: EndpointKind.PI,
        url: "http://omf-emulator:8443/piwebapi",
        allowHttp: true,
        username: "meridian",
        secret: PI_PASSWORD,
      },
    });
    await routes.createRoute({
      route: {
        id: "cluster-to-pi",
        source: { platform: Platform.API, connection: CONNECTION },
        sink: { platform: Platform.OMF, target: "pi" },
      },
    });
    // The route's consumer exists once omf-sender has picked the route up.
    await untilUp("omf-sender's consumer of the route", async () => (await leaderOf("TELEMETRY", "omf-cluster-to-pi")) !== undefined);

    let next = 0;
    let acked = 0;
    const failures: string[] = [];
    let publishing = true;
    const publisher = async () => {
      while (publishing) {
        const from = next;
        next += EVENTS_PER_PUBLISH;
        const events = Array.from({ length: EVENTS_PER_PUBLISH }, (_, k) => event(from + k));
        try {
          await telemetry.publish({ events });
          acked += events.length;
        } catch (err) {
          failures.push(`events ${from}..${from + EVENTS_PER_PUBLISH - 1}: ${(err as Error).message}`);
        }
      }
    };
    const publishers = Array.from({ length: PUBLISHERS }, publisher);
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

    await pause(3000);
    const first = await leaderOf("TELEMETRY");
    expect(first, "the telemetry stream's leader").toBeDefined();
    await kill(first!);
    await pause(8000);
    await start(first!);
    await pause(2000);
    const consumerLeader = await leaderOf("TELEMETRY", "omf-cluster-to-pi");
    const second = consumerLeader && consumerLeader !== first ? consumerLeader : await leaderOf("TELEMETRY");
    expect(second, "a second node to kill").toBeDefined();
    await kill(second!);
    await pause(8000);
    await start(second!);
    await pause(3000);
    publishing = false;
    await Promise.all(publishers);

    if (failures.length > 0) {
      // What the gateway's bus went through (disconnects, reconnects, to which node) is what explains a failed publish.
      const lines = (await containerLogs(gateway)).split("\n").filter((l) => /NATS|publish/i.test(l));
      console.warn(`gateway's bus:\n${lines.join("\n")}`);
    }
    expect(failures).toEqual([]);
    expect(acked).toBeGreaterThan(1000);
    await untilUp(`${acked} values in PI`, async () => (await piValues()).length >= acked, 120_000);
    // omf-sender acks a message only after PI accepted it: with nothing pending or unacked on its consumer, no
    // redelivery (and so no duplicate) can still be on its way.
    await untilUp("omf-sender's consumer drained", async () => (await consumerOutstanding("omf-cluster-to-pi")) === 0);
    const values = await piValues();
    const distinct = new Set(values.map((v) => `${v.container}@${Date.parse(v.timestamp)}`)).size;
    // Where a difference came from: a message stored twice in the stream, or one message written twice by omf-sender.
    const diagnosis =
      `PI holds ${values.length} values (${distinct} distinct) for ${acked} acknowledged; the stream holds ` +
      `${await streamMessages("TELEMETRY")} messages for ${acked / EVENTS_PER_PUBLISH} acknowledged publish calls`;
    if (values.length !== acked || distinct !== acked) {
      const lines = (await containerLogs(omfSender)).split("\n").filter((l) => /ledger|redeliver|fail|retry/i.test(l));
      console.warn(`${diagnosis}\nomf-sender:\n${lines.slice(-60).join("\n")}`);
    }
    expect({ values: values.length, distinct }, diagnosis).toEqual({ values: acked, distinct: acked });
    const times = values.map((v) => Date.parse(v.timestamp) - TIME_BASE).sort((a, b) => a - b);
    expect([times[0], times.at(-1)]).toEqual([0, acked - 1]);
  });
});

import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AckOption, IdigiListenerService, PayloadFormat } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { EndpointKind, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TEST_KEYS, testCredential } from "@meridian/testing";
import { Network, type StartedNetwork, type StartedTestContainer } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, containerLogs, docker, NATS_USERS, startNats, startService, untilUp } from "./harness.js";

/**
 * Secrets of this run, each a value no log line has reason to hold: the PI password (emulator and endpoint), the OMF
 * credentials key, the NATS passwords, the API keys the test calls with. The last test reads every container's log.
 */
const PI_PASSWORD = `pi-${randomBytes(12).toString("hex")}`;
const OMF_CREDENTIALS_KEY = randomBytes(32).toString("base64");

/** The iDigi emulator's devices in `sequence` clock: seq n happens at this time plus n seconds, with value 20 + (n % 100) / 10. */
const TIME_BASE = Date.UTC(2024, 0, 1);

interface PiValue {
  [property: string]: unknown;
}

/**
 * The first end-to-end slice: iDigi emulator → idigi-listener → NATS → omf-sender → PI emulator, set up and
 * observed only through the gateway (plus the emulators' own device and read-back sides).
 */
describe("system: iDigi → NATS → PI through the gateway", () => {
  let network: StartedNetwork;
  let nats: StartedTestContainer;
  let omfEmulator: StartedTestContainer;
  let idigiEmulator: StartedTestContainer;
  let omfSender: StartedTestContainer;
  let idigiListener: StartedTestContainer;
  let gateway: StartedTestContainer;
  let monitorId = "";
  let emitted = 0;

  const clients = () => {
    const transport = createConnectTransport({ interceptors: [testCredential()], baseUrl: baseUrl(gateway), httpVersion: "1.1" });
    return {
      omf: createClient(OmfSenderService, transport),
      idigi: createClient(IdigiListenerService, transport),
      routes: createClient(RouteService, transport),
      status: createClient(StatusService, transport),
    };
  };

  /** Every value the PI emulator holds, across containers. */
  async function piValues(): Promise<PiValue[]> {
    const res = await fetch(`${baseUrl(omfEmulator, 8443)}/_emulator/state?scope=pi`);
    const state = (await res.json()) as { scopes: { pi: { containers: Record<string, { values?: PiValue[] }> } } };
    return Object.values(state.scopes.pi.containers).flatMap((c) => c.values ?? []);
  }

  async function emit(count: number): Promise<void> {
    const res = await fetch(`${baseUrl(idigiEmulator)}/_emulator/emit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ monitorId: Number(monitorId), topic: "DataPoint", count }),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    emitted += count;
  }

  /** Exactly `emitted` values, one per emulator sequence number, each with the value that sequence number had. */
  async function expectExactlyEmitted(what: string): Promise<void> {
    await untilUp(`${emitted} values in PI (${what})`, async () => (await piValues()).length >= emitted, 180_000);
    // Linger: a duplicate would arrive right behind.
    await new Promise((r) => setTimeout(r, 3000));
    const values = await piValues();
    const seqs = values.map((v) => {
      const ts = Date.parse(String(v.timestamp ?? v.Timestamp ?? v.time));
      const seq = Math.round((ts - TIME_BASE) / 1000);
      const numbers = Object.entries(v)
        .filter(([k, x]) => typeof x === "number" && k !== "timestamp")
        .map(([, x]) => x as number);
      expect(numbers, `value at ${new Date(ts).toISOString()}`).toContainEqual(20 + (seq % 100) / 10);
      return seq;
    });
    expect(values.length, what).toBe(emitted);
    expect(new Set(seqs).size, `${what}: distinct timestamps`).toBe(emitted);
  }

  beforeAll(async () => {
    network = await new Network().start();
    nats = await startNats(network);
    [omfEmulator, idigiEmulator] = await Promise.all([
      startService(
        network,
        "emulators/omf",
        "omf-emulator",
        { OMF_EMULATOR_TLS: "false", OMF_EMULATOR_PI_PASSWORD: PI_PASSWORD, HEALTHCHECK_URL: "http://127.0.0.1:8443/_emulator/health" },
        8443,
        "/_emulator/health",
      ),
      startService(
        network,
        "emulators/idigi",
        "idigi-emulator",
        {
          IDIGI_EMU_HTTP_PORT: "8080",
          IDIGI_EMU_TLS: "false",
          IDIGI_EMU_CLOCK: "sequence",
          HEALTHCHECK_URL: "http://127.0.0.1:8080/_emulator/state",
        },
        8080,
        "/_emulator/state",
      ),
    ]);
    const natsEnv = { NATS_URL: "nats://nats:4222" };
    [omfSender, idigiListener] = await Promise.all([
      startService(
        network,
        "services/omf-sender",
        "omf-sender",
        {
          ...natsEnv,
          OMF_CREDENTIALS_KEY,
          // The emulator speaks plain http: an operator's allowance, and its host on the outbound allow-list.
          OMF_ALLOW_INSECURE_ENDPOINTS: "true",
          OMF_ALLOWED_HOSTS: "omf-emulator",
        },
        8081,
      ),
      startService(
        network,
        "services/idigi-listener",
        "idigi-listener",
        {
          ...natsEnv,
          IDIGI_URL: "http://idigi-emulator:8080",
          IDIGI_USERNAME: "emulator",
          IDIGI_PASSWORD: "emulator",
          // The emulator speaks plain HTTP and TCP: credentials in clear are an operator's allowance.
          IDIGI_ALLOW_INSECURE: "true",
        },
        8082,
      ),
    ]);
    gateway = await startService(network, "services/gateway", "gateway", {
      ...natsEnv,
      OMF_SENDER_URL: "http://omf-sender:8081",
      IDIGI_LISTENER_URL: "http://idigi-listener:8082",
    });
  });

  afterAll(async () => {
    for (const c of [gateway, idigiListener, omfSender, idigiEmulator, omfEmulator, nats]) await c?.stop().catch(() => {});
    await network?.stop().catch(() => {});
  });

  it("sets up endpoint, monitor and route through the gateway, and N emulator events land in PI exactly once", async () => {
    const { omf, idigi, routes } = clients();
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
    const check = await omf.checkEndpoint({ id: "pi" });
    expect(check.reachable && check.authenticated, check.error).toBe(true);
    const created = await idigi.createMonitor({
      topics: ["DataPoint"],
      format: PayloadFormat.JSON,
      batchSize: 50,
      batchDurationSeconds: 1,
      ackOption: AckOption.EXPLICIT,
      autoReplay: true,
      startSession: true,
    });
    monitorId = created.monitor!.id;
    await routes.createRoute({
      route: {
        id: "idigi-to-pi",
        source: { platform: Platform.IDIGI, connection: monitorId },
        sink: { platform: Platform.OMF, target: "pi" },
      },
    });
    await untilUp("an active push session", async () =>
      (await idigi.listSessions({})).sessions.some((s) => s.monitorId === monitorId && s.state === 2),
    );

    await emit(500);
    await expectExactlyEmitted("steady state");
  });

  it("loses and duplicates nothing while PI is unreachable for 20 s", async () => {
    await docker("pause", omfEmulator.getId());
    await emit(300);
    await new Promise((r) => setTimeout(r, 20_000));
    await docker("unpause", omfEmulator.getId());
    await expectExactlyEmitted("after a 20 s PI outage");
  });

  it("loses and duplicates nothing when omf-sender is killed with SIGKILL mid-stream and restarted", async () => {
    await emit(1000);
    await docker("kill", "--signal", "KILL", omfSender.getId());
    await emit(300);
    await docker("start", omfSender.getId());
    await expectExactlyEmitted("after kill -9 of omf-sender");
  });

  it("loses and duplicates nothing across a NATS restart", async () => {
    await emit(300);
    await docker("restart", nats.getId());
    await emit(300);
    await expectExactlyEmitted("after a NATS restart");
  });

  it("shows per-route counters in the gateway's status", async () => {
    const { status } = clients();
    await untilUp("omf-sender reporting the route", async () => {
      const res = await status.getStatus({});
      const pipe = res.services.flatMap((s) => s.pipelines).find((p) => p.name.includes("idigi-to-pi"));
      return (pipe?.delivered ?? 0n) > 0n;
    });
  });

  it("no container's log holds a secret of this run (passwords, keys, API keys)", async () => {
    const secrets = {
      PI_PASSWORD,
      OMF_CREDENTIALS_KEY,
      ...Object.fromEntries(Object.entries(NATS_USERS).map(([user, u]) => [`NATS password of ${user}`, u.password])),
      ...Object.fromEntries(Object.entries(TEST_KEYS).map(([name, key]) => [`API key ${name}`, key])),
    };
    const leaks: string[] = [];
    let lines = 0;
    for (const [name, c] of Object.entries({ gateway, idigiListener, omfSender, idigiEmulator, omfEmulator, nats })) {
      const log = await containerLogs(c);
      lines += log.split("\n").length;
      for (const [what, value] of Object.entries(secrets)) if (log.includes(value)) leaks.push(`${name}: ${what}`);
    }
    expect(lines).toBeGreaterThan(20);
    expect(leaks).toEqual([]);
  });
});

/** What idigi-listener's integration tests share: the emulator's admin API, a bus reader, a trap server, an own nats-server. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import type { Bus } from "@meridian/bus";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { IdigiEmulator } from "@meridian/emulator-idigi";
import { type Collected, collectInBackground, freePort, startNatsServer } from "@meridian/testing";

/** The emulator's admin API, as a test (or an operator) drives it. */
export async function admin(emu: IdigiEmulator, path: string, body?: unknown, method = "POST"): Promise<Record<string, unknown>> {
  const res = await fetch(`${emu.httpUrl}/_emulator/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

export interface EmulatorMonitorState {
  eventsAcked: number;
  eventsReplayed: number;
  eventsSent: number;
  unackedBlocks: number;
  queued: number;
  status: string;
  blocksSent: number;
  session: number | null;
}

export interface EmulatorSession {
  id: number;
  monitorId: number | null;
  tls: boolean;
  established: boolean;
}

/** One monitor as the emulator (the platform side of the wire) sees it. */
export async function monitorState(emu: IdigiEmulator, id: string): Promise<EmulatorMonitorState> {
  const state = (await admin(emu, "state", undefined, "GET")) as { monitors: Array<EmulatorMonitorState & { id: number }> };
  const m = state.monitors.find((x) => String(x.id) === id);
  if (!m) throw new Error(`emulator has no monitor ${id}`);
  return m;
}

/** The push connections the emulator holds for a monitor. */
export async function emulatorSessions(emu: IdigiEmulator, id: string): Promise<EmulatorSession[]> {
  const state = (await admin(emu, "state", undefined, "GET")) as { sessions: EmulatorSession[] };
  return state.sessions.filter((s) => String(s.monitorId) === id);
}

/** Every event of a monitor on the bus from `since`, collected in the background by an independent reader. */
export function collect(bus: Bus, monitorId: string, since: Date): Collected<TelemetryEvent> {
  return collectInBackground((signal) => bus.subscribe({ platform: Platform.IDIGI, connection: monitorId }, { startTime: since, signal }));
}

/** A TCP server that accepts and records, and never answers: where a listener must not connect. */
export interface TrapServer {
  host: string;
  port: number;
  connections: number;
  /** Everything received, all connections together. */
  received(): Buffer;
  close(): Promise<void>;
}

export async function startTrapServer(): Promise<TrapServer> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const trap = { host: "127.0.0.1", port: 0, connections: 0, received: () => Buffer.concat(chunks), close: async () => {} };
  const server = net.createServer((socket) => {
    trap.connections++;
    sockets.add(socket);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, trap.host);
  await once(server, "listening");
  trap.port = (server.address() as AddressInfo).port;
  trap.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return trap;
}

/** A nats-server of a test's own, which can be down for a while and come back with its store. */
export interface OwnNatsServer {
  url: string;
  down(): void;
  up(): void;
  close(): void;
}

export async function startOwnNatsServer(): Promise<OwnNatsServer> {
  const port = await freePort();
  // A store directory that a started and stopped server leaves behind.
  const seed = await startNatsServer();
  await seed.stop(true);
  let proc: ChildProcess | undefined;
  const up = () => {
    proc = spawn(process.env.NATS_SERVER_BIN ?? "nats-server", ["-js", "-sd", seed.storeDir, "-a", "127.0.0.1", "-p", String(port)], {
      stdio: "ignore",
    });
  };
  const down = () => {
    proc?.kill("SIGKILL");
    proc = undefined;
  };
  up();
  return { url: `nats://127.0.0.1:${port}`, up, down, close: down };
}

/** One series of the Prometheus text at `url`/metrics, or undefined when it is not there. */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",");
  const line = text.split("\n").find((l) => l.startsWith(want ? `${name}{${want}}` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** A TCP relay to `host:port` that a test can cut: what one instance sees of the platform, until its host dies. */
export interface TcpRelay {
  port: number;
  /** Drops every connection through the relay at once, without a word, and refuses new ones. */
  cut(): Promise<void>;
}

export async function startTcpRelay(host: string, port: number): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  };
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, host);
    track(inbound);
    track(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    cut: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** A throwaway 3-node JetStream cluster for integration tests: the production shape (R3 streams and KV), on loopback. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./nats-server.js";
import { until } from "./wait.js";

export interface NatsClusterNode {
  /** server_name, as JetStream names a stream's leader and replicas. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** Monitoring endpoint (`/healthz`, `/jsz`). */
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** False between kill() and start(). */
  readonly running: boolean;
  /** The running process's pid (benchmarks sample its CPU and RSS); undefined while it is not running. */
  readonly pid: number | undefined;
  /** Kills the node (SIGKILL by default: a crash); its store stays for start(). */
  kill(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same ports and store, and waits until it is ready to serve clients. */
  start(): Promise<void>;
  /** What the node has logged since it (last) started. */
  output(): string;
}

export interface NatsCluster {
  readonly nodes: readonly NatsClusterNode[];
  /** The three client URLs, as a service's NATS_URL takes them (comma-separated) or Bus's `servers` (the array). */
  readonly urls: string[];
  node(name: string): NatsClusterNode;
  /**
   * The stream's leader as a running node reports it, or undefined while there is none (an election). Read from the
   * monitoring endpoint, so the helper needs no NATS client.
   */
  streamLeader(stream: string): Promise<string | undefined>;
  /** A durable consumer's leader as a running node reports it, or undefined while there is none. */
  consumerLeader(stream: string, durable: string): Promise<string | undefined>;
  /** Waits until a running node names a leader for the stream (other than `not`, when given) and returns it. */
  waitForStreamLeader(stream: string, options?: { not?: string; timeoutMs?: number }): Promise<NatsClusterNode>;
  /** Waits until every running node says it is healthy (JetStream current: meta leader known, its streams caught up). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every node and removes the stores. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** nats-server configuration added to every node's own (e.g. an `authorization` block or `sync_interval`). */
  config?: string;
  env?: Record<string, string>;
}

interface JszStream {
  name: string;
  cluster?: { leader?: string };
  consumer_detail?: Array<{ name: string; cluster?: { leader?: string } }>;
}
interface Jsz {
  account_details?: Array<{ stream_detail?: JszStream[] }>;
}

/**
 * Starts three JetStream nats-server processes (the binary of `startNatsServer`) routed into one cluster, each with
 * its own ports and store directory, and waits until the cluster has a JetStream meta leader. Create streams and KV
 * buckets with 3 replicas on it (Bus `streams.replicas: 3`).
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const names = ["n1", "n2", "n3"];
  const ports: Array<{ client: number; cluster: number; monitor: number }> = [];
  for (const _ of names) ports.push({ client: await freePort(), cluster: await freePort(), monitor: await freePort() });
  const root = mkdtempSync(join(tmpdir(), "meridian-nats-cluster-"));
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(", ");

  const nodes = names.map((name, i) => {
    const p = ports[i]!;
    const storeDir = join(root, name);
    const file = join(root, `${name}.conf`);
    writeFileSync(
      file,
      [
        `server_name: ${name}`,
        `listen: "127.0.0.1:${p.client}"`,
        `http: "127.0.0.1:${p.monitor}"`,
        `jetstream { store_dir: "${storeDir}" }`,
        // Routes to itself included: the same list on every node, as in the deployments; the server skips its own.
        `cluster { name: meridian-test, listen: "127.0.0.1:${p.cluster}", routes: [${routes}] }`,
        options.config ?? "",
      ].join("\n"),
    );
    return new ClusterNode(name, p.client, p.monitor, storeDir, file, options.env ?? {});
  });

  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no node ${name} in the cluster (${names.join(", ")})`);
      return n;
    },
    async streamLeader(stream) {
      for (const n of nodes) {
        if (!n.running) continue;
        const leader = await n.leader(stream).catch(() => undefined);
        if (leader) return leader;
      }
      return undefined;
    },
    async consumerLeader(stream, durable) {
      for (const n of nodes) {
        if (!n.running) continue;
        const leader = await n.leader(stream, durable).catch(() => undefined);
        if (leader) return leader;
      }
      return undefined;
    },
    async waitForStreamLeader(stream, { not, timeoutMs = 30_000 } = {}) {
      let found: string | undefined;
      await until(
        async () => {
          found = await cluster.streamLeader(stream);
          return found !== undefined && found !== not && cluster.node(found).running;
        },
        { timeoutMs, intervalMs: 200, what: `a leader of stream ${stream}${not ? ` other than ${not}` : ""}` },
      );
      return cluster.node(found!);
    },
    async waitHealthy(timeoutMs = 30_000) {
      await until(async () => (await Promise.all(nodes.filter((n) => n.running).map((n) => n.healthy()))).every(Boolean), {
        timeoutMs,
        intervalMs: 200,
        what: "every running node of the cluster healthy",
      });
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await cluster.waitHealthy(60_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

class ClusterNode implements NatsClusterNode {
  private proc: ChildProcess | undefined;
  private log = "";

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly monitorPort: number,
    readonly storeDir: string,
    private readonly configFile: string,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.monitorPort}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.proc?.pid : undefined;
  }

  output(): string {
    return this.log;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.log = "";
    const child = spawn(process.env.NATS_SERVER_BIN ?? "nats-server", ["-c", this.configFile], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...this.env },
    });
    this.proc = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server ${this.name} did not start:\n${this.log}`)), 20_000);
      const onData = (chunk: Buffer) => {
        this.log += chunk.toString();
        if (this.log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server ${this.name} exited with ${code}:\n${this.log}`));
      });
    });
  }

  async kill(signal: "SIGTERM" | "SIGKILL" = "SIGKILL"): Promise<void> {
    const child = this.proc;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill(signal);
    });
  }

  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.monitorUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      return res.ok;
    } catch {
      return false;
    }
  }

  /** The leader of the stream, or of its consumer `durable`, as this node sees it. */
  async leader(stream: string, durable?: string): Promise<string | undefined> {
    const res = await fetch(`${this.monitorUrl}/jsz?${durable ? "consumers" : "streams"}=true`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    const jsz = (await res.json()) as Jsz;
    for (const account of jsz.account_details ?? []) {
      for (const s of account.stream_detail ?? []) {
        if (s.name !== stream) continue;
        const of = durable === undefined ? s : s.consumer_detail?.find((c) => c.name === durable);
        return of?.cluster?.leader || undefined;
      }
    }
    return undefined;
  }
}

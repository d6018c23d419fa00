/**
 * npm run bench:idle — the idle RSS of every Meridian service, the issue's "≤ 80 MB per service" figure. Each service
 * runs as deployed, its own process (dist/main.js, started by startProcess: the images' Node options, then
 * BENCH_SERVICE_NODE_OPTIONS), on
 * one throwaway nats-server, with the settings it needs to start and nothing declared (no routes, endpoints, monitors,
 * applications or twins): the platform services first, then the gateway with every backend URL set, as compose runs
 * them. After all are ready, BENCH_IDLE_SECONDS (30) of nothing; then VmRSS of each (/proc/<pid>/status), and VmHWM, the
 * most each held on the way (its start), and what the RSS is made of: RssAnon, RssFile (the node binary, shared by
 * every process running it) and PSS (see memory()). The platforms are never called: an idle service has no reason to.
 * Appends one JSON object to tests/bench/results/idle.jsonl and prints it; BENCH_IDLE_MAX_MIB (unset: no verdict) makes
 * the run fail (exit 1) when a service's idle RSS is above it.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, startNatsServer } from "@meridian/testing";
import { envNumber } from "./common.js";
import { type RunningProcess, SERVICE_NODE_OPTIONS, startProcess } from "./processes.js";
import { appendResult } from "./results.js";

const IDLE_SECONDS = envNumber("BENCH_IDLE_SECONDS", 30, 1, 3600);
const MAX_MIB = process.env.BENCH_IDLE_MAX_MIB ? envNumber("BENCH_IDLE_MAX_MIB", 80, 1, 100_000) : undefined;

/**
 * VmRSS and VmHWM of a process, in MiB, and what the RSS is made of: RssAnon (the process's own: heap, stacks, malloc)
 * and RssFile (pages of files it maps, nearly all the node binary: shared by every process running it, and in
 * containers by every container of one image layer), and PSS from smaps_rollup (each shared page divided among the
 * processes mapping it): the memory the process adds, where RSS counts the shared binary once per process.
 */
function memory(pid: number): { rssMiB: number; startPeakMiB: number; rssAnonMiB: number; rssFileMiB: number; pssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const mib = (text: string, field: string) =>
    Math.round((Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)?.[1] ?? 0) / 1024) * 10) / 10;
  return {
    rssMiB: mib(status, "VmRSS"),
    startPeakMiB: mib(status, "VmHWM"),
    rssAnonMiB: mib(status, "RssAnon"),
    rssFileMiB: mib(status, "RssFile"),
    pssMiB: mib(rollup, "Pss"),
  };
}

/** What each platform service needs to start without its platform: credentials that are never used, on loopback. */
function platformSettings(dir: string): Record<string, Record<string, string>> {
  const keyFile = join(dir, "oci-key.pem");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  const ociConfig = join(dir, "oci-config");
  writeFileSync(
    ociConfig,
    "[DEFAULT]\nuser=ocid1.user.oc1..idle\nfingerprint=00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n" +
      `tenancy=ocid1.tenancy.oc1..idle\nregion=eu-frankfurt-1\nkey_file=${keyFile}\n`,
  );
  const key = () => randomBytes(32).toString("base64");
  return {
    "omf-sender": { OMF_CREDENTIALS_KEY: key() },
    "idigi-listener": { IDIGI_URL: "http://127.0.0.1:9", IDIGI_USERNAME: "idle", IDIGI_PASSWORD: "idle", IDIGI_ALLOW_INSECURE: "true" },
    "omnia-reader": {
      OMNIA_AUTH_MODE: "client-secret",
      AZURE_TENANT_ID: "00000000-0000-0000-0000-000000000001",
      AZURE_CLIENT_ID: "00000000-0000-0000-0000-000000000002",
      AZURE_CLIENT_SECRET: "idle",
      AZURE_AUTHORITY_HOST: "https://127.0.0.1:9/",
    },
    "iotc-bridge": { IOTC_CREDENTIALS_KEY: key() },
    "oci-twin-manager": { OCI_CREDENTIALS_KEY: key(), OCI_AUTH: "api_key", OCI_CONFIG_FILE: ociConfig },
  };
}

/** The gateway's setting naming each platform service's URL. */
const GATEWAY_URL_SETTING: Record<string, string> = {
  "omf-sender": "OMF_SENDER_URL",
  "idigi-listener": "IDIGI_LISTENER_URL",
  "omnia-reader": "OMNIA_READER_URL",
  "iotc-bridge": "IOTC_BRIDGE_URL",
  "oci-twin-manager": "OCI_TWIN_MANAGER_URL",
};

async function main() {
  const nats = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), "bench-idle-"));
  const running: RunningProcess[] = [];
  try {
    const gatewayEnv: Record<string, string> = {};
    for (const [name, settings] of Object.entries(platformSettings(dir))) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      running.push(await startProcess(name, `services/${name}`, { PORT: String(port), NATS_URL: nats.url, ...settings }, `${url}/readyz`));
      gatewayEnv[GATEWAY_URL_SETTING[name]!] = url;
    }
    const gatewayPort = await freePort();
    running.unshift(
      await startProcess(
        "gateway",
        "services/gateway",
        { PORT: String(gatewayPort), NATS_URL: nats.url, ...gatewayEnv },
        `http://127.0.0.1:${gatewayPort}/readyz`,
      ),
    );
    await sleep(IDLE_SECONDS * 1000);
    const services = Object.fromEntries(running.map((p) => [p.name, memory(p.proc.pid!)]));
    const over = MAX_MIB === undefined ? [] : Object.entries(services).filter(([, m]) => m.rssMiB > MAX_MIB);
    appendResult("idle", {
      idleSeconds: IDLE_SECONDS,
      serviceNodeOptions: `${SERVICE_NODE_OPTIONS} ${process.env.BENCH_SERVICE_NODE_OPTIONS ?? ""}`.trim(),
      services,
      ...(MAX_MIB === undefined ? {} : { maxMiB: MAX_MIB, over: over.map(([name]) => name) }),
    });
    if (over.length > 0) {
      console.error(`idle RSS above ${MAX_MIB} MiB: ${over.map(([name, m]) => `${name} ${m.rssMiB}`).join(", ")}`);
      process.exitCode = 1;
    }
  } finally {
    await Promise.all(running.map((p) => p.stop()));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

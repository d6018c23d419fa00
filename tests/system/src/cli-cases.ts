import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OMF_CONTAINERS_JSON, OMF_DATA_JSON, OMF_TYPES_JSON } from "@meridian/fixtures/omf-seed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, untilUp } from "./harness.js";

/**
 * Every `meridian` verb run as its users run it (`node cli/bin/meridian.js …`, the built CLI, a process of its own)
 * against the compose stack the caller brought up: the gateway on 127.0.0.1:8080 with the development key, the
 * platform emulators on their published ports. Each case asserts on the table a person reads and on the JSON a script
 * reads, and on the exit code. Cases use names of their own (routes, OMF endpoints and Data Hub namespaces, an Omnia
 * series, a twin, monitors) so that they run side by side and leave the compose test's own data flows alone.
 */
export interface ComposeStack {
  /** `docker-compose -p <project>` (or `docker compose -p …`). */
  compose: string[];
  env: Record<string, string>;
}

const GATEWAY = "http://127.0.0.1:8080";
const OMF_EMULATOR = "http://127.0.0.1:8443";
const BIN = join(REPO_ROOT, "cli", "bin", "meridian.js");
/** The exit codes of cli/src/kit/exit.ts, as a script reads them. */
const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3, auth: 4, notFound: 5 } as const;

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve) =>
    execFile(
      file,
      args,
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    ),
  );
}

/** A verb that runs until Ctrl-C (tail without --limit, watch): its output so far, and stop() sends SIGINT. */
interface Running {
  out(): string;
  err(): string;
  stop(): Promise<Ran>;
}

export function cliCases(stack: () => ComposeStack): void {
  describe("the meridian CLI against the stack", () => {
    let key: string;
    const dir = mkdtempSync(join(tmpdir(), "meridian-cli-system-"));
    const cliEnv = (extra: Record<string, string> = {}) => ({
      // No profile file of the machine's user is read, and no colour: the output is what a script reads.
      MERIDIAN_CONFIG: join(dir, "no-profile.yaml"),
      MERIDIAN_GATEWAY_URL: GATEWAY,
      MERIDIAN_API_KEY: key,
      NO_COLOR: "1",
      ...extra,
    });
    const meridian = (args: string[], extra: Record<string, string> = {}) => exec(process.execPath, [BIN, ...args], cliEnv(extra));
    const json = async <T = Record<string, unknown>>(args: string[], extra: Record<string, string> = {}): Promise<T> => {
      const r = await meridian([...args, "-o", "json"], extra);
      expect(r.code, `meridian ${args.join(" ")} -o json: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as T;
    };
    const ok = async (args: string[], extra: Record<string, string> = {}): Promise<string> => {
      const r = await meridian(args, extra);
      expect(r.code, `meridian ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    // Watches a failed case left running are stopped with the cases.
    const running = new Set<ChildProcess>();
    const start = (args: string[]): Running => {
      const child: ChildProcess = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...cliEnv() } });
      running.add(child);
      child.on("exit", () => running.delete(child));
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (c) => (stdout += c));
      child.stderr!.on("data", (c) => (stderr += c));
      const exited = new Promise<number>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : -1))));
      return {
        out: () => stdout,
        err: () => stderr,
        stop: async () => {
          child.kill("SIGINT");
          const code = await exited;
          return { code, stdout, stderr };
        },
      };
    };

    beforeAll(async () => {
      const { compose, env } = stack();
      const r = await exec(compose[0]!, [...compose.slice(1), "exec", "-T", "gateway", "cat", "/run/meridian/auth/dev-api-key"], env);
      expect(r.code, r.stderr).toBe(0);
      key = r.stdout.trim();
    });
    afterAll(() => {
      for (const child of running) child.kill("SIGKILL");
    });

    it("is in the gateway image: meridian --version and meridian status", async () => {
      const { compose, env } = stack();
      const inGateway = (...args: string[]) => exec(compose[0]!, [...compose.slice(1), "exec", "-T", "gateway", "meridian", ...args], env);
      const version = await inGateway("--version");
      expect(version.code, version.stderr).toBe(0);
      const { version: built } = JSON.parse(readFileSync(join(REPO_ROOT, "cli", "package.json"), "utf8")) as { version: string };
      expect(version.stdout).toBe(`${built}\n`);
      // As is: compose gives the gateway container MERIDIAN_API_KEY_FILE, the development key.
      const status = await inGateway("status");
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^gateway\s+\S+\s+\S+\s+serving\s/m);
    });

    describe.concurrent("verbs", () => {
      it("status: every service serving, the compose routes' pipelines, the streams", async () => {
        const text = await ok(["status"]);
        expect(text).toMatch(/^SERVICES$/m);
        for (const service of ["gateway", "omf-sender", "idigi-listener", "omnia-reader", "iotc-bridge", "oci-twin-manager"])
          expect(text, service).toMatch(new RegExp(`^${service}\\s+\\S+\\s+\\S+\\s+serving\\s`, "m"));
        expect(text).toMatch(/^PIPELINES$/m);
        expect(text).toMatch(/^omf-sender\s+idigi-datapoints-to-pi\s+[1-9]\d*\s+[1-9]\d*\s+\d+\s+\d+/m);
        expect(text).toMatch(/^TELEMETRY\s+\d+\s/m);
        const doc = await json<{
          services: Array<{ service: string; health: string; pipelines?: Array<{ name: string; delivered?: string }> }>;
          streams: Array<{ name: string }>;
        }>(["status"]);
        expect(doc.services.filter((s) => s.health === "HEALTH_SERVING").map((s) => s.service)).toEqual(
          expect.arrayContaining(["gateway", "omf-sender", "idigi-listener", "omnia-reader", "iotc-bridge", "oci-twin-manager"]),
        );
        const pipelines = doc.services.flatMap((s) => s.pipelines ?? []);
        expect(pipelines.map((p) => p.name).join(" ")).toContain("idigi-datapoints-to-pi");
        expect(doc.streams.map((s) => s.name)).toEqual(expect.arrayContaining(["TELEMETRY", "DEADLETTER"]));
      });

      it("tail: the iDigi devices' telemetry with a filter and --limit, as lines and as NDJSON", async () => {
        const lines = (await ok(["tail", "--platform", "idigi", "--since", "10m", "--limit", "3"])).trim().split("\n");
        expect(lines).toHaveLength(3);
        for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}idigi\/\S+\/\S+ {2}\S+=/);
        const r = await meridian(["tail", "--platform", "omnia", "--since", "10m", "--limit", "2", "-o", "json"]);
        expect(r.code, r.stderr).toBe(0);
        const events = r.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { event: { source: { platform: string }; points: unknown[] } });
        // Each line one Subscribe response: the event under "event".
        expect(events).toHaveLength(2);
        for (const { event } of events) {
          expect(event.source.platform).toBe("PLATFORM_OMNIA");
          expect(event.points.length).toBeGreaterThan(0);
        }
      });

      it("routes create | list | get | delete, in table and JSON form", async () => {
        const created = await meridian([
          "routes",
          "create",
          "cli-e2e-route",
          "--source-platform",
          "api",
          "--source-connection",
          "cli-e2e-route",
          "--sink",
          "omf",
          "--target",
          "pi-emulator",
          "--option",
          "batchSize=10",
        ]);
        expect(created.code, created.stderr).toBe(0);
        expect(created.stdout).toBe("route cli-e2e-route created: api/cli-e2e-route/* → omf pi-emulator\n");
        const list = await ok(["routes", "list"]);
        expect(list).toMatch(/^ID\s+SOURCE\s+SINK\s+TARGET\s+STATE\s+PENDING\s+CREATED$/m);
        expect(list).toMatch(/^cli-e2e-route\s+api\/cli-e2e-route\/\*\s+omf\s+pi-emulator\s+\S+/m);
        expect(list).toMatch(/^idigi-datapoints-to-pi\s+idigi\/\*\/\*\s+omf\s+pi-emulator\s+active\s/m);
        const listed = await json<{ routes: Array<{ id: string }> }>(["routes", "list"]);
        expect(listed.routes.find((r) => r.id === "cli-e2e-route")).toMatchObject({
          source: { platform: "PLATFORM_API", connection: "cli-e2e-route" },
          sink: { platform: "PLATFORM_OMF", target: "pi-emulator" },
          options: { batchSize: "10" },
        });
        expect(listed.routes.map((r) => r.id)).toEqual(expect.arrayContaining(["idigi-datapoints-to-pi", "oci-to-pi"]));
        const got = await ok(["routes", "get", "cli-e2e-route"]);
        expect(got).toMatch(/^id:\s+cli-e2e-route$/m);
        expect(got).toMatch(/^sink:\s+omf pi-emulator$/m);
        expect(await json(["routes", "get", "cli-e2e-route"])).toMatchObject({
          route: { id: "cli-e2e-route", sink: { platform: "PLATFORM_OMF", target: "pi-emulator" }, options: { batchSize: "10" } },
        });
        // A route whose sink still runs drains first (what it holds is delivered), then it is gone.
        expect(await ok(["routes", "delete", "cli-e2e-route"])).toMatch(
          /^route cli-e2e-route (deleted|draining: its sink delivers \d+ pending messages? \(up to sequence \d+\), then it is gone)\n$/,
        );
        let gone: Ran | undefined;
        await untilUp("the deleted route gone", async () => {
          gone = await meridian(["routes", "get", "cli-e2e-route"]);
          return gone.code === EXIT.notFound;
        });
        expect(gone!.stderr).toMatch(/^error: .*cli-e2e-route.*\(not_found\)\n$/);
      });

      it("omf: the seed's files sent to a Data Hub namespace of its own pass verify; a value changed at the emulator fails it naming the point; cleanup", async () => {
        const tenant = "cli-e2e";
        const namespace = "seed";
        for (const [name, text] of [
          ["OMF-Types.json", OMF_TYPES_JSON],
          ["OMF-Containers.json", OMF_CONTAINERS_JSON],
          ["OMF-Data.json", OMF_DATA_JSON],
        ] as const)
          writeFileSync(join(dir, name), text);
        const files = ["OMF-Types.json", "OMF-Containers.json", "OMF-Data.json"].map((f) => join(dir, f));
        const created = await ok(
          [
            "omf",
            "endpoints",
            "create",
            "cli-e2e-adh",
            "--kind",
            "adh",
            "--url",
            "http://omf-emulator:8443",
            "--allow-http",
            "--tenant",
            tenant,
            "--namespace",
            namespace,
            "--client-id",
            "meridian-client",
            "--secret-env",
            "CLI_E2E_ADH_SECRET",
            "--omf-version",
            "1.1",
          ],
          { CLI_E2E_ADH_SECRET: "meridian-secret" },
        );
        expect(created).toMatch(/Secret stored:\s+true/);
        const endpoints = await ok(["omf", "endpoints", "list"]);
        expect(endpoints).toMatch(/^ID\s+KIND\s+URL\s+OMF\s+SECRET\s+ORIGIN\s+REVISION\s+INSECURE$/m);
        expect(endpoints).toMatch(/^cli-e2e-adh\s+ADH\s+http:\/\/omf-emulator:8443\s+1\.1\s+yes\s+api\s/m);
        expect(endpoints).toMatch(/^pi-emulator\s+PI\s+http:\/\/omf-emulator:8443\/piwebapi\s+\S+\s+yes\s+file\s/m);
        const one = await meridian(["omf", "endpoints", "get", "cli-e2e-adh", "-o", "json"]);
        expect(one.code, one.stderr).toBe(0);
        expect(one.stdout).not.toContain("meridian-secret");
        expect(JSON.parse(one.stdout)).toMatchObject({
          endpoint: { id: "cli-e2e-adh", kind: "ENDPOINT_KIND_ADH", tenantId: tenant, namespaceId: namespace },
        });
        expect(await json(["omf", "endpoints", "check", "cli-e2e-adh"])).toMatchObject({ reachable: true, authenticated: true });

        const record = join(dir, "sent-adh.json");
        const sent = await meridian([
          "omf",
          "send",
          "-e",
          "cli-e2e-adh",
          "--iterations",
          "2",
          "--interval",
          "0.2",
          "--record",
          record,
          ...files,
        ]);
        expect(sent.code, sent.stderr).toBe(0);
        const verifyFiles = [files[0]!, files[1]!, record];
        const verified = await ok(["omf", "verify", "-e", "cli-e2e-adh", ...verifyFiles]);
        expect(verified).toMatch(/ThirdContainer/);
        const { checks, passed } = await json<{ checks: Array<{ what: string; name: string; ok: boolean }>; passed: boolean }>([
          "omf",
          "verify",
          "-e",
          "cli-e2e-adh",
          ...verifyFiles,
        ]);
        expect(checks.filter((c) => !c.ok)).toEqual([]);
        expect(passed).toBe(true);
        expect(checks.map((c) => c.name)).toEqual(expect.arrayContaining(["FirstContainer", "ThirdContainer"]));
        // The emulator holds exactly the seed's four streams in this namespace.
        const scope = `adh/${tenant}/${namespace}`;
        expect(Object.keys(await emulatorContainers(scope)).sort()).toHaveLength(4);

        // Another value at the last event's index of ThirdContainer, written at the emulator as any OMF client would.
        const third = (JSON.parse(readFileSync(record, "utf8")) as Array<{ messagetype: string; messages: Array<Record<string, unknown>> }>)
          .find((g) => g.messagetype === "data")!
          .messages.find((m) => m.containerid === "ThirdContainer")!.values as Array<Record<string, unknown>>;
        await postOmfToAdh(tenant, namespace, [
          { containerid: "ThirdContainer", values: [{ ...third[third.length - 1], NumberProperty1: -12.5 }] },
        ]);
        const bad = await meridian(["omf", "verify", "-e", "cli-e2e-adh", ...verifyFiles]);
        expect(bad.code, bad.stdout).toBe(EXIT.failed);
        expect(bad.stdout + bad.stderr).toMatch(/ThirdContainer[.\s:].*NumberProperty1|ThirdContainer.*-12\.5/);
        expect(bad.stderr).toContain("-12.5");
        expect(bad.stdout + bad.stderr).not.toMatch(/FirstContainer\S*: expected/);

        const cleaned = await meridian(["omf", "cleanup", "-e", "cli-e2e-adh"]);
        expect(cleaned.code, cleaned.stderr).toBe(0);
        expect(await emulatorContainers(scope)).toEqual({});
        expect(await ok(["omf", "endpoints", "delete", "cli-e2e-adh"])).toMatch(/cli-e2e-adh/);
        expect((await meridian(["omf", "endpoints", "get", "cli-e2e-adh"])).code).toBe(EXIT.notFound);
      });

      it("idigi monitors create (the push client's flags) | list | delete, and watch prints what the compose monitor pushes", async () => {
        const created = await json<{ monitor: { id: string } }>([
          "idigi",
          "monitors",
          "create",
          "--topics",
          "FileData,Alarm",
          "--batch-size",
          "5",
          "--batch-duration",
          "10",
          "--compression",
          "none",
          "--format",
          "xml",
          "--description",
          "cli-e2e",
        ]);
        const id = String(created.monitor.id);
        expect(id).toMatch(/^\d+$/);
        const list = await ok(["idigi", "monitors", "list"]);
        expect(list).toMatch(/^ID\s+TOPICS\s+TRANSPORT\s+FORMAT\s+COMPRESSION\s+BATCH\s+DURATION\s+STATUS/m);
        expect(list).toMatch(new RegExp(`^${id}\\s+FileData,Alarm\\s+\\S+\\s+xml\\s+none\\s+5\\s+10\\s`, "m"));
        const { monitors: listed } = await json<{ monitors: Array<{ id: string; topics: string[] }> }>(["idigi", "monitors", "list"]);
        expect(listed.find((m) => String(m.id) === id)).toMatchObject({
          topics: ["FileData", "Alarm"],
          format: "PAYLOAD_FORMAT_XML",
          compression: "COMPRESSION_NONE",
          batchSize: 5,
          batchDurationSeconds: 10,
        });
        const compose = listed.find((m) => m.topics.join() === "DataPoint");
        expect(compose, "the compose stack's DataPoint monitor").toBeDefined();
        expect(await ok(["idigi", "monitors", "delete", id])).toBe(`monitor ${id} deleted\n`);
        const after = await json<{ monitors: Array<{ id: string }> }>(["idigi", "monitors", "list"]);
        expect(after.monitors.map((m) => String(m.id))).toContain(String(compose!.id));
        expect(after.monitors.map((m) => String(m.id))).not.toContain(id);
        expect((await meridian(["idigi", "monitors", "delete", id])).code).toBe(EXIT.notFound);

        const sessions = await ok(["idigi", "sessions", "list"]);
        expect(sessions).toMatch(new RegExp(`^${compose!.id}\\s+connected\\s`, "m"));

        // The compose monitor's DataPoints as they arrive (from 2 minutes back), as the seed's callback prints them.
        const watch = start(["idigi", "watch", String(compose!.id), "--since", "2m"]);
        await untilUp("idigi watch output", async () => /^Data Received /m.test(watch.out()), 60_000);
        const stopped = await watch.stop();
        expect(stopped.code, stopped.stderr).toBe(0);
        expect(stopped.stdout).toMatch(/^Data Received \S+ \S+ \S+=/m);
        const ndjson = start(["idigi", "watch", String(compose!.id), "--since", "2m", "-o", "json"]);
        await untilUp("idigi watch NDJSON", async () => ndjson.out().includes("\n"), 60_000);
        const stoppedJson = await ndjson.stop();
        expect(stoppedJson.code, stoppedJson.stderr).toBe(0);
        const first = JSON.parse(stoppedJson.stdout.split("\n")[0]!) as { event?: { source?: { platform?: string; connection?: string } } };
        expect(first.event?.source).toMatchObject({ platform: "PLATFORM_IDIGI", connection: String(compose!.id) });
      });

      it("iotc apps | devices | send | properties report, and commands watch answers a command sent through IoT Central's REST API", async () => {
        expect(await ok(["iotc", "apps", "list"])).toMatch(/^plant-demo\s/m);
        const app = await json<{ application: Record<string, unknown> }>(["iotc", "apps", "get", "plant-demo"]);
        expect(app.application).toMatchObject({ id: "plant-demo", idScope: "0ne00EMU001" });
        const devicesTable = await ok(["iotc", "devices", "list", "plant-demo"]);
        expect(devicesTable).toMatch(/connected/i);
        const { devices } = await json<{ devices: Array<{ deviceId: string; state: string; source?: string }> }>([
          "iotc",
          "devices",
          "list",
          "plant-demo",
        ]);
        const device = devices.find((d) => d.state === "CONNECTION_STATE_CONNECTED")?.deviceId;
        expect(device, JSON.stringify(devices)).toBeDefined();
        expect(await ok(["iotc", "devices", "get", "plant-demo", device!])).toContain(device!);
        expect(await json(["iotc", "devices", "get", "plant-demo", device!])).toMatchObject({ device: { deviceId: device } });

        const api = await iotcApi(stack());
        const sent = await meridian(["iotc", "send", "plant-demo", device!, '{"cliProbe": 7.25}']);
        expect(sent.code, sent.stderr).toBe(0);
        const telemetry = await api("GET", `/api/devices/${encodeURIComponent(device!)}/telemetry/cliProbe`);
        expect(telemetry).toMatchObject({ status: 200, body: { value: 7.25 } });
        const reported = await meridian(["iotc", "properties", "report", "plant-demo", device!, '{"cliSerial": "SN-E2E"}', "-o", "json"]);
        expect(reported.code, reported.stderr).toBe(0);
        expect(JSON.parse(reported.stdout)).toEqual({ version: expect.stringMatching(/^[1-9]\d*$/) });
        const properties = await api("GET", `/api/devices/${encodeURIComponent(device!)}/properties`);
        expect(properties.body).toMatchObject({ cliSerial: "SN-E2E" });

        const watch = start([
          "iotc",
          "commands",
          "watch",
          "--app",
          "plant-demo",
          "--device",
          device!,
          "--since",
          "1m",
          "--respond",
          "200",
          "--payload",
          '{"rebooted": true}',
        ]);
        let answer: { status: number; body: unknown } | undefined;
        await untilUp(
          "a command answered by iotc commands watch",
          async () => {
            answer = await api("POST", `/api/devices/${encodeURIComponent(device!)}/commands/cliReboot`, {
              request: { delay: 1 },
              responseTimeout: 5,
            });
            return answer.status === 201;
          },
          90_000,
        );
        expect(answer!.body).toMatchObject({ responseCode: 200, response: { rebooted: true } });
        const stopped = await watch.stop();
        expect(stopped.code, stopped.stderr).toBe(0);
        expect(stopped.stdout).toContain("cliReboot");
      });

      it("omnia create | write | latest | get | data | search | delete on a series of its own, and the compose reader", async () => {
        const created = await json<{ timeseries: { id: string } }>([
          "omnia",
          "create",
          "--name",
          "CLIE2E.T1",
          "--facility",
          "JSV",
          "--unit",
          "degC",
          "--description",
          "meridian CLI system test",
        ]);
        const id = created.timeseries.id;
        expect(id).toMatch(/^[0-9a-f-]{36}$/);
        const t1 = new Date(Date.now() - 120_000).toISOString();
        const t2 = new Date(Date.now() - 60_000).toISOString();
        expect(await ok(["omnia", "write", id, `${t1}=21.5`, `${t2}=22.75:64`])).toBe(`2 datapoints written to 1 series\n`);
        const latest = await ok(["omnia", "latest", id]);
        expect(latest).toMatch(/^TIME\s+VALUE\s+STATUS/m);
        expect(latest).toMatch(new RegExp(`^${t2.replaceAll(".", "\\.")}\\s+22\\.75\\s+64$`, "m"));
        expect(await json(["omnia", "latest", id])).toEqual({ datapoint: { time: t2, value: 22.75, status: 64 } });
        expect(await ok(["omnia", "get", id])).toMatch(/^name:\s+CLIE2E\.T1$/m);
        expect(await json(["omnia", "get", id])).toMatchObject({ timeseries: { id, name: "CLIE2E.T1", facility: "JSV", unit: "degC" } });
        const data = await json<{ data: { datapoints: unknown[] } }>(["omnia", "data", id, "--start", "10m"]);
        expect(data.data.datapoints).toEqual([
          { time: t1, value: 21.5, status: 192 },
          { time: t2, value: 22.75, status: 64 },
        ]);
        const found = await ok(["omnia", "search", "CLIE2E.*", "--facility", "JSV"]);
        expect(found).toMatch(/^ID\s+NAME\s+FACILITY\s+UNIT\s+SOURCE\s+DESCRIPTION$/m);
        expect(found).toMatch(new RegExp(`^${id}\\s+CLIE2E\\.T1\\s+JSV\\s+degC\\s`, "m"));
        const jsv = await json<{ items: Array<{ name: string }> }>(["omnia", "search", "JSV.*", "--facility", "JSV"]);
        expect(jsv.items.map((i) => i.name)).toEqual(expect.arrayContaining(["JSV.20TT1001.PV", "JSV.20PT1234.PV"]));
        expect(await ok(["omnia", "readers", "list"])).toMatch(/^omnia-emulator-jsv\s+running\s+3\s/m);
        expect(await ok(["omnia", "delete", id])).toBe(`series ${id} deleted\n`);
        expect((await meridian(["omnia", "get", id])).code).toBe(EXIT.notFound);
      });

      it("twin list | get | query on the compose twin m5-env-01, and create | query | delete of a twin of manage-dt's iot_config.yaml", async () => {
        expect(await ok(["twin", "list"])).toMatch(/^m5-env-01\s+custom adapter\s+meridian-m5-env-cstm-01\s+ACTIVE\s/m);
        expect(await json(["twin", "get", "m5-env-01"])).toMatchObject({ twin: { key: "m5-env-01", kind: "TWIN_KIND_CUSTOM_ADAPTER" } });
        const query = await ok(["twin", "query", "m5-env-01", "-l", "15"]);
        expect(query).toContain("Digital Twin Instance content");
        expect(query).toMatch(/Recent raw data - [1-9]\d* record\(s\)/);
        expect(query).toMatch(/Recent historized data - [1-9]\d* record\(s\)/);
        expect(query).toMatch(/\s+sht_temperature\s+-?\d/);
        expect(query).toContain("Recent rejected data");
        const doc = await json<{ twin: string; historizedData: unknown[]; rawData: unknown[] }>(["twin", "query", "m5-env-01", "-l", "15"]);
        expect(doc.twin).toBe("m5-env-01");
        expect(doc.historizedData.length).toBeGreaterThan(0);

        const { domainId } = composeOci();
        const data = join(dir, "manage-dt", "data");
        mkdirSync(data, { recursive: true });
        writeFileSync(
          join(data, "iot_config.yaml"),
          [
            "iot:",
            `  domain_id: ${domainId}`,
            "environ:",
            "  device_key: cli-e2e",
            "  auth_id: ocid1.vaultsecret.oc1.eu-frankfurt-1.meridiandevm5secret",
            "digital_twins:",
            "  cli-e2e-unst:",
            "    device_name: $device_key-m5-env-unst-01",
            "    external_key: $device_key-unst",
            "    auth_id: $auth_id",
            "",
          ].join("\n"),
        );
        const created = await ok(["twin", "create", "cli-e2e-unst", "--data-dir", data]);
        expect(created).toContain("Digital Twin cli-e2e-unst created (unstructured)");
        expect(created).toMatch(/Digital Twin Instance\s+cli-e2e-m5-env-unst-01\s+ocid1\.\S+\s+ACTIVE/);
        // manage-dt's environ substituted ($device_key), and a second create of the same description creates nothing.
        expect(await json(["twin", "create", "cli-e2e-unst", "--data-dir", data])).toMatchObject({
          created: false,
          twin: {
            key: "cli-e2e-unst",
            kind: "TWIN_KIND_UNSTRUCTURED",
            instance: { externalKey: "cli-e2e-unst", displayName: "cli-e2e-m5-env-unst-01" },
          },
        });
        const empty = await ok(["twin", "query", "cli-e2e-unst"]);
        expect(empty).toMatch(/Recent raw data - 0 record\(s\)/);
        expect(empty).not.toContain("Digital Twin Instance content");
        const deleted = await ok(["twin", "delete", "cli-e2e-unst"]);
        expect(deleted).toMatch(/^ocid1\.iotdigitaltwininstance\.\S+\s+deleted/m);
        expect((await meridian(["twin", "get", "cli-e2e-unst"])).code).toBe(EXIT.notFound);
      });

      it("dlq: a message the endpoint always refuses (400) is dead-lettered, show says why, and after the fix replay delivers it exactly once", async () => {
        const tenant = "cli-e2e-dlq";
        // A namespace of this run: the emulator keeps its stores as long as it runs.
        const namespace = `poison-${Date.now()}`;
        const scope = `adh/${tenant}/${namespace}`;
        // The OMF emulator refuses every OMF request to this namespace alone: a 400 the same request always gets.
        await setOmfFault({ status: 400, path: `/api/v1/tenants/${tenant}/` });
        await ok(
          [
            "omf",
            "endpoints",
            "create",
            "cli-e2e-dlq-adh",
            "--kind",
            "adh",
            "--url",
            "http://omf-emulator:8443",
            "--allow-http",
            "--tenant",
            tenant,
            "--namespace",
            namespace,
            "--client-id",
            "meridian-client",
            "--secret-env",
            "CLI_E2E_ADH_SECRET",
          ],
          { CLI_E2E_ADH_SECRET: "meridian-secret" },
        );
        await ok([
          "routes",
          "create",
          "cli-e2e-dlq",
          "--source-platform",
          "api",
          "--source-connection",
          "cli-e2e-dlq",
          "--sink",
          "omf",
          "--target",
          "cli-e2e-dlq-adh",
        ]);
        // One event from a source only this test publishes to, through the gateway's HTTP API.
        const published = await fetch(`${GATEWAY}/meridian.telemetry.v1.TelemetryService/Publish`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
          body: JSON.stringify({
            events: [
              {
                id: `cli-e2e-dlq-${Date.now()}`,
                source: { platform: "PLATFORM_API", connection: "cli-e2e-dlq", device: "boiler-1" },
                observedTime: new Date().toISOString(),
                points: [{ name: "pressure", unit: "bar", doubleValue: 4.25 }],
              },
            ],
          }),
        });
        expect(published.status, await published.clone().text()).toBe(200);

        type Letters = { deadLetters?: Array<{ sequence: string; consumer: string; reason: string; replayed?: unknown }> };
        let letters: Letters = {};
        await untilUp(
          "the poisoned message in the DLQ",
          async () => {
            letters = await json<Letters>(["dlq", "list", "--route", "cli-e2e-dlq"]);
            return (letters.deadLetters ?? []).length > 0;
          },
          90_000,
        );
        expect(letters.deadLetters).toHaveLength(1);
        const letter = letters.deadLetters![0]!;
        expect(letter.consumer).toBe("omf-cli-e2e-dlq");
        expect(letter.reason).toMatch(/400/);
        const listed = await ok(["dlq", "list", "--consumer", "omf-cli-e2e-dlq", "--since", "1h"]);
        expect(listed).toMatch(/^SEQ\s+TIME\s+CONSUMER\s+ROUTE\s+REASON\s+DELIVERIES\s+SIZE\s+STATE$/m);
        expect(listed).toMatch(
          new RegExp(`^\\s*${letter.sequence}\\s+\\S+ \\S+\\s+omf-cli-e2e-dlq\\s+cli-e2e-dlq\\s+.*400.*\\s+pending$`, "m"),
        );
        const shown = await ok(["dlq", "show", letter.sequence]);
        expect(shown).toMatch(/^reason:\s+.*400/m);
        expect(shown).toMatch(/^original subject:\s+telemetry\.v1\.api\.cli-e2e-dlq\./m);
        expect(shown).toContain("pressure");
        expect(await json(["dlq", "show", letter.sequence])).toMatchObject({ deadLetter: { consumer: "omf-cli-e2e-dlq" } });
        expect(await emulatorValueCount(scope)).toBe(0);

        // The endpoint is fixed; the replay is delivered once, and a second replay delivers nothing more.
        await clearOmfFault();
        const replayed = await meridian(["dlq", "replay", letter.sequence]);
        expect(replayed.code, replayed.stderr).toBe(0);
        expect(replayed.stdout).toMatch(new RegExp(`^\\s*${letter.sequence}\\s+replayed\\s`, "m"));
        await untilUp("the replayed value at the endpoint", async () => (await emulatorValueCount(scope)) >= 1, 60_000);
        const twice = await json<{ results: Array<{ sequence: string; outcome: string }> }>(["dlq", "replay", letter.sequence]);
        expect(twice.results).toEqual([expect.objectContaining({ sequence: letter.sequence, outcome: "REPLAY_OUTCOME_ALREADY_REPLAYED" })]);
        const state = await json<Letters>(["dlq", "list", "--consumer", "omf-cli-e2e-dlq", "--state", "replayed"]);
        expect(state.deadLetters?.map((d) => d.sequence)).toEqual([letter.sequence]);
        // The route's sink has delivered what it was given (the replay) and holds nothing more: the endpoint has the one value.
        type Pipeline = { name: string; delivered?: string; failed?: string; pending?: string };
        let pipeline: Pipeline | undefined;
        await untilUp("the route's pipeline caught up", async () => {
          const status = await json<{ services: Array<{ service: string; pipelines?: Pipeline[] }> }>(["status"]);
          pipeline = status.services.flatMap((s) => s.pipelines ?? []).find((p) => p.name === "cli-e2e-dlq");
          return Number(pipeline?.delivered ?? 0) >= 1 && Number(pipeline?.pending ?? 0) === 0;
        });
        expect(pipeline).toMatchObject({ delivered: "1", failed: "1" });
        expect(await emulatorValueCount(scope)).toBe(1);

        expect(await ok(["dlq", "purge", letter.sequence])).toBe("1 dead letters purged\n");
        expect((await meridian(["dlq", "show", letter.sequence])).code).toBe(EXIT.notFound);
        await ok(["routes", "delete", "cli-e2e-dlq"]);
        await ok(["omf", "endpoints", "delete", "cli-e2e-dlq-adh"]);
      });

      it("exit codes: no gateway 3, a wrong key 4, an unknown id 5", async () => {
        const none = await meridian(["status"], { MERIDIAN_GATEWAY_URL: "http://127.0.0.1:9" });
        expect(none.code).toBe(EXIT.unavailable);
        expect(none.stderr).toMatch(/cannot reach the gateway at http:\/\/127\.0\.0\.1:9/);
        const wrong = await meridian(["routes", "list"], { MERIDIAN_API_KEY: "mrd_000000000099_wrongwrongwrongwrongwrong" });
        expect(wrong.code).toBe(EXIT.auth);
        expect(wrong.stderr).toMatch(/unauthenticated/);
        for (const args of [
          ["routes", "get", "no-such-route"],
          ["dlq", "show", "999999999"],
          ["omf", "endpoints", "get", "no-such-endpoint"],
          ["twin", "get", "no-such-twin"],
          ["iotc", "devices", "get", "plant-demo", "no-such-device"],
          ["idigi", "monitors", "delete", "999999"],
        ]) {
          const r = await meridian(args);
          expect(r.code, `meridian ${args.join(" ")}: ${r.stderr}`).toBe(EXIT.notFound);
          expect(r.stderr).toMatch(/^error: /);
        }
      });
    });
  });
}

/** The containers (streams) the OMF emulator holds in one scope (pi, eds, adh/{tenant}/{namespace}). */
async function emulatorContainers(scope: string): Promise<Record<string, { valueCount: number }>> {
  const res = await fetch(`${OMF_EMULATOR}/_emulator/state?scope=${encodeURIComponent(scope)}&values=false`);
  const doc = (await res.json()) as { scopes: Record<string, { containers?: Record<string, { valueCount: number }> } | undefined> };
  return doc.scopes[scope]?.containers ?? {};
}

/** One OMF data message to a Data Hub namespace of the emulator, with a token of its client-credentials flow. */
async function postOmfToAdh(tenant: string, namespace: string, body: unknown): Promise<void> {
  const token = await fetch(`${OMF_EMULATOR}/identity/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials&client_id=meridian-client&client_secret=meridian-secret",
  });
  const { access_token } = (await token.json()) as { access_token: string };
  const res = await fetch(`${OMF_EMULATOR}/api/v1/tenants/${tenant}/namespaces/${namespace}/omf`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${access_token}`,
      "content-type": "application/json",
      messagetype: "data",
      action: "create",
      messageformat: "JSON",
      omfversion: "1.1",
    },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.text()).toBeLessThan(300);
}

/** The sum of the values the OMF emulator holds in one scope. */
async function emulatorValueCount(scope: string): Promise<number> {
  return Object.values(await emulatorContainers(scope)).reduce((n, c) => n + c.valueCount, 0);
}

async function setOmfFault(fault: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${OMF_EMULATOR}/_emulator/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(fault),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function clearOmfFault(): Promise<void> {
  const res = await fetch(`${OMF_EMULATOR}/_emulator/faults`, { method: "DELETE" });
  expect(res.status).toBeLessThan(300);
}

/** The OCI emulator's IoT domain, as docker-compose.yml declares it. */
function composeOci(): { domainId: string } {
  const text = readFileSync(join(REPO_ROOT, "docker-compose.yml"), "utf8");
  return { domainId: /&oci-domain-id (\S+)/.exec(text)![1]! };
}

/** The IoT Central emulator's application REST API, with its CA from its volume and its token from docker-compose.yml. */
async function iotcApi(
  stack: ComposeStack,
): Promise<(method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>> {
  const { compose, env } = stack;
  const ca = await exec(compose[0]!, [...compose.slice(1), "exec", "-T", "iotc-emulator", "cat", "/run/meridian/iotc-ca/ca.pem"], env);
  expect(ca.code, ca.stderr).toBe(0);
  const token = /IOTC_EMULATOR_API_TOKEN: "([^"]+)"/.exec(readFileSync(join(REPO_ROOT, "docker-compose.yml"), "utf8"))![1]!;
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const req = request(
        `https://127.0.0.1:8446${path}${path.includes("?") ? "&" : "?"}api-version=2022-07-31`,
        { method, ca: ca.stdout, headers: { authorization: token, "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Bus, telemetrySubject } from "@meridian/bus";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type Gateway, gatewayConfig, startGateway } from "@meridian/gateway";
import { freePort, type NatsServerHandle, startForTest, startNatsServer, TEST_KEYS, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { EXIT } from "../src/kit/exit.js";
import { meridian } from "./harness.js";

const ANSI = /\u001b\[/;

let nats: NatsServerHandle;
let gw: Gateway;
let bus: Bus;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), "meridian-cli-"));

function event(id: string, device: string, value: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id,
    source: { platform: Platform.API, connection: "cli-test", device },
    observedTime: timestampFromDate(new Date()),
    points: [
      { name: "temperature", unit: "degC", value: { case: "doubleValue", value } },
      { name: "running", value: { case: "boolValue", value: true } },
    ],
  });
}

const run = (args: string[], extra: Record<string, string> = {}) => meridian(args, { ...env, ...extra });

beforeAll(async () => {
  nats = await startNatsServer();
  gw = await startForTest(startGateway, gatewayConfig, { NATS_URL: nats.url });
  bus = Bus.connect({ servers: nats.url, name: "cli-test", logger: testLogger() });
  await bus.ready;
  env = { MERIDIAN_GATEWAY_URL: gw.service.url, MERIDIAN_API_KEY: TEST_KEYS.admin };
});
afterAll(async () => {
  await bus?.close();
  await gw?.stop();
  await nats?.stop();
});

describe("status", () => {
  it("prints services, pipelines and streams as tables, without colour off a terminal", async () => {
    await bus.publishEvents([event("s-1", "status-dev", 1)]);
    let r = await run(["status"]);
    await until(async () => {
      r = await run(["status"]);
      return /^gateway\s/m.test(r.stdout);
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^SERVICES$/m);
    expect(r.stdout).toMatch(/^SERVICE\s+INSTANCE\s+VERSION\s+HEALTH\s+REPORTED/m);
    expect(r.stdout).toMatch(/^gateway\s+\S+\s+\S+\s+serving\s+\d+s ago/m);
    // No sink runs beside this gateway: no pipeline reports (the columns are checked in status.test.ts).
    expect(r.stdout).toMatch(/^PIPELINES\n\(none\)$/m);
    // messages, bytes, then the size limit (TELEMETRY_MAX_BYTES) and the messages it no longer holds.
    expect(r.stdout).toMatch(/^TELEMETRY\s+\d+\s+[\d.]+ (B|KiB)\s+[\d.]+ (MiB|GiB|TiB)\s+\d+\s/m);
    expect(r.stdout).toMatch(/^DEADLETTER\s/m);
    expect(r.stdout).not.toMatch(ANSI);
  });

  it("prints the GetStatus answer as JSON and YAML", async () => {
    const json = await run(["status", "-o", "json"]);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc.services.find((s: { service: string }) => s.service === "gateway")?.health).toBe("HEALTH_SERVING");
    expect(doc.streams.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(["TELEMETRY", "DEADLETTER"]));
    const yaml = YAML.parse((await run(["status", "--output", "yaml"])).stdout);
    expect(yaml.streams.map((s: { name: string }) => s.name)).toContain("TELEMETRY");
  });

  it.each(["connect", "grpc", "grpc-web"])("answers over --protocol %s", async (protocol) => {
    const r = await run(["status", "-o", "json", "--protocol", protocol]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).streams.length).toBeGreaterThan(0);
  });
});

describe("routes", () => {
  it("creates from flags, lists, gets and deletes, in table and JSON form", async () => {
    const created = await run([
      "routes",
      "create",
      "cli-r1",
      "--source-platform",
      "api",
      "--source-connection",
      "cli-test",
      "--sink",
      "omf",
      "--target",
      "pi",
      "--option",
      "batchSize=10",
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe("route cli-r1 created: api/cli-test/* → omf pi\n");

    const list = await run(["routes", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+SOURCE\s+SINK\s+TARGET\s+STATE\s+PENDING\s+CREATED$/m);
    expect(list.stdout).toMatch(/^cli-r1\s+api\/cli-test\/\*\s+omf\s+pi\s+active\s+\d{4}-\d\d-\d\d /m);
    const listed = JSON.parse((await run(["routes", "list", "-o", "json"])).stdout);
    expect(listed.routes.find((r: { id: string }) => r.id === "cli-r1")).toMatchObject({
      source: { platform: "PLATFORM_API", connection: "cli-test" },
      sink: { platform: "PLATFORM_OMF", target: "pi" },
      options: { batchSize: "10" },
    });

    const got = await run(["routes", "get", "cli-r1"]);
    expect(got.stdout).toMatch(/^id:\s+cli-r1$/m);
    expect(got.stdout).toMatch(/^sink:\s+omf pi$/m);
    expect(got.stdout).toMatch(/^options:\s+batchSize=10$/m);
    // One RPC: its response, the route under "route" as GetRoute gives it.
    expect(JSON.parse((await run(["routes", "get", "cli-r1", "-o", "json"])).stdout)).toMatchObject({
      route: { id: "cli-r1", sink: { platform: "PLATFORM_OMF", target: "pi" }, options: { batchSize: "10" } },
    });

    const again = await run(["routes", "create", "cli-r1", "--sink", "omf", "--target", "pi"]);
    expect(again.code).toBe(EXIT.conflict);

    const deleted = await run(["routes", "delete", "cli-r1"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe("route cli-r1 deleted\n");
    expect((await run(["routes", "get", "cli-r1"])).code).toBe(EXIT.notFound);
  });

  it("creates from a YAML file and a JSON file in the proto JSON shape; a bad file is refused before sending (exit 2)", async () => {
    const yamlFile = join(dir, "route.yaml");
    writeFileSync(yamlFile, "id: cli-yaml\nsource: { platform: PLATFORM_IDIGI }\nsink: { platform: PLATFORM_OCI_IOT, target: twins }\n");
    const jsonFile = join(dir, "routes.json");
    writeFileSync(
      jsonFile,
      JSON.stringify({
        routes: [{ id: "cli-json", source: { connection: "c" }, sink: { platform: "PLATFORM_IOT_CENTRAL", target: "app" } }],
      }),
    );
    expect((await run(["routes", "create", "-f", yamlFile])).code).toBe(0);
    const json = await run(["routes", "create", "--file", jsonFile, "-o", "json"]);
    expect(json.code, json.stderr).toBe(0);
    // A file: one CreateRoute per route, the created routes under "routes" (even for one).
    expect(JSON.parse(json.stdout)).toMatchObject({
      routes: [{ id: "cli-json", sink: { platform: "PLATFORM_IOT_CENTRAL", target: "app" } }],
    });
    expect(JSON.parse(json.stdout).routes).toHaveLength(1);
    const ids = JSON.parse((await run(["routes", "list", "-o", "json"])).stdout).routes.map((r: { id: string }) => r.id);
    expect(ids).toEqual(expect.arrayContaining(["cli-yaml", "cli-json"]));

    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "id: x\nsink: { platform: PLATFORM_NOPE }\n");
    const refused = await run(["routes", "create", "-f", bad]);
    expect(refused.code).toBe(EXIT.usage);
    expect(refused.stderr).toMatch(new RegExp(`^error: ${bad}: .*PLATFORM_NOPE`));
    const missing = await run(["routes", "create", "x"]);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.stderr).toBe("error: routes create: --sink <platform> is required (or --file)\n");
  });

  it("purges a route with --purge and says how many messages were dropped", async () => {
    await run(["routes", "create", "cli-purge", "--sink", "omf", "--target", "pi"]);
    const r = await run(["routes", "delete", "cli-purge", "--purge"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("route cli-purge purged: 0 messages dropped\n");
    expect((await run(["routes", "get", "cli-purge"])).code).toBe(EXIT.notFound);
  });

  it("updates a route's source, options and state from flags at the revision read; a stale --revision is refused (exit 6)", async () => {
    const args = ["routes", "create", "cli-upd", "--source-connection", "a", "--sink", "omf", "--target", "pi", "--option", "x=1"];
    expect((await run([...args, "--option", "y=2"])).code).toBe(0);
    const updated = await run([
      "routes",
      "update",
      "cli-upd",
      "--source-connection",
      "b",
      "--source-device",
      "d-1",
      "--option",
      "x=3",
      "--remove-option",
      "y",
      "--disable",
    ]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toMatch(
      /^route cli-upd updated \(revision 2\): \*\/b\/d-1 → omf pi; what was stored up to sequence \d+ is still delivered by the previous source\n$/,
    );
    const got = JSON.parse((await run(["routes", "get", "cli-upd", "-o", "json"])).stdout).route;
    expect(got).toMatchObject({ revision: "2", source: { connection: "b", device: "d-1" }, options: { x: "3" }, disabled: true });
    expect(got.options.y).toBeUndefined();
    // What the flags do not name stays; the JSON answer is UpdateRoute's.
    const named = JSON.parse((await run(["routes", "update", "cli-upd", "--name", "line b", "--enable", "-o", "json"])).stdout);
    expect(named.route).toMatchObject({ displayName: "line b", revision: "3", source: { connection: "b" }, options: { x: "3" } });
    expect(named.route.disabled).toBeUndefined();

    const stale = await run(["routes", "update", "cli-upd", "--name", "late", "--revision", "2"]);
    expect(stale.code).toBe(EXIT.conflict);
    expect(stale.stderr).toContain("was changed since revision 2 (it is at revision 3)");
    const refused = await run(["routes", "update", "cli-upd", "--option", "bad key=1"]);
    expect(refused.code).toBe(EXIT.invalid);
    expect(refused.stderr).toContain('route.options: key "bad key"');
    expect((await run(["routes", "update", "cli-upd", "--enable", "--disable"])).code).toBe(EXIT.usage);
    expect((await run(["routes", "update", "nowhere", "--name", "x"])).code).toBe(EXIT.notFound);
  });
});

describe("tail", () => {
  it("prints live telemetry matching the filter, one line per event, and stops at --limit", async () => {
    await bus.publishEvents([event("t-1", "tail-a", 21.5), event("t-2", "tail-b", 99), event("t-3", "tail-a", 22.5)]);
    const r = await run(["tail", "--since", "1m", "--device", "tail-a", "--limit", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}api\/cli-test\/tail-a {2}temperature=21\.5 degC {2}running=true$/);
    expect(lines[1]).toContain("temperature=22.5 degC");
  });

  it("prints NDJSON with -o json, and only the points asked for", async () => {
    const r = await run(["tail", "--since", "1m", "--device", "tail-a", "--point", "temperature", "--limit", "2", "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // Each line one SubscribeResponse: the event under "event", its points narrowed to --point.
    expect(events.map((e) => Object.keys(e))).toEqual([["event"], ["event"]]);
    expect(events.map((e) => e.event.id)).toEqual(["t-1", "t-3"]);
    expect(events[0].event.points).toEqual([{ name: "temperature", unit: "degC", doubleValue: 21.5 }]);
  });

  it("follows events published after it started", async () => {
    const tail = run(["tail", "--device", "tail-live", "--limit", "1", "-o", "json"]);
    // The subscription is open once the gateway delivers; publish until the tail has seen one.
    let done = false;
    void tail.then(() => (done = true));
    await until(async () => {
      if (!done) await bus.publishEvents([event(`live-${Date.now()}`, "tail-live", 1)]);
      return done;
    });
    const r = await tail;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).event.source.device).toBe("tail-live");
  });
});

describe("dead letters", () => {
  const subject = telemetrySubject({ platform: Platform.API, connection: "cli-test", device: "boiler" });
  let source: bigint;
  let gone: bigint;

  beforeAll(async () => {
    source = BigInt(
      (await bus.publishDeadLetter({ consumer: "idigi", data: new TextEncoder().encode("not a push block"), reason: "bad push" })).seq,
    );
    gone = BigInt(
      (
        await bus.publishDeadLetter({
          consumer: "omf-cli-gone",
          data: new TextEncoder().encode("{}"),
          reason: "400 Bad Request",
          detail: "type has no property",
          original: { subject, sequence: 7, deliveries: 3 },
        })
      ).seq,
    );
  });

  it("lists them with filters, in table and JSON form", async () => {
    const all = await run(["dlq", "list"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^SEQ\s+TIME\s+CONSUMER\s+ROUTE\s+REASON\s+DELIVERIES\s+SIZE\s+STATE$/m);
    expect(all.stdout).toMatch(
      new RegExp(`^\\s*${gone}\\s+\\S+ \\S+\\s+omf-cli-gone\\s+cli-gone\\s+400 Bad Request\\s+3\\s+2 B\\s+pending$`, "m"),
    );
    const filtered = JSON.parse((await run(["dlq", "list", "--consumer", "omf-cli-gone", "-o", "json"])).stdout);
    expect(filtered.deadLetters.map((d: { sequence: string }) => d.sequence)).toEqual([String(gone)]);
    const byReason = JSON.parse((await run(["dlq", "list", "--reason", "push", "--since", "1h", "-o", "json"])).stdout);
    expect(byReason.deadLetters.map((d: { sequence: string }) => d.sequence)).toEqual([String(source)]);
  });

  it("follows pages up to --limit", async () => {
    for (let i = 0; i < 5; i++) await bus.publishDeadLetter({ consumer: "omf-cli-page", data: new Uint8Array([i]), reason: `r${i}` });
    expect(JSON.parse((await run(["dlq", "list", "--consumer", "omf-none-such", "-o", "json"])).stdout)).toEqual({ deadLetters: [] });
    const three = JSON.parse((await run(["dlq", "list", "--consumer", "omf-cli-page", "--limit", "3", "-o", "json"])).stdout);
    expect(three.deadLetters.map((d: { reason: string }) => d.reason)).toEqual(["r0", "r1", "r2"]);
  });

  it("shows one with why, its headers and payload; an unknown sequence is exit 5", async () => {
    const r = await run(["dlq", "show", String(gone)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^reason:\s+400 Bad Request$/m);
    expect(r.stdout).toMatch(/^detail:\s+type has no property$/m);
    expect(r.stdout).toMatch(new RegExp(`^original subject:\\s+${subject.replaceAll(".", "\\.")}$`, "m"));
    expect(r.stdout).toMatch(/^HEADERS$/m);
    expect(r.stdout).toMatch(/^PAYLOAD: 2 bytes\n\{\}$/m);
    const json = JSON.parse((await run(["dlq", "show", String(gone), "-o", "json"])).stdout);
    expect(json.deadLetter).toMatchObject({ consumer: "omf-cli-gone", reason: "400 Bad Request" });
    expect((await run(["dlq", "show", "999999"])).code).toBe(EXIT.notFound);
  });

  it("replay lists each letter's outcome and exits 1 when any was refused", async () => {
    const r = await run(["dlq", "replay", String(source), String(gone), "999998"]);
    expect(r.code).toBe(EXIT.failed);
    expect(r.stdout).toMatch(new RegExp(`^\\s*${source}\\s+refused\\s+.*source`, "m"));
    expect(r.stdout).toMatch(new RegExp(`^\\s*${gone}\\s+refused\\s+.*route "cli-gone"`, "m"));
    expect(r.stdout).toMatch(/^\s*999998\s+not found/m);
    expect(r.stdout).toContain("0 replayed, 0 already replayed, 1 not found, 2 refused");
    expect(r.stderr).toBe("error: 2 of 3 letters refused (see above)\n");
    const json = await run(["dlq", "replay", "--consumer", "omf-cli-gone", "-o", "json"]);
    expect(json.code).toBe(EXIT.failed);
    expect(JSON.parse(json.stdout).results).toEqual([
      expect.objectContaining({ sequence: String(gone), outcome: "REPLAY_OUTCOME_REFUSED" }),
    ]);
    const nothing = await run(["dlq", "replay"]);
    expect(nothing.code).toBe(EXIT.usage);
  });

  it("replays and purges more than the gateway's 500 sequences per call, in chunks", async () => {
    const replay = await run(["dlq", "replay", "900000-900600", "-o", "json"]);
    expect(replay.code, replay.stderr).toBe(0);
    const results = JSON.parse(replay.stdout).results;
    expect(results).toHaveLength(601);
    expect(new Set(results.map((r: { outcome: string }) => r.outcome))).toEqual(new Set(["REPLAY_OUTCOME_NOT_FOUND"]));
    expect(replay.stderr).toBe("0 replayed, 0 already replayed, 601 not found, 0 refused\n");
    const purge = await run(["dlq", "purge", "900000-900600", "-o", "json"]);
    expect(purge.code, purge.stderr).toBe(0);
    expect(JSON.parse(purge.stdout)).toEqual({ purged: "0" });
  });

  it("purge by filter needs --yes; by sequence it does not", async () => {
    const noYes = await run(["dlq", "purge", "--consumer", "omf-cli-page"]);
    expect(noYes.code).toBe(EXIT.usage);
    expect(noYes.stderr).toMatch(/--yes/);
    const byFilter = await run(["dlq", "purge", "--consumer", "omf-cli-page", "--yes"]);
    expect(byFilter.code, byFilter.stderr).toBe(0);
    expect(byFilter.stdout).toBe("5 dead letters purged\n");
    const bySeq = await run(["dlq", "purge", String(source), "-o", "json"]);
    expect(JSON.parse(bySeq.stdout)).toEqual({ purged: "1" });
    expect((await run(["dlq", "show", String(source)])).code).toBe(EXIT.notFound);
  });
});

describe("config: profiles", () => {
  it("set-profile writes the file (0600), list shows it without the key, and the profile is used with no flag or environment", async () => {
    const config = join(dir, "profiles", "config.yaml");
    const base = { MERIDIAN_CONFIG: config };
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, `${TEST_KEYS.admin}\n`);
    const set = await meridian(
      ["config", "set-profile", "test", "--gateway", gw.service.url, "--api-key-file", keyFile, "--timeout", "5"],
      base,
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toBe(`profile test saved in ${config} (current)\n`);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(YAML.parse(readFileSync(config, "utf8"))).toEqual({
      current: "test",
      profiles: { test: { gateway: gw.service.url, apiKeyFile: keyFile, timeout: 5 } },
    });
    await meridian(["config", "set-profile", "nowhere", "--gateway", "http://127.0.0.1:1", "--api-key", TEST_KEYS.admin], base);

    const list = await meridian(["config", "list"], base);
    expect(list.stdout).toMatch(/^\*\s+test\s+http:\/\/127\.0\.0\.1:\d+\s+api key file /m);
    expect(list.stdout).toMatch(/^\s+nowhere\s+http:\/\/127\.0\.0\.1:1\s+api key mrd_/m);
    expect(list.stdout).not.toContain(TEST_KEYS.admin);
    expect((await meridian(["config", "list", "-o", "json"], base)).stdout).not.toContain(TEST_KEYS.admin);

    expect((await meridian(["routes", "list"], base)).code).toBe(0);
    expect((await meridian(["routes", "list", "--profile", "nowhere"], base)).code).toBe(EXIT.unavailable);
    expect((await meridian(["config", "use", "nowhere"], base)).code).toBe(0);
    expect((await meridian(["routes", "list"], base)).code).toBe(EXIT.unavailable);
    // flag > environment > profile
    expect((await meridian(["routes", "list"], { ...base, MERIDIAN_GATEWAY_URL: gw.service.url })).code).toBe(0);
    expect((await meridian(["config", "use", "gone"], base)).code).toBe(EXIT.notFound);

    writeFileSync(config, "current: test\nprofiles:\n  test:\n    gateway: http://x\n    timout: 5\n");
    const broken = await meridian(["status"], base);
    expect(broken.code).toBe(EXIT.usage);
    expect(broken.stderr).toBe(
      `error: ${config}: profiles.test.timout: unknown setting (known: gateway, apiKey, apiKeyFile, token, caFile, certFile, keyFile, insecure, output, timeout, protocol)\n`,
    );
  });
});

describe("exit codes scripts can trust", () => {
  it("3 when no gateway listens, naming the URL", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await run(["status"], { MERIDIAN_GATEWAY_URL: url });
    expect(r.code).toBe(EXIT.unavailable);
    expect(r.stderr).toBe(`error: cannot reach the gateway at ${url} (ECONNREFUSED)\n`);
  });

  it("4 for a wrong key, no key, and a key without the role", async () => {
    const wrong = await run(["routes", "list"], { MERIDIAN_API_KEY: "mrd_000000000099_wrongwrongwrongwrong" });
    expect(wrong.code).toBe(EXIT.auth);
    expect(wrong.stderr).toMatch(/^error: .*\(unauthenticated/);
    const none = await run(["routes", "list"], { MERIDIAN_API_KEY: "" });
    expect(none.code).toBe(EXIT.auth);
    const role = await run(["routes", "create", "x1", "--sink", "omf", "--target", "t"], { MERIDIAN_API_KEY: TEST_KEYS["status:read"] });
    expect(role.code).toBe(EXIT.auth);
    expect(role.stderr).toMatch(/routes:admin/);
  });

  it("5 for an unknown route, 2 for a bad flag or option value, 0 for --help and --version", async () => {
    const unknown = await run(["routes", "get", "no-such-route"]);
    expect(unknown.code).toBe(EXIT.notFound);
    expect(unknown.stderr).toMatch(/^error: .*no-such-route.*\(not_found\)\n$/);
    expect((await run(["routes", "list", "--bogus"])).code).toBe(EXIT.usage);
    expect((await run(["tail", "--limit", "0"])).code).toBe(EXIT.usage);
    expect((await run(["status", "--timeout", "-1"])).code).toBe(EXIT.usage);
    const help = await run(["dlq", "replay", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Examples:");
    const version = await run(["--version"]);
    expect(version).toEqual({ code: 0, stdout: "0.1.0\n", stderr: "" });
  });
});

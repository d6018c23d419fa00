import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { Bus, jsonCodec, KvBucket, routeBucket, routeConsumerName, STREAMS } from "@meridian/bus";
import { EndpointKind, OmfMessageType, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { captureLogger, codeOf, json, type RecordingServer, startRecordingServer, testTransport } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ECHO_CHARS } from "../src/api/echo.js";
import { ENDPOINTS_BUCKET, SEND_RECORD_MAX_AGE_MS } from "../src/pipeline/endpoints.js";
import type { OmfSender } from "../src/service.js";
import { getJson, logger, type NatsServerHandle, startEmulator, startNatsServer, startSender, TEST_KEY, until } from "./harness.js";

/**
 * The security review's findings, through the real interfaces: omf-sender's gRPC API, the OMF emulator, a recording
 * server standing where an attacker would re-point an endpoint, and the KV bucket written directly through libs/bus,
 * as anyone with access to the bus could.
 */

const PASSWORD = "Pi-Pass-w0rd-4-tests";
const BASIC = Buffer.from(`meridian:${PASSWORD}`).toString("base64");

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let recorder: RecordingServer;
/** The bus as an attacker with bus access has it: a connection of its own, writing the endpoints bucket. */
let attacker: Bus;
let records: KvBucket<RawRecord>;
/** A stored endpoint as JSON: what a writer of the bucket sees and writes. */
type RawRecord = Record<string, unknown> & { settings: Record<string, unknown>; secret?: Record<string, unknown> };
const dir = mkdtempSync(join(tmpdir(), "omf-sec-"));

const api = (s: OmfSender) => createClient(OmfSenderService, testTransport(s.service.url));
const emuHost = () => new URL(emu.url).host;
const recHost = () => new URL(recorder.url).host;

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator({ piUsers: [{ username: "meridian", password: PASSWORD }] });
  recorder = await startRecordingServer(() => json(200, {}));
  attacker = Bus.connect({ servers: nats.url, name: "attacker", logger });
  await attacker.ready;
  records = new KvBucket(attacker, ENDPOINTS_BUCKET, jsonCodec());
});
afterAll(async () => {
  await attacker?.close();
  await recorder?.close();
  await emu?.stop();
  await nats?.stop();
});

async function piValues(connection: string): Promise<number> {
  const s = await getJson(`${emu.url}/_emulator/state?scope=pi`);
  return Object.values(s.body.scopes.pi.containers as Record<string, { id: string; valueCount: number }>)
    .filter((c) => c.id.startsWith(`api.${connection}.`))
    .reduce((n, c) => n + c.valueCount, 0);
}

async function routeTo(id: string, connection: string, target: string): Promise<void> {
  await routeBucket(attacker).put(
    id,
    create(RouteSchema, { id, source: { connection }, sink: { platform: Platform.OMF, target }, options: { lingerMs: "50" } }),
  );
  // A new route's consumer starts at new events: publish only once it exists.
  await until(
    async () =>
      (await attacker
        .jsm()
        .consumers.info(STREAMS.telemetry, routeConsumerName(id, Platform.OMF))
        .catch(() => undefined)) !== undefined,
    { timeoutMs: 10_000, what: `consumer of route ${id}` },
  );
}

async function publish(connection: string, i: number): Promise<void> {
  await attacker.publishEvents([
    create(TelemetryEventSchema, {
      id: `${connection}:${i}`,
      source: { platform: Platform.API, connection, device: "d" },
      observedTime: timestampFromDate(new Date(Date.UTC(2026, 0, 1) + i * 1000)),
      points: [{ name: "temperature", value: { case: "doubleValue", value: i } }],
    }),
  ]);
}

/** What the old omf-sender stored: AES-256-GCM with `omf-endpoint:<id>` as the only associated data. */
function legacySeal(key: Buffer, id: string, plaintext: string) {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(Buffer.from(`omf-endpoint:${id}`));
  const data = Buffer.concat([c.update(plaintext, "utf8"), c.final()]);
  return { alg: "A256GCM", iv: iv.toString("base64"), tag: c.getAuthTag().toString("base64"), data: data.toString("base64") };
}

const credentialsSeen = (r: RecordingServer) =>
  r.requests.filter((q) => q.headers.authorization !== undefined || q.text.includes(PASSWORD) || q.text.includes(BASIC));

describe("sealed secrets are bound to where they go", () => {
  it("a KV record re-pointed at another URL (written straight to the bucket) does not release the secret: the new URL gets nothing, the data waits", async () => {
    // Both hosts allowed, plain http allowed: only the binding stands between the record and the credential.
    const sender = await startSender(
      nats,
      { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1", OMF_LINGER_MS: "50" },
      {
        redeliveryBackoff: { initialMs: 200, maxMs: 1000, multiplier: 2, jitter: 0 },
      },
    );
    try {
      const c = api(sender);
      await c.createEndpoint({
        endpoint: {
          id: "pi-victim",
          kind: EndpointKind.PI,
          url: `${emu.url}/piwebapi`,
          allowHttp: true,
          username: "meridian",
          secret: PASSWORD,
        },
      });
      await routeTo("victim", "line-victim", "pi-victim");
      await publish("line-victim", 0);
      await until(async () => (await piValues("line-victim")) === 1, { timeoutMs: 10_000, what: "first value in PI" });

      const original = (await records.get("pi-victim"))!;
      await records.put("pi-victim", { ...original, settings: { ...original.settings, url: `${recorder.url}/piwebapi` } });
      // A record written elsewhere reaches the sends within SEND_RECORD_MAX_AGE_MS (they keep the last read that long);
      // past it the pipeline reads the bucket itself, with no API call in between to refresh it.
      await new Promise((r) => setTimeout(r, SEND_RECORD_MAX_AGE_MS + 100));
      recorder.requests.length = 0;
      for (let i = 1; i <= 3; i++) await publish("line-victim", i);
      const status = async () => (await c.getEndpointStatus({ id: "pi-victim" })).status!;
      await until(async () => /does not open/.test((await status()).lastError), {
        timeoutMs: 10_000,
        what: "the pipeline refusing the record",
      });
      expect((await status()).configurationError).toMatch(/does not open for the endpoint's kind, URL, token URL, user and TLS settings/);
      const check = await codeOf(c.checkEndpoint({ id: "pi-victim" }));
      expect(check.code).toBe(Code.FailedPrecondition);
      expect(check.message).toMatch(/does not open/);
      const send = await codeOf(
        c.sendOmf({
          messageType: OmfMessageType.TYPE,
          body: '[{"id":"T","type":"object","classification":"dynamic"}]',
          endpointIds: ["pi-victim"],
        }),
      );
      expect(send.code).toBe(Code.FailedPrecondition);
      expect(recorder.requests).toEqual([]);
      expect(credentialsSeen(recorder)).toEqual([]);

      // Put back as it was: the held events arrive, nothing lost.
      await records.put("pi-victim", original);
      await until(async () => (await piValues("line-victim")) === 4, {
        timeoutMs: 15_000,
        what: "the held values after the record was restored",
      });
      expect(recorder.requests).toEqual([]);
    } finally {
      await sender.stop();
    }
  }, 60_000);

  it("a record in the old format (secret bound to the id alone) is refused, not migrated; a file endpoint is sealed again from the file", async () => {
    const key = Buffer.from(TEST_KEY, "base64");
    // An API endpoint stored by the previous version, and re-pointed at the recorder by someone with bus access.
    await records.put("pi-legacy", {
      id: "pi-legacy",
      origin: "api",
      createTime: new Date().toISOString(),
      settings: { kind: "pi", url: `${recorder.url}/piwebapi`, allowHttp: true, username: "meridian" },
      secret: legacySeal(key, "pi-legacy", PASSWORD),
    });
    // A file endpoint stored by the previous version.
    await records.put("pi-file", {
      id: "pi-file",
      origin: "file",
      createTime: new Date().toISOString(),
      settings: { kind: "pi", url: `${emu.url}/piwebapi`, allowHttp: true, username: "meridian" },
      secret: legacySeal(key, "pi-file", PASSWORD),
    });
    const file = join(dir, "legacy.json");
    writeFileSync(
      file,
      JSON.stringify([
        { id: "pi-file", kind: "pi", url: `${emu.url}/piwebapi`, allowHttp: true, username: "meridian", password: PASSWORD },
      ]),
    );
    const sender = await startSender(nats, {
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
      OMF_ALLOWED_HOSTS: "127.0.0.1",
      OMF_ENDPOINTS_FILE: file,
    });
    try {
      const c = api(sender);
      recorder.requests.length = 0;
      const refused = await codeOf(c.checkEndpoint({ id: "pi-legacy" }));
      expect(refused.code).toBe(Code.FailedPrecondition);
      expect(refused.message).toMatch(/sealed by an earlier omf-sender, bound to the endpoint id alone, and is refused/);
      expect((await c.getEndpointStatus({ id: "pi-legacy" })).status?.configurationError).toMatch(/earlier omf-sender/);
      expect(recorder.requests).toEqual([]);
      // Still refused after a restart: nothing rewrote it.
      expect((await records.get("pi-legacy"))?.secret?.v).toBeUndefined();

      await until(async () => (await records.get("pi-file"))?.secret?.v === 2, {
        timeoutMs: 10_000,
        what: "the file endpoint sealed again",
      });
      expect(await c.checkEndpoint({ id: "pi-file" })).toMatchObject({ reachable: true, authenticated: true });
      // Given again through the API, the old record becomes a new one.
      const got = (await c.getEndpoint({ id: "pi-legacy" })).endpoint!;
      await c.updateEndpoint({ endpoint: { ...got, url: `${emu.url}/piwebapi`, secret: PASSWORD }, revision: got.revision });
      expect(await c.checkEndpoint({ id: "pi-legacy" })).toMatchObject({ reachable: true, authenticated: true });
    } finally {
      await sender.stop();
    }
  });

  it("key rotation: records of the previous key still open, an update seals them under the current key, and then the previous key can go", async () => {
    const oldKey = TEST_KEY;
    const newKey = randomBytes(32).toString("base64");
    const lab = { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" };
    const first = await startSender(nats, { ...lab, OMF_CREDENTIALS_KEY: oldKey });
    await api(first).createEndpoint({
      endpoint: {
        id: "pi-rotate",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: PASSWORD,
      },
    });
    const oldKid = (await records.get("pi-rotate"))?.secret?.kid;
    await first.stop();
    const second = await startSender(nats, { ...lab, OMF_CREDENTIALS_KEY: newKey, OMF_CREDENTIALS_PREVIOUS_KEYS: oldKey });
    try {
      const c = api(second);
      expect(await c.checkEndpoint({ id: "pi-rotate" })).toMatchObject({ authenticated: true });
      const got = (await c.getEndpoint({ id: "pi-rotate" })).endpoint!;
      await c.updateEndpoint({ endpoint: { ...got, timeoutMs: 10_000 }, revision: got.revision });
      const kid = (await records.get("pi-rotate"))?.secret?.kid;
      expect(kid).not.toBe(oldKid);
    } finally {
      await second.stop();
    }
    const third = await startSender(nats, { ...lab, OMF_CREDENTIALS_KEY: newKey });
    try {
      expect(await api(third).checkEndpoint({ id: "pi-rotate" })).toMatchObject({ authenticated: true });
    } finally {
      await third.stop();
    }
  });
});

describe("secret references", () => {
  it("an {env} or {file} reference sent through the API is invalid_argument naming endpoint.secret", async () => {
    const sender = await startSender(nats, { OMF_ALLOWED_HOSTS: "pi.plant.local" });
    try {
      for (const secret of ['{"env": "NATS_PASSWORD"}', ' {"file":"/run/secrets/credentials-key"}']) {
        const f = await codeOf(
          api(sender).createEndpoint({
            endpoint: { id: "pi-ref", kind: EndpointKind.PI, url: "https://pi.plant.local/piwebapi", username: "u", secret },
          }),
        );
        expect(f.code).toBe(Code.InvalidArgument);
        expect(f.message).toContain('endpoint.secret: an {"env": …} or {"file": …} reference is honoured only in OMF_ENDPOINTS_FILE');
      }
      expect((await records.get("pi-ref")) ?? null).toBeNull();
    } finally {
      await sender.stop();
    }
  });

  it("a reference written into KV is honoured only for a file endpoint as the file declares it: forged or re-pointed, nothing is read or sent", async () => {
    process.env.OMF_SECRET_SEC_PI = PASSWORD;
    const file = join(dir, "refs.json");
    writeFileSync(
      file,
      JSON.stringify([
        {
          id: "pi-ref-file",
          kind: "pi",
          url: `${emu.url}/piwebapi`,
          allowHttp: true,
          username: "meridian",
          password: { env: "OMF_SECRET_SEC_PI" },
        },
      ]),
    );
    const sender = await startSender(nats, {
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
      OMF_ALLOWED_HOSTS: "127.0.0.1",
      OMF_ENDPOINTS_FILE: file,
    });
    try {
      const c = api(sender);
      await until(async () => (await records.get("pi-ref-file")) !== undefined, { timeoutMs: 10_000, what: "file applied" });
      expect(await c.checkEndpoint({ id: "pi-ref-file" })).toMatchObject({ authenticated: true });
      recorder.requests.length = 0;
      // An endpoint the file does not declare, with a reference to the file endpoint's secret.
      await records.put("pi-forged", {
        id: "pi-forged",
        origin: "file",
        createTime: new Date().toISOString(),
        settings: { kind: "pi", url: `${recorder.url}/piwebapi`, allowHttp: true, username: "meridian" },
        secret: { ref: { env: "OMF_SECRET_SEC_PI" } },
      });
      const forged = await codeOf(c.checkEndpoint({ id: "pi-forged" }));
      expect(forged.code).toBe(Code.FailedPrecondition);
      expect(forged.message).toMatch(/a secret reference is honoured only for an endpoint of OMF_ENDPOINTS_FILE/);
      // The file endpoint itself, re-pointed.
      const original = (await records.get("pi-ref-file"))!;
      await records.put("pi-ref-file", { ...original, settings: { ...original.settings, url: `${recorder.url}/piwebapi` } });
      expect((await codeOf(c.checkEndpoint({ id: "pi-ref-file" }))).code).toBe(Code.FailedPrecondition);
      expect(recorder.requests).toEqual([]);
      await records.put("pi-ref-file", original);
    } finally {
      await sender.stop();
    }
  });
});

describe("revisions: an endpoint is never re-pointed silently", () => {
  it("create on an existing id is already_exists; an update names the revision it read; a stale one is aborted; every change is logged", async () => {
    const { logger: capture, lines } = captureLogger({ service: "omf-sender" });
    const sender = await startSender(nats, { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" }, {}, capture);
    try {
      const c = api(sender);
      const endpoint = {
        id: "pi-rev",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: PASSWORD,
      };
      const created = (await c.createEndpoint({ endpoint })).endpoint!;
      expect(created.revision).toBeGreaterThan(0n);
      expect((await codeOf(c.createEndpoint({ endpoint: { ...endpoint, url: `${recorder.url}/piwebapi` } }))).code).toBe(
        Code.AlreadyExists,
      );

      const read = (await c.getEndpoint({ id: "pi-rev" })).endpoint!;
      expect(read.revision).toBe(created.revision);
      const updated = (await c.updateEndpoint({ endpoint: { ...read, timeoutMs: 5000 }, revision: read.revision })).endpoint!;
      expect(updated.revision).toBeGreaterThan(read.revision);
      expect(updated.timeoutMs).toBe(5000);
      expect(await c.checkEndpoint({ id: "pi-rev" })).toMatchObject({ authenticated: true });

      // The revision read before that update is stale now.
      const stale = await codeOf(
        c.updateEndpoint({ endpoint: { ...read, url: `${recorder.url}/piwebapi`, secret: "x" }, revision: read.revision }),
      );
      expect(stale.code).toBe(Code.Aborted);
      expect(stale.message).toContain(`changed since revision ${read.revision} was read (now ${updated.revision})`);
      expect((await codeOf(c.updateEndpoint({ endpoint: read }))).message).toContain("revision: required");
      // Moving it elsewhere without giving the secret again is refused: the stored one does not follow.
      const moveBare = await codeOf(
        c.updateEndpoint({ endpoint: { ...updated, url: `${recorder.url}/piwebapi` }, revision: updated.revision }),
      );
      expect(moveBare.code).toBe(Code.InvalidArgument);
      expect(moveBare.message).toMatch(/endpoint\.secret: required when kind, url, .* change/);
      expect((await codeOf(c.deleteEndpoint({ id: "pi-rev", revision: read.revision }))).code).toBe(Code.Aborted);
      expect((await c.getEndpoint({ id: "pi-rev" })).endpoint?.url).toBe(`${emu.url}/piwebapi`);

      // Moved with the secret given again: allowed, and logged with the URL it left.
      const moved = (
        await c.updateEndpoint({ endpoint: { ...updated, url: `${recorder.url}/piwebapi`, secret: "another" }, revision: updated.revision })
      ).endpoint!;
      await c.deleteEndpoint({ id: "pi-rev", revision: moved.revision });
      const changes = lines.filter((l) => l.endpointId === "pi-rev" && /^endpoint (created|updated|deleted)/.test(String(l.msg)));
      expect(changes.map((l) => l.msg)).toEqual([
        "endpoint created",
        "endpoint updated",
        "endpoint updated; it now points elsewhere",
        "endpoint deleted",
      ]);
      // Each change names who made it: the authenticated caller (the test administrator's key) and the request.
      for (const l of changes)
        expect(l.changedBy).toMatchObject({ caller: "test-admin", via: "api-key", requestId: expect.stringMatching(/.+/) });
      expect(changes[2]).toMatchObject({
        fromRevision: Number(updated.revision),
        revision: Number(moved.revision),
        changes: { url: { from: `${emu.url}/piwebapi`, to: `${recorder.url}/piwebapi` } },
        secret: "replaced",
      });
      expect(JSON.stringify(lines)).not.toContain(PASSWORD);
    } finally {
      await sender.stop();
    }
  });

  it("endpoints of the endpoints file are changed in the file: update and delete through the API are failed_precondition", async () => {
    const file = join(dir, "declared.json");
    writeFileSync(file, JSON.stringify([{ id: "eds-declared", kind: "eds", url: emu.url }]));
    const sender = await startSender(nats, { OMF_ENDPOINTS_FILE: file });
    try {
      const c = api(sender);
      await until(async () => (await records.get("eds-declared")) !== undefined, { timeoutMs: 10_000, what: "file applied" });
      const e = (await c.getEndpoint({ id: "eds-declared" })).endpoint!;
      for (const call of [
        () => c.updateEndpoint({ endpoint: { ...e, timeoutMs: 1000 }, revision: e.revision }),
        () => c.deleteEndpoint({ id: "eds-declared" }),
      ]) {
        const f = await codeOf(call());
        expect(f.code).toBe(Code.FailedPrecondition);
        expect(f.message).toContain("declared in OMF_ENDPOINTS_FILE");
      }
    } finally {
      await sender.stop();
    }
  });
});

describe("allowed hosts", () => {
  it("default: the endpoints file's hosts only; another host is refused at create naming the field and the setting, and at send time when KV says otherwise", async () => {
    const file = join(dir, "hosts.json");
    writeFileSync(file, JSON.stringify([{ id: "eds-known", kind: "eds", url: emu.url }]));
    const sender = await startSender(nats, { OMF_ENDPOINTS_FILE: file });
    try {
      const c = api(sender);
      // Same host and port as a declared endpoint: fine.
      await c.createEndpoint({ endpoint: { id: "eds-same-host", kind: EndpointKind.EDS, url: emu.url, apiVersion: "v1" } });
      const refused = await codeOf(c.createEndpoint({ endpoint: { id: "eds-elsewhere", kind: EndpointKind.EDS, url: recorder.url } }));
      expect(refused.code).toBe(Code.FailedPrecondition);
      expect(refused.message).toContain(
        `endpoint.url: host "${recHost()}" is not allowed: neither OMF_ALLOWED_HOSTS nor an endpoint of OMF_ENDPOINTS_FILE names it`,
      );
      const token = await codeOf(
        c.createEndpoint({
          endpoint: {
            id: "adh-token",
            kind: EndpointKind.ADH,
            url: `https://${emuHost()}`,
            tenantId: "t",
            namespaceId: "n",
            clientId: "c",
            secret: "s",
            tokenUrl: "https://login.attacker.example/token",
          },
        }),
      );
      expect(token.message).toContain('endpoint.token_url: host "login.attacker.example:443" is not allowed');
      expect((await records.get("eds-elsewhere")) ?? null).toBeNull();

      // Someone with bus access points an endpoint at the recorder: nothing goes there.
      recorder.requests.length = 0;
      const e = (await records.get("eds-same-host"))!;
      await records.put("eds-same-host", { ...e, settings: { ...e.settings, url: recorder.url } });
      const send = await codeOf(
        c.sendOmf({
          messageType: OmfMessageType.TYPE,
          body: '[{"id":"T","type":"object","classification":"dynamic"}]',
          endpointIds: ["eds-same-host"],
        }),
      );
      expect(send.code).toBe(Code.FailedPrecondition);
      expect(send.message).toContain(`endpoint.url: host "${recHost()}" is not allowed`);
      expect((await c.getEndpointStatus({ id: "eds-same-host" })).status?.configurationError).toMatch(/is not allowed/);
      expect(recorder.requests).toEqual([]);
    } finally {
      await sender.stop();
    }
  });
});

describe("insecure settings", () => {
  it("refused unless OMF_ALLOW_INSECURE_ENDPOINTS (and a CA path unless inside OMF_CA_DIR), at create and at send time", async () => {
    const sender = await startSender(nats, { OMF_ALLOWED_HOSTS: "127.0.0.1,eds.plant.local" });
    try {
      const c = api(sender);
      const pi = { id: "pi-insecure", kind: EndpointKind.PI, url: `https://${emuHost()}/piwebapi`, username: "meridian", secret: PASSWORD };
      const cases: Array<[object, string]> = [
        [
          { ...pi, url: `${emu.url}/piwebapi`, allowHttp: true },
          "endpoint.allow_http: plain http is refused unless the operator sets OMF_ALLOW_INSECURE_ENDPOINTS=true",
        ],
        [{ ...pi, insecureSkipTlsVerify: true }, "endpoint.insecure_skip_tls_verify: turning TLS verification off is refused unless"],
        [
          { ...pi, caPemPath: "/etc/ssl/certs/ca-certificates.crt" },
          "endpoint.ca_pem_path: a private CA is refused unless the operator sets OMF_CA_DIR",
        ],
        [
          { id: "eds-far", kind: EndpointKind.EDS, url: "http://eds.plant.local:5590" },
          "endpoint.url: plain http to an Edge Data Store on another host is refused",
        ],
      ];
      for (const [endpoint, text] of cases) {
        const f = await codeOf(c.createEndpoint({ endpoint }));
        expect(f.code, text).toBe(Code.FailedPrecondition);
        expect(f.message).toContain(text);
      }
      expect(await records.keys()).not.toContain("pi-insecure");
      // Written into KV anyway: not sent to.
      await records.put("pi-insecure", {
        id: "pi-insecure",
        origin: "api",
        createTime: new Date().toISOString(),
        settings: { kind: "eds", url: emu.url, verifySsl: false },
      });
      const status = (await c.getEndpointStatus({ id: "pi-insecure" })).status!;
      expect(status.configurationError).toContain("verifySsl: turning TLS verification off is refused");
      expect(status.insecureSettings).toEqual(["insecure_skip_tls_verify"]);
      expect((await codeOf(c.checkEndpoint({ id: "pi-insecure" }))).code).toBe(Code.FailedPrecondition);
      await records.delete("pi-insecure");
    } finally {
      await sender.stop();
    }
  });

  it("allowed: created, listed in the endpoint and its status, and logged at warn when omf-sender starts", async () => {
    const env = { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" };
    const sender = await startSender(nats, env);
    try {
      const c = api(sender);
      const created = (
        await c.createEndpoint({
          endpoint: {
            id: "pi-lab",
            kind: EndpointKind.PI,
            url: `${emu.url}/piwebapi`,
            allowHttp: true,
            username: "meridian",
            secret: PASSWORD,
          },
        })
      ).endpoint!;
      expect(created.insecureSettings).toEqual(["allow_http"]);
      expect((await c.getEndpointStatus({ id: "pi-lab" })).status?.insecureSettings).toEqual(["allow_http"]);
    } finally {
      await sender.stop();
    }
    const { logger: capture, lines } = captureLogger({ service: "omf-sender" });
    const again = await startSender(nats, env, {}, capture);
    try {
      await until(() => lines.some((l) => l.endpoint === "pi-lab" && l.msg === "stored endpoint with insecure settings"), {
        timeoutMs: 5000,
        what: "the warning",
      });
      expect(lines.find((l) => l.endpoint === "pi-lab")).toMatchObject({ level: 40, insecureSettings: ["allow_http"] });
      expect(lines.some((l) => l.level === 40 && String(l.msg).startsWith("OMF_ALLOW_INSECURE_ENDPOINTS is on"))).toBe(true);
      await api(again).deleteEndpoint({ id: "pi-lab" });
    } finally {
      await again.stop();
    }
  });
});

describe("what is echoed of an endpoint's answer", () => {
  it(`CheckEndpoint and SendOmf give back at most ${MAX_ECHO_CHARS} characters per endpoint, no credentials, no stack frames`, async () => {
    const echoing = await startRecordingServer((req) => {
      if (req.text.includes("many-events"))
        return json(400, {
          Messages: Array.from({ length: 500 }, (_, i) => ({
            MessageIndex: i,
            Events: [{ EventInfo: { Message: `event ${i} ${"m".repeat(200)}`, Reason: "r".repeat(300) }, Severity: "Error" }],
            Status: { Code: 400, HighestSeverity: "Error" },
          })),
        });
      // A reply that echoes the request's Authorization header, the password, and a stack trace, in 200 KB.
      return {
        status: 400,
        body: `bad request; you sent ${req.headers.authorization} (password ${PASSWORD})\n    at handler (/srv/meridian/internal.js:1:2)\n${"x".repeat(200_000)}`,
      };
    });
    const sender = await startSender(nats, { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" });
    try {
      const c = api(sender);
      await c.createEndpoint({
        endpoint: {
          id: "pi-echo",
          kind: EndpointKind.PI,
          url: `${echoing.url}/piwebapi`,
          allowHttp: true,
          username: "meridian",
          secret: PASSWORD,
          disableCompression: true,
        },
      });
      const check = await c.checkEndpoint({ id: "pi-echo" });
      expect(check.httpStatus).toBe(400);
      expect(check.error.length).toBeLessThanOrEqual(MAX_ECHO_CHARS);
      const container = (id: string) => ({
        messageType: OmfMessageType.CONTAINER,
        body: JSON.stringify([{ id, typeid: "T" }]),
        endpointIds: ["pi-echo"],
      });
      const sent = await c.sendOmf(container("C"));
      const many = await c.sendOmf(container("many-events"));
      expect(sent.results[0]?.httpStatus).toBe(400);
      expect(many.results[0]?.httpStatus).toBe(400);
      for (const r of [sent.results[0]!, many.results[0]!]) {
        expect(r.ok).toBe(false);
        const text = [
          r.error,
          ...r.events.flatMap((e) => [e.message, e.reason, e.resolution, ...Object.entries(e.parameters).flat()]),
        ].join("");
        expect(text.length).toBeLessThanOrEqual(MAX_ECHO_CHARS);
      }
      expect(many.results[0]!.eventsOmitted).toBeGreaterThan(400);
      const all = JSON.stringify({
        check: check.error,
        sent: sent.results[0]!.error,
        events: sent.results[0]!.events.map((e) => e.message),
      });
      expect(all).not.toContain(PASSWORD);
      expect(all).not.toContain(BASIC);
      expect(all).not.toContain("/srv/meridian");
      expect(all).toContain("Basic [redacted]");
      const status = (await c.getEndpointStatus({ id: "pi-echo" })).status!;
      expect(status.lastError.length).toBeLessThanOrEqual(MAX_ECHO_CHARS);
      expect(status.lastError).not.toContain(PASSWORD);
    } finally {
      await sender.stop();
      await echoing.close();
    }
  });
});

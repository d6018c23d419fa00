import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  EndpointKind,
  ListEndpointsResponseSchema,
  OmfAction,
  OmfMessageType,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { SEED_CONTAINERS, SEED_POINTS, SEED_TYPES, seedBody, seedData } from "@meridian/fixtures/omf-seed";
import { ConfigError, DEVELOPMENT_CREDENTIALS_KEY } from "@meridian/service-kit";
import { captureLogger, codeOf, testIdentitiesFile } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { omfSenderConfig } from "../src/config.js";
import { ENDPOINTS_BUCKET } from "../src/pipeline/endpoints.js";
import type { OmfSender } from "../src/service.js";
import { startOmfSender } from "../src/service.js";
import {
  apiClient,
  getJson,
  logger,
  type NatsServerHandle,
  startEmulator,
  startNatsServer,
  startSender,
  TEST_KEY,
  until,
} from "./harness.js";

const PI_AUTH = `Basic ${Buffer.from("meridian:meridian").toString("base64")}`;
/** The emulator speaks plain http on 127.0.0.1: what a lab permits, and these tests are one. */
const LAB = { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" };
const EDS_BASE = "/api/v1/tenants/default/namespaces/default";

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let api: ReturnType<typeof apiClient>;
const secretsDir = mkdtempSync(join(tmpdir(), "omf-secrets-"));

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  const secretFile = join(secretsDir, "pi-password");
  writeFileSync(secretFile, "meridian\n");
  const file = join(secretsDir, "endpoints.json");
  writeFileSync(
    file,
    JSON.stringify({
      endpoints: [
        { id: "file-pi", kind: "pi", url: `${emu.url}/piwebapi`, allowHttp: true, username: "meridian", password: { file: secretFile } },
        { id: "file-eds", kind: "eds", url: emu.url },
      ],
    }),
  );
  sender = await startSender(nats, { ...LAB, OMF_ENDPOINTS_FILE: file, OMF_SECRET_DIR: secretsDir });
  api = apiClient(sender);
  await until(async () => (await sender.registry.list()).length >= 2, { timeoutMs: 10_000, what: "endpoints file applied" });
});
afterAll(async () => {
  await sender?.stop();
  await emu?.stop();
  await nats?.stop();
});

describe("endpoints", () => {
  it("creates, gets, lists and deletes; the secret is never returned and is encrypted in KV", async () => {
    const created = await api.createEndpoint({
      endpoint: {
        id: "pi-a",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: "s3cret-pw",
      },
    });
    expect(created.endpoint?.hasSecret).toBe(true);
    expect(created.endpoint?.secret).toBe("");
    expect(created.endpoint?.origin).toBe("api");
    const got = await api.getEndpoint({ id: "pi-a" });
    expect(got.endpoint?.url).toBe(`${emu.url}/piwebapi`);
    expect(got.endpoint?.secret).toBe("");
    const listed = await api.listEndpoints({});
    expect(listed.endpoints.map((e) => e.id)).toEqual(expect.arrayContaining(["pi-a", "file-pi", "file-eds"]));
    expect(toJsonString(ListEndpointsResponseSchema, listed)).not.toContain("s3cret-pw");
    // At rest: the KV value holds ciphertext only.
    const kv = await sender.bus.js().views.kv(ENDPOINTS_BUCKET);
    const raw = new TextDecoder().decode((await kv.get("pi-a"))!.value);
    expect(raw).not.toContain("s3cret-pw");
    expect(JSON.parse(raw).secret.alg).toBe("A256GCM");
    await api.deleteEndpoint({ id: "pi-a" });
    expect((await codeOf(api.getEndpoint({ id: "pi-a" }))).code).toBe(Code.NotFound);
  });

  it("file endpoints keep a secret reference, not the secret", async () => {
    const e = (await api.getEndpoint({ id: "file-pi" })).endpoint!;
    expect(e.origin).toBe("file");
    expect(e.hasSecret).toBe(true);
    const kv = await sender.bus.js().views.kv(ENDPOINTS_BUCKET);
    const raw = new TextDecoder().decode((await kv.get("file-pi"))!.value);
    expect(raw).not.toContain('"meridian\\n"');
    expect(JSON.parse(raw).secret.ref.file).toContain("pi-password");
  });

  it("rejects bad configs with invalid_argument naming the field", async () => {
    const cases: Array<[object, string]> = [
      [{ id: "x", url: "https://pi/piwebapi" }, "endpoint.kind"],
      [{ id: "x", kind: EndpointKind.PI, username: "u", secret: "p" }, "endpoint.url"],
      [{ id: "x", kind: EndpointKind.PI, url: "ftp://pi/piwebapi", username: "u", secret: "p" }, "endpoint.url"],
      [{ id: "x", kind: EndpointKind.PI, url: "http://pi/piwebapi", username: "u", secret: "p" }, "endpoint.url"],
      [{ id: "x", kind: EndpointKind.PI, url: "https://pi/piwebapi", secret: "p" }, "endpoint.username"],
      [{ id: "x", kind: EndpointKind.PI, url: "https://pi/piwebapi", username: "u" }, "endpoint.secret"],
      [{ id: "x", kind: EndpointKind.ADH, url: "https://adh", namespaceId: "n", clientId: "c", secret: "s" }, "endpoint.tenant_id"],
      [{ id: "x", kind: EndpointKind.EDS, url: "http://localhost:5590", omfVersion: "2.0" }, "endpoint.omf_version"],
      [{ id: "x", kind: EndpointKind.EDS, url: "http://localhost:5590", secret: "s" }, "endpoint.secret"],
      [{ id: "Bad_Id", kind: EndpointKind.EDS, url: "http://localhost:5590" }, "endpoint.id"],
      [{ kind: EndpointKind.EDS, url: "http://localhost:5590" }, "endpoint.id"],
    ];
    for (const [endpoint, field] of cases) {
      const f = await codeOf(api.createEndpoint({ endpoint }));
      expect(f.code, JSON.stringify(endpoint)).toBe(Code.InvalidArgument);
      expect(f.message, JSON.stringify(endpoint)).toContain(field);
    }
    expect((await codeOf(api.createEndpoint({}))).message).toContain("endpoint: required");
  });

  it("an endpoint beyond OMF_MAX_ENDPOINTS is resource_exhausted naming the setting; a delete makes room", async () => {
    const own = await startNatsServer();
    const s = await startSender(own, { ...LAB, OMF_MAX_ENDPOINTS: "2" });
    try {
      const c = apiClient(s);
      const eds = (id: string) => ({ endpoint: { id, kind: EndpointKind.EDS, url: emu.url } });
      await c.createEndpoint(eds("q-1"));
      await c.createEndpoint(eds("q-2"));
      const refused = await codeOf(c.createEndpoint(eds("q-3")));
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.message).toContain("OMF_MAX_ENDPOINTS=2");
      expect((await c.listEndpoints({})).endpoints.map((e) => e.id).sort()).toEqual(["q-1", "q-2"]);
      await c.deleteEndpoint({ id: "q-1" });
      await c.createEndpoint(eds("q-3"));
    } finally {
      await s.stop();
      await own.stop();
    }
  });

  it("duplicate id → already_exists; unknown id → not_found", async () => {
    await api.createEndpoint({ endpoint: { id: "eds-dup", kind: EndpointKind.EDS, url: emu.url } });
    const dup = await codeOf(api.createEndpoint({ endpoint: { id: "eds-dup", kind: EndpointKind.EDS, url: emu.url } }));
    expect(dup.code).toBe(Code.AlreadyExists);
    expect(dup.message).toContain("eds-dup");
    for (const call of [
      () => api.getEndpoint({ id: "nope" }),
      () => api.deleteEndpoint({ id: "nope" }),
      () => api.checkEndpoint({ id: "nope" }),
      () => api.getEndpointStatus({ id: "nope" }),
      () => api.sendOmf({ messageType: OmfMessageType.TYPE, body: "[]", endpointIds: ["nope"] }),
      () => api.sendOmf({ messageType: OmfMessageType.TYPE, body: JSON.stringify([SEED_TYPES[0]]), endpointIds: ["eds-dup", "nope"] }),
    ]) {
      const f = await codeOf(call());
      if (f.code === Code.InvalidArgument) expect(f.message).toContain("body");
      else {
        expect(f.code).toBe(Code.NotFound);
        expect(f.message).toContain("nope");
      }
    }
    // Nothing was sent to eds-dup by the call that also named an unknown endpoint.
    expect((await getJson(`${emu.url}${EDS_BASE}/Types/FirstDynamicType`)).status).toBe(404);
  });

  it("credentials without OMF_CREDENTIALS_KEY → failed_precondition naming the setting", async () => {
    const keyless = await startSender(nats, { ...LAB, OMF_CREDENTIALS_KEY: undefined as unknown as string });
    try {
      const c = apiClient(keyless);
      const f = await codeOf(
        c.createEndpoint({ endpoint: { id: "pi-nokey", kind: EndpointKind.PI, url: "https://pi/piwebapi", username: "u", secret: "p" } }),
      );
      expect(f.code).toBe(Code.FailedPrecondition);
      expect(f.message).toContain("OMF_CREDENTIALS_KEY");
      // Without credentials it is fine.
      await c.createEndpoint({ endpoint: { id: "eds-nokey", kind: EndpointKind.EDS, url: emu.url } });
    } finally {
      await keyless.stop();
    }
  });

  it("a bad endpoints file stops the start naming the file setting and the field", async () => {
    const bad = join(secretsDir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify([
        { id: "a", kind: "adh", url: "https://adh", tenantId: "t", clientId: "c", clientSecret: { env: "OMF_SECRET_NOPE_NOT_SET" } },
      ]),
    );
    const config = omfSenderConfig.parse({
      PORT: "0",
      AUTH_IDENTITIES_FILE: testIdentitiesFile(),
      NATS_URL: nats.url,
      OMF_ENDPOINTS_FILE: bad,
      OMF_CREDENTIALS_KEY: TEST_KEY,
    });
    const err = await startOmfSender(config, logger, { installSignalHandlers: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("OMF_ENDPOINTS_FILE");
    expect(err.message).toContain("endpoints[0].namespaceId");
    expect(err.message).toContain("endpoints[0].clientSecret: secret environment variable OMF_SECRET_NOPE_NOT_SET is not set");
    const literal = join(secretsDir, "literal.json");
    writeFileSync(literal, JSON.stringify([{ id: "p", kind: "pi", url: "https://pi/piwebapi", username: "u", password: "pw" }]));
    const err2 = await startOmfSender(
      omfSenderConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, OMF_ENDPOINTS_FILE: literal }),
      logger,
      {
        installSignalHandlers: false,
      },
    ).catch((e) => e);
    expect(err2.message).toContain("endpoints[0].password: a literal secret needs OMF_CREDENTIALS_KEY");
    expect(err2.message).not.toContain("pw");
  });

  it("secrets never reach the logs (create, check with a wrong secret, send, delete at debug level)", async () => {
    const { logger: capture, raw: lines } = captureLogger({ service: "omf-sender" });
    const s = await startSender(nats, LAB, {}, capture);
    try {
      const c = apiClient(s);
      const secret = "Sup3r-S3cret-Value";
      await c.createEndpoint({
        endpoint: { id: "pi-logged", kind: EndpointKind.PI, url: `${emu.url}/piwebapi`, allowHttp: true, username: "meridian", secret },
      });
      await c.checkEndpoint({ id: "pi-logged" });
      await c.sendOmf({ messageType: OmfMessageType.TYPE, body: JSON.stringify([SEED_TYPES[0]]), endpointIds: ["pi-logged"] });
      await c.getEndpoint({ id: "pi-logged" });
      await c.deleteEndpoint({ id: "pi-logged" });
      expect(lines.length).toBeGreaterThan(3);
      const all = lines.join("\n");
      expect(all).toContain("pi-logged");
      expect(all).not.toContain(secret);
      expect(all).not.toContain(Buffer.from(`meridian:${secret}`).toString("base64"));
    } finally {
      await s.stop();
    }
  });

  it("the compose development key works and is called out in the log at start", async () => {
    const { logger: capture, lines } = captureLogger({ service: "omf-sender" });
    const s = await startSender(nats, { ...LAB, OMF_CREDENTIALS_KEY: DEVELOPMENT_CREDENTIALS_KEY }, {}, capture);
    try {
      expect(lines.find((l) => l.level === 40 && String(l.msg).includes("development key"))).toBeDefined();
      const created = await apiClient(s).createEndpoint({
        endpoint: {
          id: "pi-devkey",
          kind: EndpointKind.PI,
          url: `${emu.url}/piwebapi`,
          allowHttp: true,
          username: "meridian",
          secret: "meridian",
        },
      });
      expect(created.endpoint?.id).toBe("pi-devkey");
      expect((await apiClient(s).checkEndpoint({ id: "pi-devkey" })).authenticated).toBe(true);
      await apiClient(s).deleteEndpoint({ id: "pi-devkey" });
    } finally {
      await s.stop();
    }
  });

  it("a bad OMF_CREDENTIALS_KEY is a config error naming it", () => {
    const r = omfSenderConfig.safeParse({ OMF_CREDENTIALS_KEY: "c2hvcnQ=" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["OMF_CREDENTIALS_KEY"]);
    expect(JSON.stringify(r.error?.issues)).not.toContain("c2hvcnQ=");
  });

  it("CheckEndpoint: authenticated, wrong password, unreachable", async () => {
    const ok = await api.checkEndpoint({ id: "file-pi" });
    expect(ok).toMatchObject({ reachable: true, authenticated: true });
    await api.createEndpoint({
      endpoint: {
        id: "pi-wrong",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: "wrong",
      },
    });
    const wrong = await api.checkEndpoint({ id: "pi-wrong" });
    expect(wrong).toMatchObject({ reachable: true, authenticated: false, httpStatus: 401 });
    await api.createEndpoint({ endpoint: { id: "eds-down", kind: EndpointKind.EDS, url: "http://127.0.0.1:1", timeoutMs: 2000 } });
    const down = await api.checkEndpoint({ id: "eds-down" });
    expect(down).toMatchObject({ reachable: false, authenticated: false, httpStatus: 0 });
    expect(down.error).toMatch(/ECONNREFUSED|failed/);
  });
});

describe("SendOmf", () => {
  it("rejects a bad request with invalid_argument naming the field", async () => {
    const cases: Array<[object, string]> = [
      [{ body: "[]", endpointIds: ["file-eds"] }, "message_type: required"],
      [{ messageType: OmfMessageType.TYPE, endpointIds: ["file-eds"] }, "body: required"],
      [{ messageType: OmfMessageType.TYPE, body: "[{}]" }, "endpoint_ids: required"],
      [{ messageType: OmfMessageType.TYPE, body: "not json", endpointIds: ["file-eds"] }, "body: not valid JSON"],
      [{ messageType: OmfMessageType.TYPE, body: '{"id":"x"}', endpointIds: ["file-eds"] }, "body: must be a JSON array"],
      [{ messageType: OmfMessageType.TYPE, body: "[]", endpointIds: ["file-eds"] }, "body: must contain at least one"],
      [{ messageType: OmfMessageType.TYPE, body: "[1]", endpointIds: ["file-eds"] }, "body: [0] must be a JSON object"],
      [{ messageType: OmfMessageType.TYPE, body: "[{}]", endpointIds: ["file-eds", "file-eds"] }, "endpoint_ids[1]: duplicate"],
      [{ messageType: 9, body: "[{}]", endpointIds: ["file-eds"] }, "message_type: must be"],
      [{ messageType: OmfMessageType.TYPE, action: 9, body: "[{}]", endpointIds: ["file-eds"] }, "action: must be"],
    ];
    for (const [req, text] of cases) {
      const f = await codeOf(api.sendOmf(req));
      expect(f.code, JSON.stringify(req)).toBe(Code.InvalidArgument);
      expect(f.message, JSON.stringify(req)).toContain(text);
    }
  });

  it("an OMF message the endpoint rejects is a per-endpoint result with the OMF error body", async () => {
    const res = await api.sendOmf({
      messageType: OmfMessageType.CONTAINER,
      body: JSON.stringify([{ id: "Orphan", typeid: "NoSuchType" }]),
      endpointIds: ["file-pi", "file-eds"],
    });
    expect(res.results.map((r) => r.endpointId)).toEqual(["file-pi", "file-eds"]);
    for (const r of res.results) {
      expect(r.ok).toBe(false);
      expect(r.httpStatus).toBeGreaterThanOrEqual(400);
      expect(r.events.length).toBeGreaterThan(0);
      expect(r.events.map((e) => `${e.message} ${e.reason}`).join(" ")).toMatch(/type/i);
    }
    const local = await api.sendOmf({
      messageType: OmfMessageType.TYPE,
      body: JSON.stringify([{ id: "__Reserved" }]),
      endpointIds: ["file-eds"],
    });
    expect(local.results[0]).toMatchObject({ ok: false, errorKind: "invalid_message", httpStatus: 0 });
    expect(local.results[0]!.error).toContain("body[0].id");
  });

  it("golden: the seed's types, containers and data land in PI and EDS, read back as test.py does; delete cleans up", async () => {
    await api.createEndpoint({
      endpoint: {
        id: "adh",
        kind: EndpointKind.ADH,
        url: emu.url,
        allowHttp: true,
        tenantId: "t-0001",
        namespaceId: "Samples",
        clientId: "meridian-client",
        secret: "meridian-secret",
      },
    });
    const endpoints = ["file-pi", "file-eds", "adh"];
    // The sample speaks OMF 1.1 (uom); our endpoints default to 1.2, which accepts the same bodies.
    // Each body is the seed's: json.dumps([obj]) of its fixture files.
    const send = async (messageType: OmfMessageType, body: readonly unknown[], action = OmfAction.CREATE) => {
      const res = await api.sendOmf({ messageType, action, body: seedBody(body), endpointIds: endpoints });
      return res.results;
    };
    for (const t of SEED_TYPES) for (const r of await send(OmfMessageType.TYPE, [t])) expect(r.ok, r.error).toBe(true);
    for (const c of SEED_CONTAINERS) for (const r of await send(OmfMessageType.CONTAINER, [c])) expect(r.ok, r.error).toBe(true);
    const sent = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < 2; i++) {
      for (const datum of seedData(i, new Date(Date.now() + i * 1000))) {
        for (const r of await send(OmfMessageType.DATA, [datum])) expect(r.ok, r.error).toBe(true);
        sent.set(datum.containerid, datum.values[0]!);
      }
    }

    // PI: dataservers → points?nameFilter → value (test.py)
    const h = { authorization: PI_AUTH, "Accept-Verbosity": "verbose" };
    const ds = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, h);
    expect(ds.status).toBe(200);
    const names: string[] = [];
    for (const c of SEED_CONTAINERS) {
      const pts = await getJson(`${ds.body.Links.Points}?nameFilter=${c.id}*`, h);
      expect(pts.status).toBe(200);
      expect(pts.body.Items.length).toBeGreaterThan(0);
      const last = sent.get(c.id)!;
      for (const item of pts.body.Items) {
        names.push(item.Name);
        const v = await getJson(item.Links.Value, h);
        expect(v.status).toBe(200);
        expect(v.body.Value?.Name).not.toBe("Pt Created");
        const parts = (item.Name as string).split(".");
        if (parts.length > 1) expect(v.body.Value).toEqual(last[parts[1]!]);
        else for (const [k, x] of Object.entries(last)) if (k !== "Timestamp") expect(v.body.Value).toEqual(x);
      }
    }
    expect(names.sort()).toEqual([...SEED_POINTS].sort());

    // EDS: Types/{id}, Streams/{id}, Streams/{id}/Data/last equal to what was sent (Timestamp literally).
    const rh = { "Accept-Verbosity": "verbose" };
    for (const t of SEED_TYPES) expect((await getJson(`${emu.url}${EDS_BASE}/Types/${t.id}`, rh)).status).toBe(200);
    for (const c of SEED_CONTAINERS) {
      expect((await getJson(`${emu.url}${EDS_BASE}/Streams/${c.id}`, rh)).status).toBe(200);
      const last = await getJson(`${emu.url}${EDS_BASE}/Streams/${c.id}/Data/last`, rh);
      expect(last.status).toBe(200);
      expect(last.body).toEqual(sent.get(c.id));
    }

    // ADH: the same read-back with a bearer token of the sample's client.
    const tok = await fetch(`${emu.url}/identity/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "client_id=meridian-client&client_secret=meridian-secret&grant_type=client_credentials",
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const ah = { ...rh, authorization: `Bearer ${tok.access_token}` };
    const ADH_BASE = "/api/v1/tenants/t-0001/namespaces/Samples";
    for (const t of SEED_TYPES) expect((await getJson(`${emu.url}${ADH_BASE}/Types/${t.id}`, ah)).status).toBe(200);
    for (const c of SEED_CONTAINERS) {
      const last = await getJson(`${emu.url}${ADH_BASE}/Streams/${c.id}/Data/last`, ah);
      expect(last.status).toBe(200);
      expect(last.body).toEqual(sent.get(c.id));
    }

    const status = await api.getEndpointStatus({ id: "file-eds" });
    expect(status.status?.sentMessages).toBeGreaterThanOrEqual(15n);

    // Cleanup as test.py: containers, then types, full objects, action delete (409 would count as success).
    for (const c of SEED_CONTAINERS)
      for (const r of await send(OmfMessageType.CONTAINER, [c], OmfAction.DELETE)) expect(r.ok || r.httpStatus === 409).toBe(true);
    for (const t of SEED_TYPES)
      for (const r of await send(OmfMessageType.TYPE, [t], OmfAction.DELETE)) expect(r.ok || r.httpStatus === 409).toBe(true);
    const after = await getJson(`${ds.body.Links.Points}?nameFilter=*`, h);
    expect(after.body.Items).toEqual([]);
    expect((await getJson(`${emu.url}${EDS_BASE}/Streams/FirstContainer`)).status).toBe(404);
    expect((await getJson(`${emu.url}${EDS_BASE}/Types/FirstDynamicType`)).status).toBe(404);
    expect((await getJson(`${emu.url}${ADH_BASE}/Streams/FirstContainer`, ah)).status).toBe(404);
    const state = await getJson(`${emu.url}/_emulator/state`);
    expect(state.body.scopes.pi.types).toEqual({});
    expect(state.body.scopes.pi.containers).toEqual({});
  });
});

import { writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_empty } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "@meridian/contracts/grpc/health/v1/health_pb";
import * as v1 from "@meridian/contracts/grpc/reflection/v1/reflection_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { captureLogger, codeOf, createTestCa, TEST_KEYS, testCredential, testIdentities, until } from "@meridian/testing";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { assertAccessRules } from "../src/auth/access.js";
import { hashApiKey, newApiKey } from "../src/auth/api-keys.js";
import { callerOf } from "../src/auth/caller.js";
import { startTestService, type TestService, testAuth } from "./harness.js";

const started: TestService[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

/** A RouteService whose createRoute and getRoute answer, and a Subscribe that streams until the client leaves. */
async function start(env: Record<string, string> = {}): Promise<TestService> {
  const { logger } = captureLogger();
  const svc = await startTestService({
    auth: testAuth(logger, env),
    routes(router) {
      router.service(RouteService, {
        async createRoute(req) {
          return { route: req.route };
        },
        async getRoute(req) {
          return { route: { id: req.id } };
        },
      });
      router.service(TelemetryService, {
        async *subscribe(_req, ctx) {
          while (!ctx.signal.aborted) {
            yield { event: { id: "e" } };
            await new Promise((r) => setTimeout(r, 20));
          }
        },
      });
    },
  });
  started.push(svc);
  return svc;
}

const works = (call: Promise<unknown>) =>
  call.then(
    () => true,
    () => false,
  );

const routes = (url: string, credential?: string | null) =>
  createClient(RouteService, createGrpcTransport({ baseUrl: url, interceptors: credential === null ? [] : [testCredential(credential)] }));

describe("authentication and roles", () => {
  it("refuses a call without credentials (unauthenticated), names what to send, and logs no key", async () => {
    const svc = await start();
    const refused = await codeOf(routes(svc.url, null).getRoute({ id: "r1" }));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.message).toContain("authorization: Bearer");
    expect(await routes(svc.url).getRoute({ id: "r1" })).toMatchObject({ route: { id: "r1" } });
    expect(svc.raw.join("\n")).not.toContain(TEST_KEYS.admin);
  });

  it("refuses an unknown key and a known id with a wrong secret alike, without saying which", async () => {
    const svc = await start();
    const unknown = await codeOf(routes(svc.url, newApiKey().key).getRoute({ id: "r1" }));
    const forged = TEST_KEYS.admin.slice(0, 17) + "A".repeat(43);
    const wrongSecret = await codeOf(routes(svc.url, forged).getRoute({ id: "r1" }));
    expect(unknown.code).toBe(Code.Unauthenticated);
    expect(wrongSecret.code).toBe(Code.Unauthenticated);
    expect(wrongSecret.message).toMatch(/API key [0-9a-f]{12} not recognised/);
    expect(await codeOf(routes(svc.url, "not-a-key").getRoute({ id: "r1" }))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("a key without the RPC's role gets permission_denied naming the role; with the role the call works", async () => {
    const svc = await start();
    const denied = await codeOf(routes(svc.url, TEST_KEYS["telemetry:read"]).getRoute({ id: "r1" }));
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.message).toContain('"routes:read"');
    expect(await routes(svc.url, TEST_KEYS["routes:read"]).getRoute({ id: "r1" })).toMatchObject({ route: { id: "r1" } });
    // Reading is not writing.
    expect((await codeOf(routes(svc.url, TEST_KEYS["routes:read"]).createRoute({ route: { id: "r2" } }))).code).toBe(Code.PermissionDenied);
    expect(await routes(svc.url, TEST_KEYS["routes:admin"]).createRoute({ route: { id: "r2" } })).toMatchObject({ route: { id: "r2" } });
  });

  it("checks Connect JSON over HTTP/1.1 the same way as gRPC", async () => {
    const svc = await start();
    const plain = await fetch(`${svc.url}/meridian.route.v1.RouteService/GetRoute`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "r1" }),
    });
    expect(plain.status).toBe(401);
    const ok = await fetch(`${svc.url}/meridian.route.v1.RouteService/GetRoute`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS["routes:read"]}` },
      body: JSON.stringify({ id: "r1" }),
    });
    expect(ok.status).toBe(200);
    const viaConnect = createClient(RouteService, createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" }));
    expect((await codeOf(viaConnect.getRoute({ id: "r1" }))).code).toBe(Code.Unauthenticated);
  });

  it("an expired key is refused with its expiry; a key added to the identities file works without a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "auth-"));
    const file = join(dir, "identities.json");
    const expired = newApiKey();
    const added = newApiKey();
    const identities = testIdentities();
    identities.apiKeys.push({
      id: expired.id,
      name: "old",
      sha256: expired.sha256,
      roles: ["*"],
      expiresAt: "2020-01-01T00:00:00Z",
    } as never);
    writeFileSync(file, JSON.stringify(identities));
    const svc = await start({ AUTH_IDENTITIES_FILE: file });
    const refused = await codeOf(routes(svc.url, expired.key).getRoute({ id: "r1" }));
    expect(refused).toMatchObject({ code: Code.Unauthenticated });
    expect(refused.message).toContain("expired at 2020-01-01");

    expect((await codeOf(routes(svc.url, added.key).getRoute({ id: "r1" }))).code).toBe(Code.Unauthenticated);
    identities.apiKeys.push({ id: added.id, name: "added", sha256: added.sha256, roles: ["routes:read"] });
    writeFileSync(file, JSON.stringify(identities));
    await until(async () => works(routes(svc.url, added.key).getRoute({ id: "r1" })), {
      what: "the added key accepted",
      timeoutMs: 15_000,
    });

    // A broken edit keeps the identities loaded before: nobody is locked out by a typo.
    writeFileSync(file, "{ not json");
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await routes(svc.url, added.key).getRoute({ id: "r1" })).toMatchObject({ route: { id: "r1" } });
  }, 30_000);

  it("health stays open; reflection needs a known caller unless AUTH_REFLECTION=open", async () => {
    const svc = await start();
    const health = createClient(Health, createGrpcTransport({ baseUrl: svc.url }));
    expect((await health.check({ service: "" })).status).toBe(1);
    const reflectionOf = (url: string, credential?: string | null) =>
      createClient(
        v1.ServerReflection,
        createGrpcTransport({ baseUrl: url, interceptors: credential === null ? [] : [testCredential(credential)] }),
      );
    const ask = async (url: string, credential?: string | null) => {
      for await (const res of reflectionOf(url, credential).serverReflectionInfo(
        (async function* () {
          yield { messageRequest: { case: "listServices" as const, value: "" } };
        })(),
      )) {
        return res.messageResponse.case;
      }
    };
    expect((await codeOf(ask(svc.url, null))).code).toBe(Code.Unauthenticated);
    expect(await ask(svc.url, TEST_KEYS["telemetry:read"])).toBe("listServicesResponse");
    const open = await start({ AUTH_REFLECTION: "open" });
    expect(await ask(open.url, null)).toBe("listServicesResponse");
  });

  it("/metrics is open by default; AUTH_METRICS=required wants a metrics:read caller", async () => {
    const svc = await start();
    expect((await fetch(`${svc.url}/metrics`)).status).toBe(200);
    const closed = await start({ AUTH_METRICS: "required" });
    const refused = await fetch(`${closed.url}/metrics`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain("Bearer");
    expect((await fetch(`${closed.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEYS["routes:read"]}` } })).status).toBe(401);
    const ok = await fetch(`${closed.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEYS["metrics:read"]}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("rpc_server_started_total");
  });

  it("writes an audit line (who, what, which resource, result) for a call that changes something, none for a read", async () => {
    const svc = await start();
    await routes(svc.url, TEST_KEYS["routes:admin"]).createRoute({ route: { id: "line-4" } });
    await routes(svc.url).getRoute({ id: "line-4" });
    await codeOf(routes(svc.url, TEST_KEYS["routes:read"]).createRoute({ route: { id: "line-5" } }));
    const audit = svc.lines.filter((l) => l.msg === "audit").map((l) => l.audit);
    expect(audit).toEqual([{ caller: "test-routes-admin", via: "api-key", method: "CreateRoute", resource: "line-4", result: "ok" }]);
    // A refused call is not audited (nothing was attempted), but its rpc line names the code.
    const rpc = svc.lines.filter((l) => l.msg === "rpc");
    expect(rpc.find((l) => l.code === "ok" && String(l.procedure).endsWith("CreateRoute"))).toMatchObject({ caller: "test-routes-admin" });
    expect(rpc.find((l) => l.code === "permission_denied")).toBeDefined();
  });

  it("limits the call rate per caller (resource_exhausted) without touching other callers", async () => {
    const svc = await start({ CALLER_RATE_LIMIT: "5", CALLER_RATE_BURST: "5" });
    const noisy = routes(svc.url, TEST_KEYS["routes:read"]);
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => codeOf(noisy.getRoute({ id: "r" })).catch(() => undefined)));
    const codes = outcomes.map((o) => o?.code);
    expect(codes.filter((c) => c === Code.ResourceExhausted).length).toBeGreaterThanOrEqual(14);
    const exhausted = outcomes.find((o) => o?.code === Code.ResourceExhausted)!;
    expect(exhausted.message).toContain("5 calls per second");
    expect(await routes(svc.url, TEST_KEYS["routes:admin"]).getRoute({ id: "r" })).toMatchObject({ route: { id: "r" } });
    expect(svc.lines.some((l) => l.limit === "callerRate")).toBe(true);
  });

  it("limits the streams one caller holds open; closing one frees its slot", async () => {
    const svc = await start({ CALLER_MAX_STREAMS: "2" });
    const telemetry = createClient(
      TelemetryService,
      createGrpcTransport({ baseUrl: svc.url, interceptors: [testCredential(TEST_KEYS["telemetry:read"])] }),
    );
    const held = [new AbortController(), new AbortController()];
    for (const ac of held) await telemetry.subscribe({}, { signal: ac.signal })[Symbol.asyncIterator]().next();
    const third = await codeOf(telemetry.subscribe({})[Symbol.asyncIterator]().next());
    expect(third.code).toBe(Code.ResourceExhausted);
    expect(third.message).toContain("2 streams");
    // Another caller is not affected.
    const other = createClient(TelemetryService, createGrpcTransport({ baseUrl: svc.url, interceptors: [testCredential()] }));
    const otherAc = new AbortController();
    expect((await other.subscribe({}, { signal: otherAc.signal })[Symbol.asyncIterator]().next()).done).toBe(false);
    otherAc.abort();
    held[0]!.abort();
    // The slot comes back once the server sees the stream end; until then a new stream is refused.
    const again = new AbortController();
    await until(
      async () => {
        const ac = new AbortController();
        const opened = await works(telemetry.subscribe({}, { signal: ac.signal })[Symbol.asyncIterator]().next());
        if (opened) again.signal.addEventListener("abort", () => ac.abort());
        else ac.abort();
        return opened;
      },
      { what: "a slot given back", timeoutMs: 5_000 },
    );
    again.abort();
    held[1]!.abort();
  });

  it("refuses to start without any credentials configured, naming the settings", async () => {
    const { logger } = captureLogger();
    const { z } = await import("zod");
    const { authSettings, serverAuth } = await import("../src/auth/index.js");
    expect(() => serverAuth(z.object(authSettings).parse({}), logger)).toThrow(/AUTH_IDENTITIES_FILE.*AUTH_JWKS_URL/s);
    expect(() => serverAuth(z.object(authSettings).parse({ AUTH_JWKS_URL: "https://login.example/keys" }), logger)).toThrow(
      /AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE/,
    );
    expect(() => z.object(authSettings).parse({ AUTH_IDENTITIES_FILE: "/x", AUTH_MODE: "off" })).toThrow();
    const jwt = { AUTH_JWT_ISSUER: "https://login.example/", AUTH_JWT_AUDIENCE: "api://meridian" };
    expect(() => serverAuth(z.object(authSettings).parse({ ...jwt, AUTH_JWKS_URL: "http://login.example/keys" }), logger)).toThrow(
      /AUTH_JWKS_URL: must be https/,
    );
    expect(() => serverAuth(z.object(authSettings).parse({ ...jwt, AUTH_JWKS_URL: "http://127.0.0.1:8080/keys" }), logger)).not.toThrow();
  });

  it("refuses to serve a method whose contract declares no access rule", () => {
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "open.proto",
        package: "open.v1",
        dependency: ["google/protobuf/empty.proto"],
        service: [
          {
            name: "OpenService",
            method: [{ name: "DoAnything", inputType: ".google.protobuf.Empty", outputType: ".google.protobuf.Empty" }],
          },
        ],
        syntax: "proto3",
      }),
      () => file_google_protobuf_empty,
    );
    const open = registry.getService("open.v1.OpenService")!;
    expect(() => assertAccessRules([open])).toThrow(/open\.v1\.OpenService\.DoAnything declares no/);
    expect(() => assertAccessRules([RouteService, TelemetryService])).not.toThrow();
  });

  it("stores only a hash: the identities file never holds the key", () => {
    const k = newApiKey();
    expect(k.key).toMatch(/^mrd_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(k.sha256).toBe(hashApiKey(k.key));
    expect(k.sha256).not.toContain(k.key.slice(17));
  });
});

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

describe("client certificates", () => {
  it("a verified certificate listed in the identities file is a caller with its roles; an unlisted one is unauthenticated", async () => {
    const ca = createTestCa("Auth Test CA");
    const server = ca.issue({ commonName: "localhost", usage: "server" });
    const historian = ca.issue({ commonName: "historian.plant.example", usage: "client" });
    const stranger = ca.issue({ commonName: "stranger.plant.example", usage: "client" });
    const file = join(await mkdtemp(join(tmpdir(), "auth-")), "identities.json");
    writeFileSync(
      file,
      JSON.stringify({
        ...testIdentities(),
        clientCertificates: [{ name: "historian", commonName: "historian.plant.example", roles: ["routes:read"] }],
      }),
    );
    const { logger } = captureLogger();
    const svc = await startTestService({
      auth: testAuth(logger, { AUTH_IDENTITIES_FILE: file }),
      tls: { certFile: server.certFile, keyFile: server.keyFile, clientAuth: "require", clientCaFile: ca.caFile },
      routes(router) {
        router.service(RouteService, {
          async getRoute(req, ctx) {
            return { route: { id: req.id, displayName: callerOf(ctx).name } };
          },
        });
      },
    });
    started.push(svc);
    const as = (cert: typeof historian, credential: string | null = null) =>
      createClient(
        RouteService,
        createGrpcTransport({
          baseUrl: svc.url,
          interceptors: credential ? [testCredential(credential)] : [],
          nodeOptions: { ca: ca.caPem, cert: cert.certPem, key: cert.keyPem },
        }),
      );
    expect((await as(historian).getRoute({ id: "r1" })).route?.displayName).toBe("historian");
    expect((await codeOf(as(historian).createRoute({ route: { id: "r2" } }))).code).toBe(Code.PermissionDenied);
    const unknown = await codeOf(as(stranger).getRoute({ id: "r1" }));
    expect(unknown.code).toBe(Code.Unauthenticated);
    expect(unknown.message).toContain("stranger.plant.example");
    // A bearer credential wins over the certificate: the key's identity, not the connection's.
    expect((await as(stranger, TEST_KEYS["routes:read"]).getRoute({ id: "r1" })).route?.displayName).toBe("test-routes-read");
    ca.remove();
  });
});

describe("JWT bearer tokens", () => {
  const issuer = "https://login.plant.example/";
  const audience = "api://meridian";
  let jwksFile: string;
  let signer: SigningKey;
  let stranger: SigningKey;
  let kid: string;

  beforeAll(async () => {
    const pair = await generateKeyPair("ES256");
    signer = pair.privateKey;
    stranger = (await generateKeyPair("ES256")).privateKey;
    kid = "k1";
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256", use: "sig" };
    jwksFile = join(await mkdtemp(join(tmpdir(), "jwks-")), "jwks.json");
    writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  });

  const jwtEnv = () => ({ AUTH_JWKS_FILE: jwksFile, AUTH_JWT_ISSUER: issuer, AUTH_JWT_AUDIENCE: audience });
  const token = (
    claims: Record<string, unknown> = {},
    opts: { key?: SigningKey; aud?: string; iss?: string; exp?: string | number } = {},
  ) =>
    new SignJWT({ roles: ["routes:read"], ...claims })
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer(opts.iss ?? issuer)
      .setAudience(opts.aud ?? audience)
      .setSubject("operator@plant.example")
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? "5m")
      .sign(opts.key ?? signer);

  it("accepts a token from the issuer for Meridian with the role; the caller is its subject", async () => {
    const svc = await start(jwtEnv());
    expect(await routes(svc.url, await token()).getRoute({ id: "r1" })).toMatchObject({ route: { id: "r1" } });
    expect(svc.lines.find((l) => l.msg === "rpc" && l.code === "ok")).toMatchObject({ caller: "operator@plant.example" });
    // The role comes from the token: routes:read does not create.
    expect((await codeOf(routes(svc.url, await token()).createRoute({ route: { id: "x" } }))).code).toBe(Code.PermissionDenied);
    // A scope-style claim (space-separated) works too.
    const scoped = await start({ ...jwtEnv(), AUTH_JWT_ROLES_CLAIM: "scp" });
    expect(await routes(scoped.url, await token({ scp: "routes:admin routes:read" })).createRoute({ route: { id: "x" } })).toBeDefined();
  });

  it.each([
    ["a wrong signature", () => token({}, { key: stranger }), /signature verification failed/],
    ["a wrong audience", () => token({}, { aud: "api://someone-else" }), /"aud" claim/],
    ["a wrong issuer", () => token({}, { iss: "https://evil.example/" }), /"iss" claim/],
    ["an expired token", () => token({}, { exp: Math.floor(Date.now() / 1000) - 3600 }), /"exp" claim timestamp check failed/],
    [
      "alg: none",
      async () => unsignedToken({ sub: "x", iss: issuer, aud: audience, exp: Math.floor(Date.now() / 1000) + 300, roles: ["*"] }),
      /alg/i,
    ],
    [
      "an HMAC token (HS256)",
      async () => hmacToken({ sub: "x", iss: issuer, aud: audience, exp: Math.floor(Date.now() / 1000) + 300, roles: ["*"] }),
      /alg/i,
    ],
  ])("refuses %s", async (_what, make, reason) => {
    const svc = await start(jwtEnv());
    const refused = await codeOf(routes(svc.url, await make()).getRoute({ id: "r1" }));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.message).toMatch(reason);
  });

  it("refuses a JWT where no JWKS is configured, saying so", async () => {
    const svc = await start();
    const refused = await codeOf(routes(svc.url, await token()).getRoute({ id: "r1" }));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.message).toContain("no JWKS configured");
  });
});

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function unsignedToken(payload: Record<string, unknown>): string {
  return `${b64url({ alg: "none", typ: "JWT" })}.${b64url(payload)}.`;
}

async function hmacToken(payload: Record<string, unknown>): Promise<string> {
  const { createHmac } = await import("node:crypto");
  const head = `${b64url({ alg: "HS256", typ: "JWT", kid: "k1" })}.${b64url(payload)}`;
  return `${head}.${createHmac("sha256", "guessable").update(head).digest("base64url")}`;
}

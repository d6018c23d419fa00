import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { ADH_BASE, adhPost, adhToken, getJson, post, SEED_TYPES } from "./harness.js";

let emu: RunningOmfEmulator;
beforeAll(async () => {
  emu = await startOmfEmulator({
    piUsers: [
      { username: "writer", password: "w-pass" },
      { username: "reader", password: "r-pass", readOnly: true },
    ],
    adhClients: [{ clientId: "cid", clientSecret: "csecret" }],
  });
});
afterAll(async () => {
  await emu.stop();
});

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const piType = (headers: Record<string, string | null>) => post(emu.url, "/piwebapi/omf", "type", [SEED_TYPES[0]], { headers });

describe("PI Web API: Basic auth and CSRF", () => {
  it("no Authorization → 401 with WWW-Authenticate: Basic", async () => {
    const r = await piType({ "x-requested-with": "XMLHttpRequest" });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toMatch(/^Basic/);
  });

  it("wrong password → 401; reads need auth too", async () => {
    expect((await piType({ authorization: basic("writer", "nope"), "x-requested-with": "x" })).status).toBe(401);
    expect((await getJson(`${emu.url}/piwebapi/dataservers`)).status).toBe(401);
  });

  it("valid user without write permission → 403 with event -1004", async () => {
    const r = await piType({ authorization: basic("reader", "r-pass"), "x-requested-with": "x" });
    expect(r.status).toBe(403);
    expect(r.body.Messages[0].Events[0].EventInfo.EventCode).toBe(-1004);
    // but may read
    expect((await getJson(`${emu.url}/piwebapi/dataservers`, { authorization: basic("reader", "r-pass") })).status).toBe(200);
  });

  it("POST without X-Requested-With → 403 (unverified: notes only say 4xx; status configurable)", async () => {
    const r = await piType({ authorization: basic("writer", "w-pass") });
    expect(r.status).toBe(403);
    expect(r.body.Errors[0]).toMatch(/X-Requested-With/);
    expect((await piType({ authorization: basic("writer", "w-pass"), "x-requested-with": "XMLHttpRequest" })).status).toBe(201);
  });
});

describe("ADH / OCS: discovery, client-credentials token, Bearer", () => {
  it("discovery document points at the token endpoint under the same base URL", async () => {
    const d = await getJson(`${emu.url}/identity/.well-known/openid-configuration`);
    expect(d.body.token_endpoint).toBe(`${emu.url}/identity/connect/token`);
    // a /adh prefix keeps the resource-prefix rule of the sample when resource = <url>/adh
    const p = await getJson(`${emu.url}/adh/identity/.well-known/openid-configuration`);
    expect(p.body.token_endpoint).toBe(`${emu.url}/adh/identity/connect/token`);
  });

  it("bad client secret or unknown client → 400 invalid_client; wrong grant → 400 unsupported_grant_type", async () => {
    const bad = await adhToken(emu.url, "cid", "wrong");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("invalid_client");
    expect((await adhToken(emu.url, "other", "csecret")).body.error).toBe("invalid_client");
    const res = await fetch(`${emu.url}/identity/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=password&client_id=cid&client_secret=csecret",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("unsupported_grant_type");
  });

  it("token → {access_token, expires_in, token_type: Bearer}; client auth by HTTP Basic works too", async () => {
    const t = await adhToken(emu.url, "cid", "csecret");
    expect(t.status).toBe(200);
    expect(t.body).toMatchObject({ expires_in: 3600, token_type: "Bearer" });
    expect(t.body.access_token.split(".")).toHaveLength(3);
    const res = await fetch(`${emu.url}/identity/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("cid", "csecret") },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(200);
  });

  it("missing or unknown bearer token → 401 with WWW-Authenticate: Bearer", async () => {
    const none = await post(emu.url, `${ADH_BASE}/omf`, "type", [SEED_TYPES[0]]);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(none.body.OperationId).toEqual(expect.any(String));
    expect((await adhPost(emu.url, "forged.token.value", "type", [SEED_TYPES[0]])).status).toBe(401);
  });

  it("expired token (forced via admin API) → 401 invalid_token; a fresh token works again", async () => {
    const { access_token } = (await adhToken(emu.url, "cid", "csecret")).body;
    expect((await adhPost(emu.url, access_token, "type", [SEED_TYPES[0]])).status).toBe(202);
    await fetch(`${emu.url}/_emulator/tokens/expire`, { method: "POST" });
    const r = await adhPost(emu.url, access_token, "type", [SEED_TYPES[0]]);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toMatch(/invalid_token/);
    const fresh = (await adhToken(emu.url, "cid", "csecret")).body.access_token;
    expect((await adhPost(emu.url, fresh, "type", [SEED_TYPES[0]])).status).toBe(202);
  });

  it("expired token (by lifetime) → 401", async () => {
    const short = await startOmfEmulator({ tokenLifetimeSeconds: 1 });
    try {
      const t = (await adhToken(short.url)).body;
      expect(t.expires_in).toBe(1);
      expect((await adhPost(short.url, t.access_token, "type", [SEED_TYPES[0]])).status).toBe(202);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await adhPost(short.url, t.access_token, "type", [SEED_TYPES[0]])).status).toBe(401);
    } finally {
      await short.stop();
    }
  });

  it("read-back endpoints need the token too", async () => {
    expect((await getJson(`${emu.url}${ADH_BASE}/Types`)).status).toBe(401);
  });

  it("a configured tenant id rejects other tenants with 403", async () => {
    const t = await startOmfEmulator({ adhTenantId: "t-0001" });
    try {
      const tok = (await adhToken(t.url)).body.access_token;
      expect((await adhPost(t.url, tok, "type", [SEED_TYPES[0]])).status).toBe(202);
      const other = await post(t.url, "/api/v1/Tenants/t-9999/Namespaces/Samples/omf", "type", [SEED_TYPES[0]], {
        headers: { authorization: `Bearer ${tok}` },
      });
      expect(other.status).toBe(403);
    } finally {
      await t.stop();
    }
  });
});

import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOmniaEmulator } from "../src/index.js";
import { Api, admin, type Env, RESOURCE, startEnv } from "./harness.js";

let env: Env;
let id: string;
beforeAll(async () => {
  env = await startEnv();
  id = env.emu.seededIds()[0]!;
});
afterAll(() => env.stop());

const get = (token: string | null) => env.api.get(`/${id}/data`, { token, query: { limit: 1 } });

describe("bearer tokens verified against the provider's OpenID metadata and JWKS", () => {
  it("accepts a token for the resource GUID and for api://GUID", async () => {
    expect((await get(env.token)).status).toBe(200);
    expect((await get(await env.idp.token({ aud: `api://${RESOURCE}` }))).status).toBe(200);
  });

  it("refuses with 401 MessageModel and WWW-Authenticate: no token, not a JWT, another audience, issuer, key, expired", async () => {
    const cases: [string, string | null][] = [
      ["none", null],
      ["garbage", "not-a-jwt"],
      ["audience", await env.idp.token({ aud: "00000000-0000-0000-0000-000000000000" })],
      ["issuer", await env.idp.token({ iss: "https://login.microsoftonline.com/other/v2.0" })],
      ["key", await env.idp.token({}, { key: "unknown" })],
      ["expired", await env.idp.token({}, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })],
      [
        "unsigned",
        `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ aud: RESOURCE })).toString("base64url")}.`,
      ],
    ];
    for (const [what, token] of cases) {
      const r = await get(token);
      expect(r.status, what).toBe(401);
      expect(r.json, what).toEqual({
        statusCode: 401,
        message: "Unauthorized. Access token is missing or invalid.",
        traceId: expect.any(String),
      });
      expect(r.headers["www-authenticate"], what).toMatch(/^Bearer/);
    }
    expect((await admin(env.emu, "GET", "counters")).json.authRefusals).toBeGreaterThanOrEqual(cases.length);
  });

  it("403 MessageModel for a denied facility or series (the notes' per-source/facility access hook); search leaves them out", async () => {
    await admin(env.emu, "POST", "access/deny", { facility: "JSV" });
    try {
      const r = await get(env.token);
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({ statusCode: 403, message: "Forbidden. No access to facility 'JSV'." });
      const multi = await env.api.post("/query/data", [{ id: env.emu.seededIds()[2] }, { id }]);
      expect(multi.status).toBe(403);
      const list = await env.api.get("/");
      expect(list.json.data.items.some((i: { facility: string }) => i.facility === "JSV")).toBe(false);
    } finally {
      await admin(env.emu, "DELETE", "access");
    }
    expect((await get(env.token)).status).toBe(200);
  });
});

describe("settings", () => {
  it("requiredRole: a token without the role is 403", async () => {
    const emu = await startOmniaEmulator({ auth: { authority: env.idp.authority, requiredRole: "Timeseries.Read" }, seedPoints: 10 });
    try {
      const api = new Api(emu, await env.idp.token());
      expect((await api.get("/")).status).toBe(200);
      const r = await api.get("/", { token: await env.idp.token({ roles: ["Other"] }) });
      expect(r.status).toBe(403);
      expect(r.json.statusCode).toBe(403);
    } finally {
      await emu.stop();
    }
  });

  it("mode none (test mode) accepts any bearer token but still wants one", async () => {
    const emu = await startOmniaEmulator({ auth: { mode: "none" }, seedPoints: 10 });
    try {
      const api = new Api(emu, "anything");
      expect((await api.get("/")).status).toBe(200);
      expect((await api.get("/", { token: null })).status).toBe(401);
    } finally {
      await emu.stop();
    }
  });

  it("verify is the default: without an authority or JWKS the emulator does not start", async () => {
    await expect(startOmniaEmulator({ seedPoints: 1 })).rejects.toThrow(/authority or a jwksUri/);
  });

  it("an unreachable provider refuses every token (401) and names the failure in the state", async () => {
    const emu = await startOmniaEmulator({ auth: { jwksUri: "http://127.0.0.1:9/keys" }, seedPoints: 1 });
    try {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setAudience(RESOURCE)
        .setExpirationTime("1h")
        .sign(new Uint8Array(32));
      expect((await new Api(emu, token).get("/")).status).toBe(401);
      expect(emu.state().auth.lastKeyError).toMatch(/ECONNREFUSED|keys/);
    } finally {
      await emu.stop();
    }
  });
});

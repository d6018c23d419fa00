import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServerHandle, startNatsServer, TEST_KEYS, testIdentitiesFile, testLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

/**
 * The console's files at / on the gateway's port, from a stand-in build (an index.html and a hashed asset, as Vite
 * writes them): no key needed for them, the API beside them unchanged.
 */
describe("the console at /", () => {
  let nats: NatsServerHandle;
  let gw: Gateway;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), "gw-console-"));
  const INDEX = '<!doctype html><title>console</title><script type="module" src="/assets/index-Ab12.js"></script>';

  beforeAll(async () => {
    mkdirSync(join(dir, "assets"));
    writeFileSync(join(dir, "index.html"), INDEX);
    writeFileSync(join(dir, "assets", "index-Ab12.js"), "console.log(1)");
    writeFileSync(join(dir, "assets", "index-Cd34.css"), "body{}");
    writeFileSync(join(dir, "assets", "notes.md"), "not a type the console serves");
    nats = await startNatsServer();
    gw = await startGateway(
      gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, CONSOLE_DIR: dir }),
      testLogger(),
      { installSignalHandlers: false },
    );
    url = gw.service.url;
  });
  afterAll(async () => {
    await gw?.stop();
    await nats?.stop();
  });

  it("serves the page without a key, revalidated, with a content security policy", async () => {
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.text()).toBe(INDEX);
  });

  it("answers the app's own pages with index.html, so a reload or a link to /routes works", async () => {
    for (const path of ["/routes", "/dead-letters", "/telemetry?connection=x"]) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.text()).toBe(INDEX);
    }
  });

  it("serves hashed assets for a year with their types; a missing or unlisted file is a 404, not the page", async () => {
    const js = await fetch(`${url}/assets/index-Ab12.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await js.text()).toBe("console.log(1)");
    expect((await fetch(`${url}/assets/index-Cd34.css`)).headers.get("content-type")).toBe("text/css; charset=utf-8");
    for (const path of ["/assets/index-Gone.js", "/assets/notes.md", "/assets/../index.html.bak", "/meridian.nope.v1.NoService/Nothing"]) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.text()).not.toContain("<title>");
    }
    const head = await fetch(`${url}/assets/index-Ab12.js`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("14");
  });

  it("leaves the API, the API document and the kit's routes as they were", async () => {
    expect((await fetch(`${url}/openapi.json`)).headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ status: "ok" });
    const call = (key?: string) =>
      fetch(`${url}/meridian.status.v1.StatusService/GetCaller`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: "{}",
      });
    expect((await call()).status).toBe(401);
    expect(await (await call(TEST_KEYS.admin)).json()).toMatchObject({ name: "test-admin", roles: ["*"] });
  });

  it("tells the page that API keys are the way in, and keeps connect-src to its own origin, when no provider is set", async () => {
    const res = await fetch(`${url}/console/config.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await res.json()).toEqual({ apiKeySignIn: true });
    expect((await fetch(`${url}/`)).headers.get("content-security-policy")).toContain("connect-src 'self';");
  });

  it("says the console is not built when its folder has no index.html", async () => {
    const empty = mkdtempSync(join(tmpdir(), "gw-console-empty-"));
    const other = await startGateway(
      gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, CONSOLE_DIR: empty }),
      testLogger(),
      { installSignalHandlers: false },
    );
    try {
      const res = await fetch(`${other.service.url}/`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain(`the console is not built: no index.html in ${empty}`);
    } finally {
      await other.stop();
    }
  });
});

describe("the console's sign-in by redirect (CONSOLE_OIDC_*)", () => {
  let nats: NatsServerHandle;
  const dir = mkdtempSync(join(tmpdir(), "gw-console-oidc-"));
  const AUTHORITY = "https://login.example.test:8443/3aa4a235-b6e2-48d5-9195-7fcf05b459b0/v2.0";
  const base = () => ({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, CONSOLE_DIR: dir });

  beforeAll(async () => {
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>console</title>");
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("publishes the authority, client id, scopes and provider name before sign-in, and lets the page reach the authority's origin only", async () => {
    const gw = await startGateway(
      gatewayConfig.parse({
        ...base(),
        CONSOLE_OIDC_AUTHORITY: AUTHORITY,
        CONSOLE_OIDC_CLIENT_ID: "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
        CONSOLE_OIDC_SCOPES: "openid api://meridian/access_as_user",
        CONSOLE_OIDC_PROVIDER_NAME: "Microsoft Entra ID",
        CONSOLE_API_KEY_SIGN_IN: "false",
      }),
      testLogger(),
      { installSignalHandlers: false },
    );
    try {
      const res = await fetch(`${gw.service.url}/console/config.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(await res.json()).toEqual({
        apiKeySignIn: false,
        oidc: {
          authority: AUTHORITY,
          clientId: "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
          scopes: "openid api://meridian/access_as_user",
          providerName: "Microsoft Entra ID",
        },
      });
      for (const path of ["/", "/routes"]) {
        const csp = (await fetch(`${gw.service.url}${path}`)).headers.get("content-security-policy")!;
        expect(csp, path).toContain("connect-src 'self' https://login.example.test:8443;");
        expect(csp, path).toContain("default-src 'self';");
      }
    } finally {
      await gw.stop();
    }
  });

  it("refuses an authority without a client id (and the reverse), an http:// authority, bad scopes, and no way in at all", async () => {
    const start = (env: Record<string, string>) =>
      startGateway(gatewayConfig.parse({ ...base(), ...env }), testLogger(), { installSignalHandlers: false });
    await expect(start({ CONSOLE_OIDC_AUTHORITY: AUTHORITY })).rejects.toThrow(
      "CONSOLE_OIDC_CLIENT_ID: required with CONSOLE_OIDC_AUTHORITY",
    );
    await expect(start({ CONSOLE_OIDC_CLIENT_ID: "console" })).rejects.toThrow(
      "CONSOLE_OIDC_AUTHORITY: required with CONSOLE_OIDC_CLIENT_ID",
    );
    await expect(start({ CONSOLE_API_KEY_SIGN_IN: "false" })).rejects.toThrow(
      "CONSOLE_API_KEY_SIGN_IN: false leaves the console no way to sign in",
    );
    expect(gatewayConfig.safeParse({ ...base(), CONSOLE_OIDC_AUTHORITY: "http://login.example.test/t/v2.0" }).success).toBe(false);
    expect(gatewayConfig.safeParse({ ...base(), CONSOLE_OIDC_SCOPES: 'openid  "x"' }).success).toBe(false);
    expect(gatewayConfig.safeParse({ ...base(), CONSOLE_OIDC_CLIENT_ID: "a b" }).success).toBe(false);
    expect(gatewayConfig.safeParse({ ...base(), CONSOLE_OIDC_PROVIDER_NAME: "x".repeat(65) }).success).toBe(false);
  });
});

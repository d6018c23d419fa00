import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { getJson, omfHeaders, PI_AUTH, SEED_TYPES } from "./harness.js";

let emu: RunningOmfEmulator;
const caFile = join(mkdtempSync(join(tmpdir(), "omf-emu-")), "ca.pem");
beforeAll(async () => {
  emu = await startOmfEmulator({ tls: true, caFile, adminPort: 0 });
});
afterAll(async () => {
  await emu.stop();
});

describe("TLS with a generated CA", () => {
  it("serves https; a client trusting the CA connects and posts OMF", async () => {
    expect(emu.url.startsWith("https://")).toBe(true);
    expect(emu.caPem).toMatch(/BEGIN CERTIFICATE/);
    const dispatcher = new Agent({ connect: { ca: emu.caPem } });
    try {
      const res = await undiciFetch(`${emu.url}/piwebapi/omf`, {
        method: "POST",
        dispatcher,
        headers: { ...omfHeaders("type"), authorization: PI_AUTH, "x-requested-with": "XMLHttpRequest" },
        body: JSON.stringify([SEED_TYPES[0]]),
      });
      expect(res.status).toBe(201);
      // the discovery document advertises https
      const d = await undiciFetch(`${emu.url}/identity/.well-known/openid-configuration`, { dispatcher });
      expect(((await d.json()) as { token_endpoint: string }).token_endpoint).toMatch(/^https:\/\//);
    } finally {
      await dispatcher.close();
    }
  });

  it("a client that does not trust the CA fails the handshake", async () => {
    const dispatcher = new Agent();
    try {
      const err = await undiciFetch(`${emu.url}/_emulator/health`, { dispatcher }).then(
        () => undefined,
        (e: Error & { cause?: { code?: string } }) => e,
      );
      expect(err?.cause?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    } finally {
      await dispatcher.close();
    }
  });

  it("the CA PEM is served at /_emulator/ca.pem and written to caFile", async () => {
    const dispatcher = new Agent({ connect: { ca: emu.caPem } });
    try {
      const res = await undiciFetch(`${emu.url}/_emulator/ca.pem`, { dispatcher });
      expect(await res.text()).toBe(emu.caPem);
      expect(readFileSync(caFile, "utf8")).toBe(emu.caPem);
    } finally {
      await dispatcher.close();
    }
  });

  it("the optional plain-HTTP admin port serves /_emulator/* only", async () => {
    expect(emu.adminUrl).toMatch(/^http:\/\//);
    const health = await fetch(`${emu.adminUrl}/_emulator/health`);
    expect(health.status).toBe(200);
    const state = (await getJson(`${emu.adminUrl}/_emulator/state`)).body;
    expect(Object.keys(state.scopes.pi.types)).toContain("FirstDynamicType");
    expect((await fetch(`${emu.adminUrl}/piwebapi/omf`, { method: "POST" })).status).toBe(404);
  });
});

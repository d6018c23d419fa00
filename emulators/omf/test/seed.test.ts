import { gzipSync } from "node:zlib";
import { seedBody } from "@meridian/fixtures/omf-seed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import {
  ADH_BASE,
  adhPost,
  adhToken,
  EDS_BASE,
  edsPost,
  getJson,
  PI_AUTH,
  piPost,
  SEED_CONTAINERS,
  SEED_POINTS,
  SEED_TYPES,
  seedData,
} from "./harness.js";

/**
 * Replays osisoft/sample-omf-basic_api-python against each profile: program.py (types and containers one per
 * request, two data iterations, gzip on), then test.py's read-back checks and cleanup (notes §3.2–3.4). Every body
 * is the seed's: `json.dumps([obj])` of its fixture files, gzip-compressed as program.py does by default.
 */
let emu: RunningOmfEmulator;
beforeAll(async () => {
  emu = await startOmfEmulator();
});
afterAll(async () => {
  await emu.stop();
});

type Sender = (
  messageType: string,
  body: unknown,
  o?: { action?: string; gzip?: boolean; raw?: Buffer },
) => Promise<{ status: number; body: unknown }>;

/** program.py's send_message_to_omf_endpoint body: json.dumps([obj]), gzip-compressed. */
const seedGzip = (obj: unknown) => ({ gzip: true, raw: gzipSync(seedBody([obj])) });

/** program.py: returns the payload of the last iteration per container id (what test.py compares against). */
async function runProgram(send: Sender) {
  for (const t of SEED_TYPES) expect((await send("type", [t], seedGzip(t))).status).toBeLessThan(300);
  for (const c of SEED_CONTAINERS) expect((await send("container", [c], seedGzip(c))).status).toBeLessThan(300);
  const sent = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < 2; i++) {
    for (const datum of seedData(i, new Date(Date.now() + i * 1000))) {
      const r = await send("data", [datum], seedGzip(datum));
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      sent.set(datum.containerid, datum.values[0]!);
    }
  }
  return sent;
}

/** test.py cleanup: delete containers, then types, full objects; 409 counts as success. */
async function cleanup(send: Sender) {
  for (const c of SEED_CONTAINERS) {
    const r = await send("container", [c], { action: "delete", ...seedGzip(c) });
    expect(r.status < 300 || r.status === 409).toBe(true);
  }
  for (const t of SEED_TYPES) {
    const r = await send("type", [t], { action: "delete", ...seedGzip(t) });
    expect(r.status < 300 || r.status === 409).toBe(true);
  }
}

async function sdsCheck(base: string, headers: Record<string, string>, sent: Map<string, Record<string, unknown>>) {
  const readHeaders = { ...headers, "Accept-Verbosity": "verbose", messageformat: "JSON", action: "create" };
  for (const t of SEED_TYPES) expect((await getJson(`${base}/Types/${t.id}`, readHeaders)).status).toBe(200);
  for (const c of SEED_CONTAINERS) {
    expect((await getJson(`${base}/Streams/${c.id}`, readHeaders)).status).toBe(200);
    const last = await getJson(`${base}/Streams/${c.id}/Data/last`, readHeaders);
    expect(last.status).toBe(200);
    expect(Object.keys(last.body).length).toBeGreaterThan(0);
    // test.py: keys and values equal what was sent, Timestamp string compared literally
    expect(last.body).toEqual(sent.get(c.id));
  }
}

describe("seed sample (sample-omf-basic_api-python) round trip", () => {
  it("PI Web API: points named per notes, values read back through dataservers → points → value; cleanup removes them", async () => {
    const send: Sender = (mt, body, o) => piPost(emu.url, mt, body, o);
    const sent = await runProgram(send);
    const h = { authorization: PI_AUTH, "x-requested-with": "XMLHttpRequest", "Accept-Verbosity": "verbose" };
    const ds = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, h);
    expect(ds.status).toBe(200);
    const pointsUrl: string = ds.body.Links.Points;
    const seenNames: string[] = [];
    for (const c of SEED_CONTAINERS) {
      const pts = await getJson(`${pointsUrl}?nameFilter=${c.id}*`, h);
      expect(pts.status).toBe(200);
      expect(pts.body.Items.length).toBeGreaterThan(0);
      const last = sent.get(c.id)!;
      for (const item of pts.body.Items) {
        seenNames.push(item.Name);
        const v = await getJson(item.Links.Value, h);
        expect(v.status).toBe(200);
        expect(v.body.Value?.Name).not.toBe("Pt Created");
        const parts = (item.Name as string).split(".");
        if (parts.length > 1) expect(v.body.Value).toEqual(last[parts[1]!]);
        else for (const [k, x] of Object.entries(last)) if (k !== "Timestamp") expect(v.body.Value).toEqual(x);
      }
    }
    expect(seenNames.sort()).toEqual([...SEED_POINTS].sort());

    await cleanup(send);
    const after = await getJson(`${pointsUrl}?nameFilter=*`, h);
    expect(after.body.Items).toEqual([]);
    const state = await getJson(`${emu.url}/_emulator/state`);
    expect(state.body.scopes.pi.types).toEqual({});
    expect(state.body.scopes.pi.containers).toEqual({});
  });

  it("PI Web API: a point with no data reads back as the 'Pt Created' digital state", async () => {
    const send: Sender = (mt, body, o) => piPost(emu.url, mt, body, o);
    await send("type", [SEED_TYPES[0]]);
    await send("container", [SEED_CONTAINERS[0]]);
    const h = { authorization: PI_AUTH };
    const pts = await getJson(`${emu.url}/piwebapi/dataservers?name=meridian-pi`, h).then((r) =>
      getJson(`${r.body.Links.Points}?nameFilter=First*`, h),
    );
    const v = await getJson(pts.body.Items[0].Links.Value, h);
    expect(v.body.Value).toMatchObject({ Name: "Pt Created", IsSystem: true });
    await cleanup(send);
  });

  it("EDS: Types, Streams and Data/last read back exactly as sent; cleanup deletes streams and types", async () => {
    const send: Sender = (mt, body, o) => edsPost(emu.url, mt, body, o);
    const sent = await runProgram(send);
    await sdsCheck(`${emu.url}${EDS_BASE}`, {}, sent);
    await cleanup(send);
    expect((await getJson(`${emu.url}${EDS_BASE}/Streams/FirstContainer`)).status).toBe(404);
    expect((await getJson(`${emu.url}${EDS_BASE}/Types/FirstDynamicType`)).status).toBe(404);
  });

  it("ADH: discovery → token → OMF with Bearer; Types, Streams and Data/last read back; cleanup works", async () => {
    const disco = await getJson(`${emu.url}/identity/.well-known/openid-configuration`, { accept: "application/json" });
    expect(disco.status).toBe(200);
    expect(disco.body.token_endpoint.startsWith(emu.url)).toBe(true);
    const tok = await adhToken(emu.url);
    expect(tok.status).toBe(200);
    expect(tok.body.token_type).toBe("Bearer");
    const token = tok.body.access_token;
    const send: Sender = (mt, body, o) => adhPost(emu.url, token, mt, body, o);
    const sent = await runProgram(send);
    await sdsCheck(`${emu.url}${ADH_BASE}`, { authorization: `Bearer ${token}` }, sent);
    await cleanup(send);
    expect((await getJson(`${emu.url}${ADH_BASE}/Streams/FirstContainer`, { authorization: `Bearer ${token}` })).status).toBe(404);
  });
});

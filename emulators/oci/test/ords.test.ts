/**
 * The data side through plain fetch, as manage-dt and the twin manager's source pipeline use it: the identity
 * domain's token endpoint, then ORDS with manage-dt's exact query over rawData, historizedData and rejectedData,
 * paging with limit/offset, and rawData/{id} with the payload.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OciEmulator } from "../src/index.js";
import { createStructuredTwin, dataToken, m5CustomModel, m5Payload, ords, postDevice, sdkClient, startEmulator } from "./harness.js";

let emu: OciEmulator;
let token: string;
let twin: Awaited<ReturnType<typeof createStructuredTwin>>;

beforeAll(async () => {
  emu = await startEmulator();
  const client = sdkClient(emu);
  twin = await createStructuredTwin(emu, client, { key: "ords", model: m5CustomModel, custom: true });
  client.close();
  // 3 messages normalised (4 historized rows each), 2 rejected (a string for a double content).
  for (let n = 1; n <= 3; n++) expect((await postDevice(emu, twin.externalKey, twin.secret, { ...m5Payload, count: n })).status).toBe(202);
  for (let n = 1; n <= 2; n++) expect((await postDevice(emu, twin.externalKey, twin.secret, { sht_temperature: "warm" })).status).toBe(202);
  const t = await dataToken(emu);
  expect(t.status).toBe(200);
  token = t.body.access_token as string;
});
afterAll(async () => {
  await emu?.stop();
});

/** manage-dt's query (§2.4): this instance, the last N minutes, newest id first. */
function manageDtQuery(instanceId: string, timeField: string, minutes = 5) {
  const since = new Date(Date.now() - minutes * 60_000).toISOString().replace(/\.\d+Z$/, "Z");
  return JSON.stringify({
    $and: [{ digital_twin_instance_id: instanceId }, { [timeField]: { $gte: { $date: since } } }],
    $orderby: { id: "desc" },
  });
}

describe("identity token endpoint", () => {
  it("issues a Bearer token for the domain's scope with the confidential app's Basic credentials", async () => {
    const t = await dataToken(emu);
    expect(t.status).toBe(200);
    expect(t.body).toMatchObject({ token_type: "Bearer", expires_in: 3600 });
    expect(typeof t.body.access_token).toBe("string");
  });

  it("refuses a bad client secret with 401 invalid_client", async () => {
    const t = await dataToken(emu, { clientSecret: "wrong" });
    expect(t.status).toBe(401);
    expect(t.body.error).toBe("invalid_client");
  });

  it("refuses a wrong scope (400 invalid_scope) and a wrong password (400 invalid_grant)", async () => {
    const s = await dataToken(emu, { scope: `/${emu.domain.groupShortId}/iot/otherdomain` });
    expect([400, 401]).toContain(s.status);
    expect(s.body.error).toBe("invalid_scope");
    const p = await dataToken(emu, { password: "wrong" });
    expect(p.status).toBe(400);
    expect(p.body.error).toBe("invalid_grant");
  });
});

describe("ORDS data API", () => {
  it("answers manage-dt's rawData query with the ORDS envelope, rows without content, newest first", async () => {
    const r = await ords(emu, token, "rawData", { q: manageDtQuery(twin.instance.id, "time_received"), limit: "100", offset: "0" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ hasMore: false, limit: 100, offset: 0, count: 5 });
    const items = r.body.items!;
    expect(items.map((i) => i.id)).toEqual([5, 4, 3, 2, 1]);
    expect(Object.keys(items[0]!).sort()).toEqual(["content_type", "digital_twin_instance_id", "endpoint", "id", "time_received"]);
    expect(items[0]).toMatchObject({
      digital_twin_instance_id: twin.instance.id,
      endpoint: "iot/v1/telemetry",
      content_type: "application/json",
    });
    expect(items[0]!.time_received).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect((r.body.links as { rel: string }[]).map((l) => l.rel)).toEqual(expect.arrayContaining(["self", "first"]));
  });

  it("returns rawData/{id} with the payload as content", async () => {
    const r = await ords(emu, token, "rawData/1");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 1, digital_twin_instance_id: twin.instance.id, content: { ...m5Payload, count: 1 } });
    expect((await ords(emu, token, "rawData/999")).status).toBe(404);
  });

  it("answers historizedData: 4 rows per message (count is not Historized) with content_path, value, time_observed", async () => {
    const r = await ords(emu, token, "historizedData", { q: manageDtQuery(twin.instance.id, "time_observed"), limit: "100", offset: "0" });
    expect(r.status).toBe(200);
    expect(r.body.count).toBe(12);
    const newest = r.body.items!.slice(0, 4);
    expect(newest.map((i) => i.content_path).sort()).toEqual(["humidity", "pressure", "qmp_temperature", "sht_temperature"]);
    expect(newest.find((i) => i.content_path === "humidity")).toMatchObject({ value: 56.1 });
    expect(new Set(newest.map((i) => i.time_observed)).size).toBe(1);
  });

  it("answers rejectedData with reason_code and reason_message, without content in the list, with it in rejectedData/{id}", async () => {
    const r = await ords(emu, token, "rejectedData", { q: manageDtQuery(twin.instance.id, "time_received"), limit: "100", offset: "0" });
    expect(r.status).toBe(200);
    expect(r.body.count).toBe(2);
    const row = r.body.items![0]!;
    expect(row.content).toBeUndefined();
    expect(typeof row.reason_code).toBe("number");
    expect(typeof row.reason_message).toBe("string");
    const one = await ords(emu, token, `rejectedData/${row.id}`);
    expect(one.body.content).toEqual({ sht_temperature: "warm" });
  });

  it("pages with limit and offset: hasMore until the last page, and the source pipeline's cursor query", async () => {
    const seen: unknown[] = [];
    let offset = 0;
    for (;;) {
      const q = JSON.stringify({ $and: [{ digital_twin_instance_id: twin.instance.id }, { id: { $gt: 0 } }], $orderby: { id: "asc" } });
      const r = await ords(emu, token, "historizedData", { q, limit: "5", offset: String(offset) });
      expect(r.body.limit).toBe(5);
      expect(r.body.offset).toBe(offset);
      seen.push(...r.body.items!.map((i) => i.id));
      const next = (r.body.links as { rel: string }[]).some((l) => l.rel === "next");
      expect(next).toBe(r.body.hasMore);
      if (!r.body.hasMore) break;
      offset += r.body.count as number;
    }
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const cursor = JSON.stringify({ $and: [{ digital_twin_instance_id: twin.instance.id }, { id: { $gt: 10 } }], $orderby: { id: "asc" } });
    const after = await ords(emu, token, "historizedData", { q: cursor });
    expect(after.body.items!.map((i) => i.id)).toEqual([11, 12]);
  });

  it("limit defaults to 25 and is capped at 500; a malformed q is 400", async () => {
    const d = await ords(emu, token, "historizedData");
    expect(d.body.limit).toBe(25);
    const c = await ords(emu, token, "historizedData", { limit: "10000" });
    expect(c.body.limit).toBe(500);
    expect((await ords(emu, token, "rawData", { q: "{not json" })).status).toBe(400);
  });

  it("serves the snapshot per content path", async () => {
    const r = await ords(emu, token, "snapshotData", { q: JSON.stringify({ digital_twin_instance_id: twin.instance.id }) });
    const byPath = Object.fromEntries(r.body.items!.map((i) => [i.content_path, i.value]));
    expect(byPath).toMatchObject({ humidity: 56.1, count: 3 });
  });

  it("refuses a missing, unknown, expired or wrong-scope token with 401", async () => {
    expect((await ords(emu, undefined, "rawData")).status).toBe(401);
    expect((await ords(emu, "not-a-token", "rawData")).status).toBe(401);
    expect((await ords(emu, emu.issueToken(undefined, -1), "rawData")).status).toBe(401);
    const wrongScope = emu.issueToken(`/${emu.domain.groupShortId}/iot/otherdomain`);
    const r = await ords(emu, wrongScope, "rawData");
    expect(r.status).toBe(401);
    expect(r.body.code).toBe("Unauthorized");
  });

  it("expires tokens after the lifetime the admin surface sets", async () => {
    emu.setTokenLifetime(1);
    const t = await dataToken(emu);
    expect(t.body.expires_in).toBe(1);
    expect((await ords(emu, t.body.access_token as string, "rawData")).status).toBe(200);
    emu.setClockOffset(2000);
    try {
      expect((await ords(emu, t.body.access_token as string, "rawData")).status).toBe(401);
    } finally {
      emu.setClockOffset(0);
      emu.setTokenLifetime(3600);
    }
  });
});

import { request } from "node:http";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { type RunningOmfEmulator, startOmfEmulator } from "../src/index.js";
import { EDS_BASE, edsPost, getJson, PI_AUTH, piPost, SEED_TYPES, useEmulator } from "./harness.js";

let emu: RunningOmfEmulator;
useEmulator((shared) => ({ emu } = shared), { emulator: { maxBodyBytes: { pi: 2048, eds: 1024 } } });

const firstEvent = (body: { Messages: { MessageIndex: number | null; Events: { EventInfo: { EventCode: number } }[] }[] }) => ({
  index: body.Messages[0]!.MessageIndex,
  code: body.Messages[0]!.Events[0]!.EventInfo.EventCode,
});

/** Sends raw header lines (duplicates allowed) with node:http, which fetch cannot do. */
function rawPost(url: string, headers: Record<string, string | string[]>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.on("data", (c) => {
        text += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("OMF headers (PI Web API body: MessageIndex null, EventCode 200x)", () => {
  for (const name of ["messagetype", "messageformat", "omfversion"]) {
    it(`missing ${name} → 400, event 2001`, async () => {
      const r = await piPost(emu.url, "type", [SEED_TYPES[0]], { headers: { [name]: null } });
      expect(r.status).toBe(400);
      expect(firstEvent(r.body)).toEqual({ index: null, code: 2001 });
      expect(r.body.Messages[0].Status).toEqual({ Code: 400, HighestSeverity: "Error" });
    });
  }

  const invalid: [string, string, number][] = [
    ["action", "upsert", 2003],
    ["compression", "deflate", 2004],
    ["messagetype", "schema", 2005],
    ["messageformat", "xml", 2006],
    ["omfversion", "2.0", 2007],
  ];
  for (const [name, value, code] of invalid) {
    it(`${name}: ${value} → 400, event ${code}`, async () => {
      const r = await piPost(emu.url, "type", [SEED_TYPES[0]], { headers: { [name]: value } });
      expect(r.status).toBe(400);
      expect(firstEvent(r.body)).toEqual({ index: null, code });
    });
  }

  it("duplicate OMF header → 400, event 2002", async () => {
    const r = await rawPost(
      `${emu.url}/piwebapi/omf`,
      {
        Authorization: PI_AUTH,
        "X-Requested-With": "XMLHttpRequest",
        messagetype: ["type", "type"],
        messageformat: "json",
        omfversion: "1.2",
      },
      JSON.stringify([SEED_TYPES[0]]),
    );
    expect(r.status).toBe(400);
    expect(firstEvent(JSON.parse(r.body))).toEqual({ index: null, code: 2002 });
  });

  it("header names and values are case-insensitive; action defaults to create; producertoken is ignored", async () => {
    const r = await rawPost(
      `${emu.url}/piwebapi/omf`,
      {
        Authorization: PI_AUTH,
        "X-Requested-With": "XMLHttpRequest",
        MessageType: "TYPE",
        MessageFormat: "JSON",
        OMFVersion: "1.1",
        ProducerToken: "omf_north_0001",
      },
      JSON.stringify([SEED_TYPES[0]]),
    );
    expect(r.status).toBe(201);
    const state = (await getJson(`${emu.url}/_emulator/state`)).body;
    expect(Object.keys(state.scopes.pi.types)).toEqual(["FirstDynamicType"]);
  });

  it("OMF 1.0, 1.1 and 1.2 are all accepted", async () => {
    const plain = {
      id: "Plain",
      classification: "dynamic",
      type: "object",
      properties: { Time: { type: "string", format: "date-time", isindex: true }, Value: { type: "number" } },
    };
    for (const v of ["1.0", "1.1", "1.2"]) {
      const r = await piPost(emu.url, "type", [plain], { version: v });
      expect(r.status, v).toBeLessThan(300);
    }
  });

  it("keywords newer than omfversion are accepted by default (OMF: receivers ignore what they do not support); strict refuses uom under 1.0", async () => {
    expect((await piPost(emu.url, "type", [SEED_TYPES[0]], { version: "1.0" })).status).toBe(201);
    const strict = await startOmfEmulator({ settings: { strict: true } });
    try {
      const r10 = await piPost(strict.url, "type", [SEED_TYPES[0]], { version: "1.0" });
      expect(r10.status).toBe(400);
      expect(r10.body.Messages[0].MessageIndex).toBe(0);
    } finally {
      await strict.stop();
    }
  });

  it("SDS profile renders header errors as ErrorResponseBody", async () => {
    const r = await edsPost(emu.url, "type", [SEED_TYPES[0]], { headers: { omfversion: null } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      OperationId: expect.any(String),
      Error: expect.stringContaining("omfversion"),
      Parameters: { EventCode: "2001" },
    });
    expect(r.body.Reason).toEqual(expect.any(String));
    expect(r.body.Resolution).toEqual(expect.any(String));
  });
});

describe("body: gzip, JSON, size", () => {
  it("compression: gzip bodies are inflated and processed", async () => {
    const r = await piPost(emu.url, "type", [SEED_TYPES[0]], { gzip: true });
    expect(r.status).toBe(201);
  });

  it("a body that is not gzip under compression: gzip → 400, event 3001", async () => {
    const r = await piPost(emu.url, "type", undefined, { headers: { compression: "gzip" }, raw: JSON.stringify([SEED_TYPES[0]]) });
    expect(r.status).toBe(400);
    expect(firstEvent(r.body)).toEqual({ index: null, code: 3001 });
  });

  it("invalid JSON → 400, event 3002 with MessageIndex null", async () => {
    const r = await piPost(emu.url, "type", undefined, { raw: "[{not json" });
    expect(r.status).toBe(400);
    expect(firstEvent(r.body)).toEqual({ index: null, code: 3002 });
  });

  it("a JSON object instead of an array → 400", async () => {
    const r = await piPost(emu.url, "type", SEED_TYPES[0]);
    expect(r.status).toBe(400);
  });

  it("PI: body over MaxRequestContentLength → 413 {Errors:[…maximum allowed length N]}", async () => {
    const big = [{ ...SEED_TYPES[0], description: "x".repeat(4000) }];
    const r = await piPost(emu.url, "type", big);
    expect(r.status).toBe(413);
    expect(r.body).toEqual({ Errors: ["Request content exceeds the maximum allowed length 2048"] });
  });

  it("SDS: body over the limit → 413 ErrorResponseBody; the same content gzip-compressed fits", async () => {
    const big = [{ ...SEED_TYPES[0], description: "x".repeat(4000) }];
    const r = await edsPost(emu.url, "type", big);
    expect(r.status).toBe(413);
    expect(r.body.OperationId).toEqual(expect.any(String));
    const z = await edsPost(emu.url, "type", big, { gzip: true });
    expect(z.status).toBe(202);
  });

  it("gzip bomb: inflated size over maxInflatedBytes → 413", async () => {
    const small = await startOmfEmulator({ maxInflatedBytes: 10_000 });
    try {
      const bomb = gzipSync(Buffer.from(`[${" ".repeat(100_000)}]`));
      const res = await fetch(`${small.url}${EDS_BASE}/omf`, {
        method: "POST",
        headers: { messagetype: "data", messageformat: "json", omfversion: "1.2", compression: "gzip" },
        body: bomb,
      });
      expect(res.status).toBe(413);
    } finally {
      await small.stop();
    }
  });
});

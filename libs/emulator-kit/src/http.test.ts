import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { drain, readBody, send, sendJson } from "./http.js";
import { type ListeningServer, listen } from "./listen.js";

let listening: ListeningServer | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<string> {
  listening = await listen(createServer((req, res) => void handler(req, res)));
  return listening.url("http");
}

describe("readBody", () => {
  it("returns the body under the limit", async () => {
    const url = await serve(async (req, res) => {
      const body = await readBody(req, 100);
      sendJson(res, 200, { text: body.buf.toString(), size: body.size, tooLarge: body.tooLarge });
    });
    const r = await fetch(url, { method: "POST", body: "hello" });
    expect(await r.json()).toEqual({ text: "hello", size: 5, tooLarge: false });
  });

  it("over the limit reads the rest, so the client gets the 413 rather than a reset", async () => {
    const url = await serve(async (req, res) => {
      const body = await readBody(req, 1000);
      if (body.tooLarge) return sendJson(res, 413, { size: body.size, kept: body.buf.length });
      sendJson(res, 200, {});
    });
    const r = await fetch(url, { method: "POST", body: "x".repeat(5000) });
    expect(r.status).toBe(413);
    expect(await r.json()).toEqual({ size: 5000, kept: 0 });
  });
});

describe("send / sendJson / drain", () => {
  it("answers JSON with Content-Length, and nothing once headers went out", async () => {
    const url = await serve(async (req, res) => {
      await drain(req);
      sendJson(res, 201, { a: 1 }, { "X-Extra": "yes" });
      sendJson(res, 500, { ignored: true });
    });
    const r = await fetch(url, { method: "POST", body: "ignored" });
    expect(r.status).toBe(201);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(r.headers.get("content-length")).toBe("7");
    expect(r.headers.get("x-extra")).toBe("yes");
    expect(await r.json()).toEqual({ a: 1 });
  });

  it("sends text with its content type, or no body at all", async () => {
    const url = await serve((req, res) => {
      if (req.url === "/empty") return send(res, 204, undefined, "text/plain");
      send(res, 200, "plain", "text/plain");
    });
    expect(await (await fetch(url)).text()).toBe("plain");
    const empty = await fetch(`${url}/empty`);
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe("");
  });
});

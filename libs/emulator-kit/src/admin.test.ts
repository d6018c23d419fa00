import { createServer } from "node:http";
import { captureLogger } from "@meridian/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAdminSurface, isAdminPath } from "./admin.js";
import { EmulatorHttpError, FaultConfigError } from "./errors.js";
import { sendJson } from "./http.js";
import { type ListeningServer, listen } from "./listen.js";

/** A toy emulator: a list of armed faults (numbers), a counter as its state and one route of its own. */
let armed: number[] = [];
let resets = 0;
let pem: string | undefined;
const logs = captureLogger();
const admin = createAdminSurface<number>({
  state: (q) => ({ armed, resets, verbose: q.get("verbose") === "true" }),
  reset: () => {
    resets++;
    armed = [];
    return { reset: true };
  },
  faults: {
    parse: (body) => {
      if (typeof body.n !== "number") throw new FaultConfigError("n", "must be a number");
      return body.n;
    },
    add: (n) => {
      armed.push(n);
      return { armed };
    },
    list: () => armed,
    clear: () => {
      armed = [];
      return { cleared: true };
    },
  },
  caPem: () => pem,
  routes: [
    {
      method: "POST",
      path: /^things\/(\d+)\/poke$/,
      handle: (r) => {
        if (r.params[0] === "404") throw new EmulatorHttpError(404, "no such thing");
        return { poked: Number(r.params[0]), body: r.json() };
      },
    },
    {
      method: "GET",
      path: "boom",
      handle: () => {
        throw new Error("handler bug");
      },
    },
  ],
  bodyLimit: 1000,
  logger: logs.logger,
});

let listening: ListeningServer;
let url: string;
beforeAll(async () => {
  listening = await listen(
    createServer((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      if (isAdminPath(u.pathname)) void admin.handle(req, res, u);
      else sendJson(res, 404, { error: "not admin" });
    }),
  );
  url = `${listening.url("http")}/_emulator`;
});
afterAll(() => listening.close());
beforeEach(() => {
  armed = [];
  pem = undefined;
});

const call = async (method: string, path: string, body?: string) => {
  const r = await fetch(`${url}${path}`, { method, ...(body !== undefined ? { body } : {}) });
  const text = await r.text();
  const type = r.headers.get("content-type");
  const json = type?.startsWith("application/json") ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  return { status: r.status, type, text, json };
};

describe("isAdminPath", () => {
  it("is /_emulator and below, any case, nothing else", () => {
    expect(isAdminPath("/_emulator")).toBe(true);
    expect(isAdminPath("/_Emulator/State")).toBe(true);
    expect(isAdminPath("/_emulatorx")).toBe(false);
    expect(isAdminPath("/api/_emulator")).toBe(false);
  });
});

describe("the common routes", () => {
  it("health, and state with the emulator's query", async () => {
    expect((await call("GET", "/health")).json).toEqual({ ok: true });
    expect((await call("GET", "/state?verbose=true")).json).toMatchObject({ armed: [], verbose: true });
  });

  it("faults: POST arms through the emulator's parser, GET lists, DELETE clears; PUT is not routed without replace", async () => {
    expect((await call("POST", "/faults", JSON.stringify({ n: 3 }))).json).toEqual({ armed: [3] });
    expect((await call("GET", "/faults")).json).toEqual([3]);
    expect((await call("PUT", "/faults", JSON.stringify({ n: 4 }))).status).toBe(404);
    expect((await call("DELETE", "/faults")).json).toEqual({ cleared: true });
    expect(armed).toEqual([]);
  });

  it("a fault the parser rejects is 400 naming the field; a body that is not a JSON object is 400 naming body", async () => {
    expect(await call("POST", "/faults", JSON.stringify({ n: "x" }))).toMatchObject({ status: 400, json: { field: "n" } });
    expect(await call("POST", "/faults", "{not json")).toMatchObject({ status: 400, json: { field: "body" } });
    expect(await call("POST", "/faults", "[1]")).toMatchObject({ status: 400, json: { field: "body" } });
  });

  it("reset answers what the emulator returns; paths are matched in any case and with a trailing slash", async () => {
    expect((await call("POST", "/Reset/")).json).toEqual({ reset: true });
  });

  it("ca.pem is the PEM when TLS is on, 404 when off", async () => {
    expect((await call("GET", "/ca.pem")).status).toBe(404);
    pem = "-----BEGIN CERTIFICATE-----\n";
    const r = await call("GET", "/ca.pem");
    expect(r).toMatchObject({ status: 200, type: "application/x-pem-file", text: pem });
  });
});

describe("the emulator's own routes and errors", () => {
  it("a RegExp route gets its captures and the JSON body", async () => {
    expect((await call("POST", "/things/12/poke", JSON.stringify({ hard: true }))).json).toEqual({ poked: 12, body: { hard: true } });
    expect((await call("POST", "/things/12/poke")).json).toEqual({ poked: 12, body: {} });
  });

  it("an EmulatorHttpError becomes its status; an unknown route is 404; a bug is 500 and logged", async () => {
    expect(await call("POST", "/things/404/poke")).toMatchObject({ status: 404, json: { error: "no such thing" } });
    expect(await call("GET", "/nothing")).toMatchObject({ status: 404, json: { error: "no such admin route GET /_emulator/nothing" } });
    expect(await call("GET", "/boom")).toMatchObject({ status: 500, json: { error: "internal error" } });
    expect(logs.lines.some((l) => l.msg === "admin request failed")).toBe(true);
  });

  it("a body over the limit is 413", async () => {
    expect((await call("POST", "/faults", JSON.stringify({ n: 1, pad: "x".repeat(2000) }))).status).toBe(413);
  });
});

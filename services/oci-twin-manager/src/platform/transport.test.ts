import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { OciError, OciUnavailableError } from "./errors.js";
import { createAgent, errorBody, exchange, fieldOf, retryAfterFrom } from "./transport.js";

describe("fieldOf", () => {
  it.each([
    ["spec.contents[2].schema: unknown schema 'dobule'", "spec.contents[2].schema"],
    ["limit: must be between 1 and 1000", "limit"],
    ["Missing parameter: iotDomainId", "iotDomainId"],
    ["Invalid parameter 'displayName'", "displayName"],
    ['The field "inboundRoutes[3].condition" is not a valid expression', "inboundRoutes[3].condition"],
    ["Referenced 'digitalTwinModelId' does not exist", "digitalTwinModelId"],
    ['spec["@context"]: required (a string or an array)', 'spec["@context"]'],
    ['spec.contents[1]["@type"]: must include one of Telemetry, Property', 'spec.contents[1]["@type"]'],
    ["The request is malformed.", undefined],
    ["Error: something", undefined],
    ["", undefined],
  ])("%j → %j", (message, field) => {
    expect(fieldOf(message)).toBe(field);
  });
});

describe("errorBody", () => {
  it("reads OCI's {code, message}, OAuth's {error, error_description}, and plain text", () => {
    expect(errorBody('{"code":"InvalidParameter","message":"bad"}')).toEqual({ code: "InvalidParameter", message: "bad" });
    expect(errorBody('{"error":"invalid_grant","error_description":"no"}')).toEqual({ code: "invalid_grant", message: "no" });
    expect(errorBody("Bad Gateway")).toEqual({ message: "Bad Gateway" });
    expect(errorBody("")).toEqual({});
  });
});

describe("exchange", () => {
  /** A plain HTTP server that answers /ok at once and never answers anything else. */
  async function server() {
    const s = createServer((req, res) => {
      if (req.url === "/ok") res.end("ok");
      else if (req.url === "/bom") res.end("\ufeffok");
      // 1001 bytes with their Content-Length, then without (chunked), so that only reading can tell.
      else if (req.url === "/big") res.end("a".repeat(1001));
      else if (req.url === "/big-chunked") {
        res.write("a".repeat(600));
        res.end("a".repeat(401));
      } else if (req.url === "/error-big") {
        res.writeHead(503, { "retry-after": "3" });
        res.end("e".repeat(64 * 1024 + 1));
      } else if (req.url === "/redirect") {
        res.writeHead(302, { location: "/ok" });
        res.end();
      }
    });
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    return {
      url,
      close: () =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    };
  }
  it("no answer within timeoutMs is OciUnavailableError code Timeout; the caller's abort is its own reason", async () => {
    const s = await server();
    const agent = createAgent(undefined);
    try {
      const base = { method: "GET" as const, headers: {}, maxBytes: 1000, agent, what: "GET test" };
      expect(await exchange({ ...base, url: `${s.url}/ok`, timeoutMs: 60_000 })).toMatchObject({ status: 200, text: "ok" });
      const err = await exchange({ ...base, url: `${s.url}/hang`, timeoutMs: 300 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciUnavailableError);
      expect(err).toMatchObject({ code: "Timeout" });
      expect((err as Error).message).toContain("GET test: no answer within 300 ms");
      const ac = new AbortController();
      const aborted = exchange({ ...base, url: `${s.url}/hang`, timeoutMs: 60_000, signal: ac.signal }).catch((e: unknown) => e);
      ac.abort(new Error("stopping"));
      expect(((await aborted) as Error).message).toBe("stopping");
    } finally {
      await agent.close();
      await s.close();
    }
  });

  it("a 2xx answer over maxBytes is OciError ResponseTooLarge, declared or not; an error answer over 64 KiB is its status with no text", async () => {
    const s = await server();
    const agent = createAgent(undefined);
    try {
      const base = { method: "GET" as const, headers: {}, maxBytes: 1000, timeoutMs: 60_000, agent, what: "GET test" };
      for (const path of ["/big", "/big-chunked"]) {
        const err = await exchange({ ...base, url: `${s.url}${path}` }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OciError);
        expect(err).toMatchObject({ code: "ResponseTooLarge", status: 200 });
        expect((err as Error).message).toBe("GET test: answer over 1000 bytes (HTTP 200); not read");
      }
      const refused = await exchange({ ...base, url: `${s.url}/error-big` });
      expect(refused).toMatchObject({ status: 503, text: "" });
      expect(refused.headers.get("retry-after")).toBe("3");
      expect(retryAfterFrom(refused.headers)).toEqual({ retryAfterMs: 3000 });
      // The pool still works after the bodies it did not read.
      expect(await exchange({ ...base, url: `${s.url}/ok` })).toMatchObject({ status: 200, text: "ok" });
    } finally {
      await agent.close();
      await s.close();
    }
  });

  it("drops a leading BOM, returns a redirect as it is, and a refused connection is OciUnavailableError ECONNREFUSED", async () => {
    const s = await server();
    const agent = createAgent(undefined);
    try {
      const base = { method: "GET" as const, headers: {}, maxBytes: 1000, timeoutMs: 60_000, agent, what: "GET test" };
      expect(await exchange({ ...base, url: `${s.url}/bom` })).toMatchObject({ status: 200, text: "ok" });
      const moved = await exchange({ ...base, url: `${s.url}/redirect` });
      expect(moved.status).toBe(302);
      expect(moved.headers.get("location")).toBe("/ok");
      expect(moved.headers.get("x-absent")).toBeNull();
    } finally {
      await agent.close();
      await s.close();
    }
    // A new pool: the one above would first find its kept-alive socket closed (UND_ERR_SOCKET), not a refused one.
    const fresh = createAgent(undefined);
    try {
      const base = { method: "GET" as const, headers: {}, maxBytes: 1000, timeoutMs: 60_000, agent: fresh, what: "GET test" };
      const err = await exchange({ ...base, url: `${s.url}/ok` }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciUnavailableError);
      expect(err).toMatchObject({ code: "ECONNREFUSED" });
      expect((err as Error).message).toBe("GET test: ECONNREFUSED");
    } finally {
      await fresh.close();
    }
  });
});

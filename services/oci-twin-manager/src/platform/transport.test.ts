import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { OciUnavailableError } from "./errors.js";
import { createAgent, errorBody, exchange, fieldOf } from "./transport.js";

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
});

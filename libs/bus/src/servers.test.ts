import { describe, expect, it } from "vitest";
import { parseServers, redactUrl } from "./servers.js";

describe("parseServers", () => {
  it("takes user and password out of the URLs, keeping scheme, host and port", () => {
    expect(parseServers(["nats://svc:p%40ss:w@nats-0:4222", "tls://nats-1:4222", "nats-2:4222"])).toEqual({
      servers: ["nats://nats-0:4222", "tls://nats-1:4222", "nats-2:4222"],
      user: "svc",
      pass: "p@ss:w",
    });
  });

  it("reads a lone name as a token, as NATS clients do, and strips credentials from every URL", () => {
    expect(parseServers("nats://s3cr3t-token@nats:4222")).toEqual({ servers: ["nats://nats:4222"], token: "s3cr3t-token" });
    expect(parseServers(["nats://a:b@x:1", "nats://c:d@y:2"])).toEqual({ servers: ["nats://x:1", "nats://y:2"], user: "a", pass: "b" });
    expect(parseServers("localhost:4222")).toEqual({ servers: ["localhost:4222"] });
  });
});

describe("redactUrl", () => {
  it("replaces user:password@ and token@, with or without a scheme", () => {
    expect(redactUrl("nats://svc:hunter2@nats:4222")).toBe("nats://[redacted]@nats:4222");
    expect(redactUrl("tls://tok@nats:4222")).toBe("tls://[redacted]@nats:4222");
    expect(redactUrl("svc:hunter2@nats:4222")).toBe("[redacted]@nats:4222");
    expect(redactUrl("nats://nats:4222")).toBe("nats://nats:4222");
  });
});

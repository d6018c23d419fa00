import { Agent, createServer, request } from "node:http";
import { describe, expect, it } from "vitest";
import { listen, urlHost } from "./listen.js";

function get(url: string, agent?: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("listen", () => {
  it("binds port 0 to a free port and gives its URL", async () => {
    const listening = await listen(createServer((_req, res) => res.end("ok")));
    try {
      expect(listening.port).toBeGreaterThan(0);
      expect(listening.url("http")).toBe(`http://127.0.0.1:${listening.port}`);
      expect(await get(listening.url("http"))).toBe(200);
    } finally {
      await listening.close();
    }
  });

  it("writes wildcard and IPv6 bind addresses as a host a local client can use", () => {
    expect(urlHost("0.0.0.0")).toBe("127.0.0.1");
    expect(urlHost("::")).toBe("127.0.0.1");
    expect(urlHost("::1")).toBe("[::1]");
    expect(urlHost("localhost")).toBe("localhost");
  });

  it("rejects when the port is taken", async () => {
    const first = await listen(createServer());
    try {
      await expect(listen(createServer(), { port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });

  it("close does not wait for a kept-alive connection or a request that is never answered", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/hang") return; // never answered
      res.end("ok");
    });
    server.keepAliveTimeout = 60_000;
    const listening = await listen(server);
    const agent = new Agent({ keepAlive: true });
    expect(await get(listening.url("http"), agent)).toBe(200);
    const hanging = get(`${listening.url("http")}/hang`).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    await listening.close();
    expect(performance.now() - t0).toBeLessThan(3000); // never answered; 3 s leaves room for a loaded machine
    expect(await hanging).toBeInstanceOf(Error);
    await listening.close(); // idempotent
    agent.destroy();
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, env, loadConfig } from "./config.js";

const schema = z.object({
  PORT: env.port(8080),
  NATS_URL: z.string().default("nats://localhost:4222"),
  PASSWORD: z.string().min(1),
  VERIFY_TLS: env.bool(true),
});

describe("loadConfig", () => {
  it("applies defaults and coerces", () => {
    const c = loadConfig(schema, { PASSWORD: "x", VERIFY_TLS: "false" });
    expect(c).toEqual({ PORT: 8080, NATS_URL: "nats://localhost:4222", PASSWORD: "x", VERIFY_TLS: false });
  });
  it("reads KEY_FILE when KEY is unset", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "pw"), "s3cret\n");
    expect(loadConfig(schema, { PASSWORD_FILE: join(dir, "pw") }).PASSWORD).toBe("s3cret");
  });
  it("names every bad setting and never echoes values", () => {
    try {
      loadConfig(schema, { PORT: "99999", PASSWORD: "", VERIFY_TLS: "maybe" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.settings.sort()).toEqual(["PASSWORD", "PORT", "VERIFY_TLS"]);
      expect(e.message).toContain("PORT:");
      expect(e.message).not.toContain("99999");
    }
  });
  it("names an unreadable secret file", () => {
    expect(() => loadConfig(schema, { PASSWORD_FILE: "/nonexistent/pw" })).toThrow(/PASSWORD_FILE: cannot read/);
  });
});

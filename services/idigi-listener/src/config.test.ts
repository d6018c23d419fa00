import { describe, expect, it } from "vitest";
import {
  DEFAULT_MONITOR_MEMORY_BYTES,
  exposures,
  idigiListenerConfig,
  MAX_MONITOR_MEMORY_BYTES,
  MIN_MONITOR_MEMORY_BYTES,
  pushTarget,
} from "./config.js";

const base = { NATS_URL: "nats://127.0.0.1:4222", IDIGI_USERNAME: "u", IDIGI_PASSWORD: "p" };
const parse = (over: Record<string, string> = {}) => idigiListenerConfig.parse({ ...base, ...over });

describe("idigi-listener settings", () => {
  it("defaults are safe: https, TLS on 3201 with verification, nothing exposed, insecure not allowed", () => {
    const c = parse();
    expect(pushTarget(c)).toEqual({ host: "remotemanager.digi.com", port: 3201, tls: true, verifyCertificate: true });
    expect(exposures(c)).toEqual([]);
    expect(c.IDIGI_ALLOW_INSECURE).toBe(false);
    expect(c.IDIGI_MONITOR_MEMORY_BYTES).toBe(DEFAULT_MONITOR_MEMORY_BYTES);
  });

  it.each([
    [
      { IDIGI_URL: "http://emu:8080" },
      [
        ["IDIGI_URL", "REST API over http"],
        ["IDIGI_URL", "push session without TLS"],
      ],
    ],
    [{ IDIGI_URL: "http://emu:8080", IDIGI_PUSH_TLS: "true" }, [["IDIGI_URL", "REST API over http"]]],
    [{ IDIGI_PUSH_TLS: "false" }, [["IDIGI_PUSH_TLS", "push session without TLS"]]],
    [{ IDIGI_TLS_INSECURE: "true" }, [["IDIGI_TLS_INSECURE", "push server certificate not verified"]]],
  ])("%j exposes the credentials: %j", (over, expected) => {
    expect(exposures(parse(over)).map((e) => [e.setting, e.what])).toEqual(expected);
  });

  it("IDIGI_MONITOR_MEMORY_BYTES has bounds", () => {
    expect(parse({ IDIGI_MONITOR_MEMORY_BYTES: String(MIN_MONITOR_MEMORY_BYTES) }).IDIGI_MONITOR_MEMORY_BYTES).toBe(
      MIN_MONITOR_MEMORY_BYTES,
    );
    for (const bad of [String(MIN_MONITOR_MEMORY_BYTES - 1), String(MAX_MONITOR_MEMORY_BYTES + 1), "1.5", "lots"]) {
      const r = idigiListenerConfig.safeParse({ ...base, IDIGI_MONITOR_MEMORY_BYTES: bad });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.path).toEqual(["IDIGI_MONITOR_MEMORY_BYTES"]);
    }
  });
});

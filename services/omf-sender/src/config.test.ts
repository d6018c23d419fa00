import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { omfSenderConfig } from "./config.js";

const parse = (env: Record<string, string>) => omfSenderConfig.safeParse({ NATS_URL: "nats://127.0.0.1:4222", ...env });

describe("endpoint security settings", () => {
  it("default to the safe side: no extra hosts, nothing insecure, no private CA, references confined", () => {
    const r = parse({});
    expect(r.success).toBe(true);
    expect(r.data).toMatchObject({
      OMF_ALLOWED_HOSTS: [],
      OMF_ALLOW_INSECURE_ENDPOINTS: false,
      OMF_SECRET_ENV_PREFIX: "OMF_SECRET_",
      OMF_SECRET_DIR: "/run/secrets",
      OMF_MAX_CONTAINERS_PER_ENDPOINT: 10_000,
      OMF_CREDENTIALS_PREVIOUS_KEYS: [],
    });
    expect(r.data?.OMF_CA_DIR).toBeUndefined();
  });

  it.each([
    ["OMF_ALLOWED_HOSTS", "*"],
    ["OMF_ALLOWED_HOSTS", "pi.plant.local, https://pi.plant.local"],
    ["OMF_ALLOWED_HOSTS", "pi/plant"],
    ["OMF_SECRET_ENV_PREFIX", ""],
    ["OMF_SECRET_ENV_PREFIX", "lower_"],
    ["OMF_SECRET_DIR", "/"],
    ["OMF_SECRET_DIR", "relative/dir"],
    ["OMF_CA_DIR", "ca"],
    ["OMF_MAX_CONTAINERS_PER_ENDPOINT", "0"],
    ["OMF_MAX_CONTAINERS_PER_ENDPOINT", "1000001"],
    ["OMF_CREDENTIALS_PREVIOUS_KEYS", "c2hvcnQ="],
    ["OMF_CREDENTIALS_PREVIOUS_KEYS", Array.from({ length: 9 }, () => randomBytes(32).toString("base64")).join(",")],
  ])("%s=%j is refused, naming the setting and never echoing a key", (name, value) => {
    const r = parse({ [name]: value });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual([name]);
    if (name === "OMF_CREDENTIALS_PREVIOUS_KEYS") expect(JSON.stringify(r.error?.issues)).not.toContain(value.slice(0, 8));
  });

  it("accepts host patterns with ports and IPv6, and up to 8 previous keys", () => {
    const keys = [randomBytes(32), randomBytes(32)];
    const r = parse({
      OMF_ALLOWED_HOSTS: "PI.plant.local, *.osisoft.com  eds.plant.local:5590,[fd00::1]:443",
      OMF_CREDENTIALS_PREVIOUS_KEYS: keys.map((k) => k.toString("base64")).join(" "),
    });
    expect(r.data?.OMF_ALLOWED_HOSTS).toEqual(["pi.plant.local", "*.osisoft.com", "eds.plant.local:5590", "[fd00::1]:443"]);
    expect(r.data?.OMF_CREDENTIALS_PREVIOUS_KEYS).toEqual(keys);
  });
});

import { ConfigError } from "@meridian/service-kit";
import { describe, expect, it } from "vitest";
import { m5ModelDefault } from "../test/m5.js";
import { parseTwins } from "./declared.js";

const DOMAIN = "ocid1.iotdomain.oc1.eu-frankfurt-1.aaaa";

function problem(raw: unknown, defaultDomainId: string | undefined): string {
  try {
    parseTwins(raw, { maxTwins: 10, defaultDomainId, path: "twins.json" });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("no problem found");
}

describe("OCI_TWINS_FILE", () => {
  it("reads proto JSON in snake or camel case", () => {
    const twins = parseTwins(
      {
        twins: [
          { key: "plain", display_name: "plain-01", external_key: "dev-1" },
          {
            key: "m5",
            displayName: "m5-01",
            model: { specUri: "dtmi:com:example:m5;1", spec: m5ModelDefault() },
            source: { historized: true, poll_interval_ms: 1000 },
          },
        ],
      },
      { maxTwins: 10, defaultDomainId: DOMAIN },
    );
    expect(twins.map((t) => t.key)).toEqual(["plain", "m5"]);
    expect(twins[0]?.externalKey).toBe("dev-1");
    expect(twins[1]?.model?.specUri).toBe("dtmi:com:example:m5;1");
    expect(twins[1]?.source).toEqual({ historized: true, raw: false, rejected: false, pollIntervalMs: 1000 });
  });

  it("names the entry and field of every problem", () => {
    const spec = { ...m5ModelDefault(), "@type": "Thing" };
    const msg = problem(
      {
        twins: [
          { key: "ok", display_name: "a" },
          { key: "bad", display_name: "b", model: { spec_uri: "dtmi:x:y;1", spec } },
          { key: "ok", display_name: "c" },
          { key: "x", display_name: "d", colour: "red" },
        ],
      },
      DOMAIN,
    );
    expect(msg).toContain("OCI_TWINS_FILE: twins.json");
    expect(msg).toContain("twins[1].model.spec.@type");
    expect(msg).toContain('twins[2].key: "ok" is also the key of twins[0]');
    expect(msg).toMatch(/twins\[3\]: .*colour/);
  });

  it("needs OCI_IOT_DOMAIN_ID for a twin naming no domain, and a list of twins", () => {
    expect(problem({ twins: [{ key: "a", display_name: "a" }] }, undefined)).toContain("twins[0].iot_domain_id");
    expect(problem([], DOMAIN)).toContain('{"twins"');
    expect(problem({ twins: Array.from({ length: 11 }, (_, i) => ({ key: `t${i}`, display_name: "x" })) }, DOMAIN)).toContain(
      "OCI_MAX_TWINS",
    );
  });
});

import { describe, expect, it } from "vitest";
import { ociTwinManagerConfig } from "./config.js";

const DOMAIN = "ocid1.iotdomain.oc1.eu-frankfurt-1.aaaaexample";

function issues(env: Record<string, string>): string[] {
  const r = ociTwinManagerConfig.safeParse(env);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("settings", () => {
  it("defaults as the design says", () => {
    const c = ociTwinManagerConfig.parse({});
    expect(c.PORT).toBe(8085);
    expect(c.OCI_AUTH).toBe("api_key");
    expect(c.OCI_CONFIG_FILE).toBe("~/.oci/config");
    expect(c.OCI_PROFILE).toBe("DEFAULT");
    expect([c.OCI_MAX_TWINS, c.OCI_SOURCE_POLL_MS, c.OCI_SOURCE_PAGE_ROWS]).toEqual([1000, 5000, 500]);
    expect([c.OCI_SINK_ACK_WAIT_MS, c.OCI_SINK_MAX_IN_FLIGHT, c.OCI_REQUEST_TIMEOUT_MS]).toEqual([30_000, 64, 30_000]);
    expect(c.OCI_CREDENTIALS_KEY).toBeUndefined();
  });

  it("bounds every number and names the setting", () => {
    expect(issues({ OCI_SOURCE_POLL_MS: "100" })[0]).toMatch(/^OCI_SOURCE_POLL_MS/);
    expect(issues({ OCI_SOURCE_PAGE_ROWS: "501" })[0]).toMatch(/^OCI_SOURCE_PAGE_ROWS/);
    expect(issues({ OCI_SINK_MAX_IN_FLIGHT: "0" })[0]).toMatch(/^OCI_SINK_MAX_IN_FLIGHT/);
    expect(issues({ OCI_REQUEST_TIMEOUT_MS: "999" })[0]).toMatch(/^OCI_REQUEST_TIMEOUT_MS/);
    expect(issues({ OCI_MAX_TWINS: "0" })[0]).toMatch(/^OCI_MAX_TWINS/);
    expect(issues({ OCI_AUTH: "password" })[0]).toMatch(/^OCI_AUTH/);
  });

  it("checks the domain OCID, the URLs and the region", () => {
    expect(ociTwinManagerConfig.parse({ OCI_IOT_DOMAIN_ID: DOMAIN }).OCI_IOT_DOMAIN_ID).toBe(DOMAIN);
    expect(issues({ OCI_IOT_DOMAIN_ID: "my-domain" })[0]).toMatch(/^OCI_IOT_DOMAIN_ID: must be an IoT domain OCID/);
    expect(issues({ OCI_IOT_ENDPOINT: "not a url" })[0]).toMatch(/^OCI_IOT_ENDPOINT/);
    expect(issues({ OCI_REGION: "Frankfurt 1" })[0]).toMatch(/^OCI_REGION/);
  });

  it("takes the data credentials all four or none, naming the missing ones", () => {
    expect(issues({ OCI_DATA_CLIENT_ID: "app", OCI_DATA_CLIENT_SECRET: "s", OCI_DATA_USERNAME: "u", OCI_DATA_PASSWORD: "p" })).toEqual([]);
    const half = issues({ OCI_DATA_CLIENT_ID: "app", OCI_DATA_PASSWORD: "p" });
    expect(half.map((i) => i.split(":")[0]).sort()).toEqual(["OCI_DATA_CLIENT_SECRET", "OCI_DATA_USERNAME"]);
  });

  it("refuses previous credential keys without a current one", () => {
    const key = Buffer.alloc(32, 1).toString("base64");
    expect(issues({ OCI_CREDENTIALS_PREVIOUS_KEYS: key })[0]).toMatch(/^OCI_CREDENTIALS_KEY/);
    expect(issues({ OCI_CREDENTIALS_KEY: key, OCI_CREDENTIALS_PREVIOUS_KEYS: key })).toEqual([]);
  });
});

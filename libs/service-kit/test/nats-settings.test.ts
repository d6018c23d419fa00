/** The NATS settings as every bus service loads them: secrets and certificates from files, a bad file named. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testIdentitiesFile, testLogger } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { serviceSettings, startBusService } from "../src/bus-service.js";
import { ConfigError, loadConfig } from "../src/config.js";

const schema = z.object(serviceSettings(0));

describe("NATS settings from files", () => {
  it("NATS_PASSWORD_FILE gives NATS_PASSWORD (how Kubernetes mounts the Secret)", () => {
    const dir = mkdtempSync(join(tmpdir(), "nats-settings-"));
    writeFileSync(join(dir, "password"), "from-a-file\n");
    const config = loadConfig(schema, { NATS_USER: "gateway", NATS_PASSWORD_FILE: join(dir, "password") });
    expect(config.NATS_PASSWORD).toBe("from-a-file");
  });

  for (const name of ["NATS_PASSWORD_FILE", "NATS_CA_FILE", "NATS_CERT_FILE", "NATS_KEY_FILE", "NATS_CREDS_FILE"]) {
    it(`${name} that cannot be read is a ConfigError naming it`, () => {
      let err: unknown;
      try {
        loadConfig(schema, { [name]: "/nonexistent/meridian-nats" });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).settings).toEqual([name]);
      expect((err as ConfigError).message).toContain(`${name}`);
      expect((err as ConfigError).message).toContain("/nonexistent/meridian-nats");
    });
  }
});

describe("NATS settings that cannot work together", () => {
  it("stop the start as a ConfigError naming them (exit 78 through runMain), before anything connects", async () => {
    const cert = join(mkdtempSync(join(tmpdir(), "nats-settings-")), "tls.crt");
    writeFileSync(cert, "not used: the key is missing");
    const config = schema.parse({ NATS_CERT_FILE: cert, AUTH_IDENTITIES_FILE: testIdentitiesFile() });
    const started = startBusService({ name: "kit-test", version: "1" }, config, testLogger(), () => ({ routes: () => {} }), {
      installSignalHandlers: false,
    });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toMatchObject({ settings: ["NATS_CERT_FILE", "NATS_KEY_FILE"] });
  });
});

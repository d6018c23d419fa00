/**
 * How the bus authenticates to NATS and what it logs about it, against a real nats-server: credentials from the URL or
 * the settings, never in a log line; TLS with a verified server and a client certificate.
 */
import { join } from "node:path";
import { captureLogger, type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "../src/bus.js";
import { busFromConfig, NatsSettingsError, natsSettings } from "../src/config.js";

const URL_PASSWORD = "url-S3cr3t-pw";
const SETTING_PASSWORD = "setting-S3cr3t-pw";
const TESTDATA = join(import.meta.dirname, "..", "testdata");
const settings = z.object(natsSettings);

describe("credentials: used, never logged", () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNatsServer({
      config: `authorization { users: [ { user: alice, password: "${URL_PASSWORD}" }, { user: bob, password: "${SETTING_PASSWORD}" } ] }`,
    });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  async function connectAndRestart(config: Record<string, string>): Promise<{ raw: string[]; lines: Record<string, unknown>[] }> {
    const logs = captureLogger();
    const bus: Bus = busFromConfig(settings.parse(config), "cred-test", logs.logger);
    try {
      await bus.ready;
      await nats.restart();
      // A disconnect and a reconnect are logged with the server they were about.
      await until(() => logs.lines.some((l) => l.msg === "NATS reconnected") && bus.connected, { timeoutMs: 15_000 });
    } finally {
      await bus.close();
    }
    return logs;
  }

  it("takes user:password from NATS_URL, connects with it, and no log line carries it", async () => {
    const host = nats.url.slice("nats://".length);
    const logs = await connectAndRestart({ NATS_URL: `nats://alice:${URL_PASSWORD}@${host}` });
    expect(logs.raw.length).toBeGreaterThan(3);
    for (const line of logs.raw) expect(line).not.toContain(URL_PASSWORD);
    expect(logs.lines.find((l) => l.msg === "connecting to NATS")).toMatchObject({ servers: [nats.url], auth: "user" });
    expect(logs.lines.some((l) => l.msg === "NATS disconnected")).toBe(true);
  });

  it("connects with NATS_USER / NATS_PASSWORD and never logs the password", async () => {
    const logs = await connectAndRestart({ NATS_URL: nats.url, NATS_USER: "bob", NATS_PASSWORD: SETTING_PASSWORD });
    for (const line of logs.raw) expect(line).not.toContain(SETTING_PASSWORD);
  });

  it("a wrong password in the URL is refused by the server and still not logged", async () => {
    const logs = captureLogger();
    const wrong = "wrong-S3cr3t-pw";
    const bus = busFromConfig(
      settings.parse({ NATS_URL: nats.url.replace("nats://", `nats://alice:${wrong}@`) }),
      "cred-test",
      logs.logger,
    );
    await expect(bus.ready).rejects.toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
    await bus.close();
    for (const line of logs.raw) expect(line).not.toContain(wrong);
  });
});

describe("TLS to NATS", () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNatsServer({
      config: `tls { cert_file: "${TESTDATA}/server-cert.pem", key_file: "${TESTDATA}/server-key.pem", ca_file: "${TESTDATA}/ca.pem", verify: true, timeout: 5 }`,
    });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("verifies the server against NATS_CA_FILE and presents NATS_CERT_FILE / NATS_KEY_FILE", async () => {
    const bus = busFromConfig(
      settings.parse({
        NATS_URL: nats.url.replace("nats://127.0.0.1", "tls://localhost"),
        NATS_CA_FILE: `${TESTDATA}/ca.pem`,
        NATS_CERT_FILE: `${TESTDATA}/client-cert.pem`,
        NATS_KEY_FILE: `${TESTDATA}/client-key.pem`,
      }),
      "tls-test",
      testLogger(),
    );
    try {
      await bus.ready;
      expect(bus.connected).toBe(true);
      await bus.jsm().streams.info("TELEMETRY");
    } finally {
      await bus.close();
    }
  });

  it("without a client certificate a server that verifies clients refuses the connection", async () => {
    const bus = busFromConfig(
      settings.parse({ NATS_URL: nats.url.replace("nats://127.0.0.1", "tls://localhost"), NATS_CA_FILE: `${TESTDATA}/ca.pem` }),
      "tls-test",
      testLogger(),
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(bus.connected).toBe(false);
    await bus.close();
  });

  it("without NATS_CA_FILE the test CA is not trusted and nothing connects", async () => {
    const bus = busFromConfig(
      settings.parse({
        NATS_URL: nats.url.replace("nats://127.0.0.1", "tls://localhost"),
        NATS_CERT_FILE: `${TESTDATA}/client-cert.pem`,
        NATS_KEY_FILE: `${TESTDATA}/client-key.pem`,
      }),
      "tls-test",
      testLogger(),
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(bus.connected).toBe(false);
    await bus.close();
  });
});

describe("NATS file settings", () => {
  it("a file setting that cannot be read fails the settings, naming it (service-kit's loadConfig makes it a ConfigError)", () => {
    for (const name of ["NATS_CA_FILE", "NATS_CERT_FILE", "NATS_KEY_FILE", "NATS_CREDS_FILE"]) {
      const result = settings.safeParse({ [name]: "/nonexistent/nats.pem" });
      expect(result.success, name).toBe(false);
      expect(result.error?.issues[0]?.path, name).toEqual([name]);
      expect(result.error?.issues[0]?.message, name).toContain("cannot read /nonexistent/nats.pem");
    }
  });

  it("a client certificate without its key, or two ways to authenticate, is refused naming the settings", () => {
    const cert = settings.parse({ NATS_CERT_FILE: `${TESTDATA}/client-cert.pem` });
    expect(() => busFromConfig(cert, "x", testLogger())).toThrow(NatsSettingsError);
    expect(() => busFromConfig(cert, "x", testLogger())).toThrow(/NATS_CERT_FILE and NATS_KEY_FILE/);
    const both = settings.parse({ NATS_USER: "a", NATS_PASSWORD: "b", NATS_TOKEN: "c" });
    expect(() => busFromConfig(both, "x", testLogger())).toThrow(/NATS_USER, NATS_TOKEN/);
  });

  it("BACKLOG_AGE_WARN_SECONDS has bounds", () => {
    expect(settings.parse({}).BACKLOG_AGE_WARN_SECONDS).toBe(3600);
    expect(settings.safeParse({ BACKLOG_AGE_WARN_SECONDS: "59" }).success).toBe(false);
    expect(settings.safeParse({ BACKLOG_AGE_WARN_SECONDS: String(31 * 24 * 3600) }).success).toBe(false);
  });
});

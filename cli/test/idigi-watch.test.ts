import { type IdigiEmulator, startIdigiEmulator } from "@meridian/emulator-idigi";
import { type IdigiListener, idigiListenerConfig, startIdigiListener } from "@meridian/idigi-listener";
import { type NatsServerHandle, startNatsServer, testIdentitiesFile, testLogger, testTransport, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerIdigi } from "../src/commands/idigi.js";
import { runVerb } from "../src/commands/testdata/harness.js";

/**
 * The iDigi seed's push_client.py as `meridian idigi watch`, against the real idigi-listener and the iDigi emulator:
 * a monitor created with the seed's flags, each record printed as the seed's callback prints it, and at Ctrl-C the
 * monitor deleted at the platform.
 */
let nats: NatsServerHandle;
let emu: IdigiEmulator;
let listener: IdigiListener;

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startIdigiEmulator({ tls: false, devices: { devices: 3 } });
  const config = idigiListenerConfig.parse({
    PORT: "0",
    NATS_URL: nats.url,
    IDIGI_URL: emu.httpUrl,
    IDIGI_PUSH_PORT: String(emu.pushPort),
    IDIGI_USERNAME: "emulator",
    IDIGI_PASSWORD: "emulator",
    IDIGI_ALLOW_INSECURE: "true",
    INSTANCE_ID: "cli-test",
    AUTH_IDENTITIES_FILE: testIdentitiesFile(),
  });
  listener = await startIdigiListener(config, testLogger(), { installSignalHandlers: false, startWaitMs: 5_000 });
  await listener.bus.ready;
}, 60_000);

afterAll(async () => {
  await listener?.stop();
  await emu?.stop();
  await nats?.stop();
});

async function monitorExists(id: string): Promise<boolean> {
  const res = await fetch(`${emu.httpUrl}/ws/Monitor/${id}.json`, {
    headers: { Authorization: `Basic ${Buffer.from("emulator:emulator").toString("base64")}` },
  });
  return res.status === 200;
}

describe("meridian idigi watch", () => {
  it("creates a monitor with the seed's flags, prints each record as the seed does, deletes the monitor at Ctrl-C", async () => {
    const stop = new AbortController();
    let out = "";
    const running = runVerb(
      registerIdigi,
      testTransport(listener.service.url),
      ["idigi", "watch", "--topics", "DataPoint", "--batch-duration", "0"],
      {
        signal: stop.signal,
        onStdout: (all) => {
          out = all;
        },
      },
    );
    await until(() => /Monitor \d+ created/.test(out), { timeoutMs: 10_000, what: "the monitor created" });
    const id = /Monitor (\d+) created on topics DataPoint, session connected/.exec(out)?.[1];
    expect(id, out).toBeDefined();
    expect(await monitorExists(id!)).toBe(true);

    const emitted = await fetch(`${emu.httpUrl}/_emulator/emit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ monitorId: Number(id), count: 3 }),
    });
    expect(emitted.ok).toBe(true);
    await until(() => (out.match(/^Data Received \{$/gm) ?? []).length >= 3, { timeoutMs: 10_000, what: "3 records printed" });
    // json.dumps(sort_keys=True, indent=4) of {"Document": {"Msg": {...}}}
    expect(out).toMatch(/^Data Received \{\n {4}"Document": \{\n {8}"Msg": \{\n/m);

    stop.abort();
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Closing Sessions and Cleaning Up.");
    expect(r.stdout).toContain("Done (3 events)");
    await until(async () => !(await monitorExists(id!)), { timeoutMs: 5_000, what: "the monitor deleted at the platform" });
  }, 30_000);
});

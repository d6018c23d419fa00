import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EndpointKind, OmfAction, OmfMessageType, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { type RunningOmfEmulator, startOmfEmulator } from "@meridian/emulator-omf";
import { OMF_CONTAINERS_JSON, OMF_DATA_JSON, OMF_TYPES_JSON, SEED_POINTS } from "@meridian/fixtures/omf-seed";
import { type OmfSender, omfSenderConfig, startOmfSender } from "@meridian/omf-sender";
import { type NatsServerHandle, startForTest, startNatsServer, testCredential, testLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerOmf } from "../src/commands/omf.js";
import { runVerb } from "../src/commands/testdata/harness.js";
import { EXIT } from "../src/kit/exit.js";

/**
 * The OMF seed's program.py and test.py as `meridian omf send` and `omf verify`, against the real omf-sender and the OMF
 * emulator as PI Web API and as Edge Data Store: the seed's own files sent, verify passes; a value changed at the
 * endpoint afterwards (an OMF update of the last event with another value) fails verify, naming the point; cleanup
 * leaves nothing. The CLI talks Connect to omf-sender directly (the gateway proxies the same paths).
 */
let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startOmfEmulator();
  sender = await startForTest(
    startOmfSender,
    omfSenderConfig,
    {
      NATS_URL: nats.url,
      OMF_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
      OMF_ALLOWED_HOSTS: "127.0.0.1",
      OMF_LINGER_MS: "50",
    },
    {},
    testLogger(),
  );
  dir = mkdtempSync(join(tmpdir(), "meridian-cli-omf-"));
  writeFileSync(join(dir, "OMF-Types.json"), OMF_TYPES_JSON);
  writeFileSync(join(dir, "OMF-Containers.json"), OMF_CONTAINERS_JSON);
  writeFileSync(join(dir, "OMF-Data.json"), OMF_DATA_JSON);
}, 60_000);
afterAll(async () => {
  await sender?.stop();
  await emu?.stop();
  await nats?.stop();
});

const transport = () => createConnectTransport({ baseUrl: sender.service.url, httpVersion: "1.1", interceptors: [testCredential()] });
const run = (args: string[], format: "table" | "json" = "table") => runVerb(registerOmf, transport(), args, { format });
const files = () => ["OMF-Types.json", "OMF-Containers.json", "OMF-Data.json"].map((f) => join(dir, f));

describe("meridian omf send / verify / cleanup with the seed's files", () => {
  it("PI Web API: send passes, verify passes, a changed value fails verify naming the point, cleanup leaves nothing", async () => {
    const created = await run([
      "omf",
      "endpoints",
      "create",
      "seed-pi",
      "--kind",
      "pi",
      "--url",
      `${emu.url}/piwebapi`,
      "--allow-http",
      "--username",
      "meridian",
      "--secret-file",
      secretFile("meridian"),
      "--data-server-name",
      "MERIDIAN-PI",
      "--omf-version",
      "1.1",
    ]);
    expect(created.error).toBeUndefined();
    expect(created.stdout).toMatch(/Secret stored:\s+true/);

    const record = join(dir, "sent-pi.json");
    const sent = await run(["omf", "send", "-e", "seed-pi", "--iterations", "2", "--interval", "0.2", "--record", record, ...files()]);
    expect(sent.error).toBeUndefined();
    expect(sent.code).toBe(0);

    const verifyFiles = [join(dir, "OMF-Types.json"), join(dir, "OMF-Containers.json"), record];
    const ok = await run(["omf", "verify", "-e", "seed-pi", ...verifyFiles], "json");
    expect(ok.error).toBeUndefined();
    const verified = JSON.parse(ok.stdout) as { checks: Array<{ what: string; name: string; ok: boolean }>; passed: boolean };
    expect(verified.passed).toBe(true);
    const checks = verified.checks;
    expect(
      checks
        .filter((c) => c.what === "point")
        .map((c) => c.name)
        .sort(),
    ).toEqual([...SEED_POINTS].sort());
    expect(checks.every((c) => c.ok)).toBe(true);

    // Change the last value of one point at PI: the same index, another value. An OMF data update replaces it; PI Web API
    // takes one only in OMF 1.2, so through a second endpoint at the same PI speaking 1.2 (the seed speaks 1.1).
    const api = createClient(OmfSenderService, transport());
    await api.createEndpoint({
      endpoint: {
        id: "tamper-pi",
        kind: EndpointKind.PI,
        url: `${emu.url}/piwebapi`,
        allowHttp: true,
        username: "meridian",
        secret: "meridian",
        omfVersion: "1.2",
      },
    });
    const last = JSON.parse(
      (await api.readValues({ endpointId: "seed-pi", point: "ThirdContainer.NumberProperty1", last: true })).values[0]!.valueJson,
    ) as number;
    const recorded = readFileSync(record, "utf8");
    const third = (
      JSON.parse(recorded) as Array<{
        messagetype: string;
        messages: Array<{ containerid?: string; values?: Array<Record<string, unknown>> }>;
      }>
    )
      .find((g) => g.messagetype === "data")!
      .messages.find((m) => m.containerid === "ThirdContainer")!.values![0]!;
    expect(last).toBe(third.NumberProperty1);
    const tamper = await api.sendOmf({
      messageType: OmfMessageType.DATA,
      action: OmfAction.UPDATE,
      body: JSON.stringify([{ containerid: "ThirdContainer", values: [{ ...third, NumberProperty1: -12.5 }] }]),
      endpointIds: ["tamper-pi"],
    });
    expect(tamper.results[0]?.ok, tamper.results[0]?.error).toBe(true);

    const bad = await run(["omf", "verify", "-e", "seed-pi", ...verifyFiles]);
    expect(bad.code).toBe(EXIT.failed);
    expect(bad.error).toContain(`ThirdContainer.NumberProperty1: expected ${JSON.stringify(third.NumberProperty1)}, found -12.5`);
    expect(bad.error).not.toContain("NumberProperty2");

    const clean = await run(["omf", "cleanup", "-e", "seed-pi"]);
    expect(clean.error).toBeUndefined();
    expect((await api.listPoints({ endpointId: "seed-pi", nameFilter: "*Container*" })).points).toEqual([]);
  }, 60_000);

  it("Edge Data Store: send and verify pass; a stream deleted at the endpoint is named", async () => {
    expect((await run(["omf", "endpoints", "create", "seed-eds", "--kind", "eds", "--url", emu.url, "--omf-version", "1.1"])).code).toBe(0);
    const record = join(dir, "sent-eds.json");
    expect(
      (await run(["omf", "send", "-e", "seed-eds", "--iterations", "2", "--interval", "0.2", "--record", record, ...files()])).code,
    ).toBe(0);
    const verifyFiles = [join(dir, "OMF-Types.json"), join(dir, "OMF-Containers.json"), record];
    // EDS answers 202 and stores asynchronously: wait until the read-back sees it.
    let ok = await run(["omf", "verify", "-e", "seed-eds", ...verifyFiles]);
    for (let i = 0; i < 20 && ok.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      ok = await run(["omf", "verify", "-e", "seed-eds", ...verifyFiles]);
    }
    expect(ok.error).toBeUndefined();
    expect(ok.stdout).toMatch(/value\s+FourthContainer\.IntegerEnum\s+ok/);

    await fetch(`${emu.url}/api/v1/tenants/default/namespaces/default/Streams/SecondContainer`, { method: "DELETE" });
    const bad = await run(["omf", "verify", "-e", "seed-eds", ...verifyFiles]);
    expect(bad.code).toBe(EXIT.failed);
    expect(bad.error).toContain("container SecondContainer: not found");
    expect((await run(["omf", "cleanup", "-e", "seed-eds"])).code).toBe(0);
  }, 60_000);
});

function secretFile(secret: string): string {
  const p = join(dir, `secret-${randomBytes(4).toString("hex")}`);
  writeFileSync(p, `${secret}\n`);
  return p;
}

import { execFile } from "node:child_process";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliCases } from "./cli-cases.js";
import { REPO_ROOT, untilUp } from "./harness.js";

/**
 * The README's first command: `docker compose up` brings the whole stack up and data flows into PI with no
 * account. Runs the real docker-compose.yml (v1 `docker-compose` here, `docker compose` v2 elsewhere) with images
 * built from the host's build output (MERIDIAN_BUILD_TARGET=prebuilt), as a registry-less machine must.
 */
const PROJECT = `meridian-compose-test-${process.pid}`;

function run(cmd: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      cmd[0]!,
      cmd.slice(1),
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => (err ? reject(new Error(`${cmd.join(" ")}: ${stderr || err.message}`)) : resolve(stdout)),
    ),
  );
}

async function composeCommand(): Promise<string[]> {
  try {
    await run(["docker-compose", "version"]);
    return ["docker-compose"];
  } catch {
    return ["docker", "compose"];
  }
}

describe("system: docker compose up", () => {
  let compose: string[];
  const env = { MERIDIAN_BUILD_TARGET: "prebuilt", LOG_LEVEL: "warn" };

  beforeAll(async () => {
    compose = [...(await composeCommand()), "-p", PROJECT];
    await run([...compose, "up", "-d", "--build"], env);
  });
  afterAll(async () => {
    await run([...compose, "down", "-v", "--remove-orphans"], env).catch(() => {});
  });

  it("starts every service and puts the iDigi emulator's DataPoints into the PI emulator, with no setup", async () => {
    const started = Date.now();
    let values = 0;
    await untilUp(
      "values in the PI emulator",
      async () => {
        const res = await fetch("http://127.0.0.1:8443/_emulator/state?scope=pi&values=false");
        values = ((await res.json()) as { scopes: { pi: { valueCount: number } } }).scopes.pi.valueCount;
        return values > 0;
      },
      120_000,
    );
    console.log(JSON.stringify({ composeFirstPiValueAfterSeconds: (Date.now() - started) / 1000 }));

    // Authentication is on with no setup: the development key was printed once and is where the README says.
    const key = (await run([...compose, "exec", "-T", "gateway", "cat", "/run/meridian/auth/dev-api-key"], env)).trim();
    expect(key).toMatch(/^mrd_[0-9a-f]{12}_/);
    const initLog = await run([...compose, "logs", "--no-color", "auth-init"], env);
    expect(initLog.split(key).length - 1).toBe(1);
    const refused = await fetch("http://127.0.0.1:8080/meridian.status.v1.StatusService/GetStatus", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(refused.status).toBe(401);
    const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };

    // The gateway fronts every service and reports the route's counters.
    const status = await fetch("http://127.0.0.1:8080/meridian.status.v1.StatusService/GetStatus", {
      method: "POST",
      headers,
      body: "{}",
    });
    const body = (await status.json()) as { services: Array<{ service: string; health: string; pipelines?: Array<{ name: string }> }> };
    expect(body.services.map((s) => s.service).sort()).toEqual(expect.arrayContaining(["gateway", "idigi-listener", "omf-sender"]));
    const sessions = await fetch("http://127.0.0.1:8080/meridian.idigi.v1.IdigiListenerService/ListSessions", {
      method: "POST",
      headers,
      body: "{}",
    });
    expect(((await sessions.json()) as { sessions: Array<{ state: string }> }).sessions[0]?.state).toBe("SESSION_STATE_CONNECTED");

    // The quick start can store credentials sent through the API (compose sets a development key), and the secret
    // never comes back.
    const created = await fetch("http://127.0.0.1:8080/meridian.omf.v1.OmfSenderService/CreateEndpoint", {
      method: "POST",
      headers,
      body: JSON.stringify({
        endpoint: {
          id: "pi-from-api",
          kind: "ENDPOINT_KIND_PI",
          url: "http://omf-emulator:8443/piwebapi",
          allowHttp: true,
          username: "meridian",
          secret: "meridian",
        },
      }),
    });
    const createdText = await created.text();
    expect(created.status, createdText).toBe(200);
    expect(createdText).not.toContain('"secret"');
    const check = await fetch("http://127.0.0.1:8080/meridian.omf.v1.OmfSenderService/CheckEndpoint", {
      method: "POST",
      headers,
      body: JSON.stringify({ id: "pi-from-api" }),
    });
    expect(await check.json()).toMatchObject({ reachable: true, authenticated: true });
  });

  it("puts the Omnia emulator's series into the PI emulator through omnia-reader, each value at its timestamp as Omnia holds it", async () => {
    const key = (await run([...compose, "exec", "-T", "gateway", "cat", "/run/meridian/auth/dev-api-key"], env)).trim();
    const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };
    type Container = { definition: { name?: string }; values?: Array<Record<string, unknown>> };
    const omniaContainers = async () => {
      const res = await fetch("http://127.0.0.1:8443/_emulator/state?scope=pi");
      const containers = ((await res.json()) as { scopes: { pi: { containers: Record<string, Container> } } }).scopes.pi.containers;
      return Object.values(containers).filter((c) => String(c.definition.name ?? "").startsWith("omnia-emulator-jsv/"));
    };
    // The compose reader starts at "now" and reads 30 s behind it: live points reach PI within about a minute.
    await untilUp(
      "Omnia values in the PI emulator",
      async () => (await omniaContainers()).some((c) => (c.values?.length ?? 0) >= 2),
      180_000,
    );

    let checked = 0;
    for (const container of await omniaContainers()) {
      const seriesId = String(container.definition.name).slice("omnia-emulator-jsv/".length);
      const values = (container.values ?? []).map((v) => {
        const time = Date.parse(String(v.timestamp ?? v.Timestamp));
        const value = Object.entries(v).find(([k, x]) => typeof x === "number" && k.toLowerCase() !== "timestamp")?.[1] as number;
        return { time, value };
      });
      if (values.length === 0) continue;
      const from = Math.min(...values.map((v) => v.time));
      const to = Math.max(...values.map((v) => v.time)) + 1;
      // What Omnia holds for the series over the same span, asked through the gateway (the seed's get-data verb).
      const res = await fetch("http://127.0.0.1:8080/meridian.omnia.v1.OmniaReaderService/GetData", {
        method: "POST",
        headers,
        body: JSON.stringify({ id: seriesId, startTime: new Date(from).toISOString(), endTime: new Date(to).toISOString(), limit: 100000 }),
      });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      const inOmnia = new Map(
        ((JSON.parse(text) as { data?: { datapoints?: Array<{ time: string; value?: number }> } }).data?.datapoints ?? []).map((d) => [
          Date.parse(d.time),
          d.value ?? 0,
        ]),
      );
      for (const v of values) {
        expect(inOmnia.has(v.time), `series ${seriesId} has a point at ${new Date(v.time).toISOString()}`).toBe(true);
        expect(v.value, `series ${seriesId} at ${new Date(v.time).toISOString()}`).toBeCloseTo(inOmnia.get(v.time)!, 9);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2);
    console.log(JSON.stringify({ composeOmniaValuesCheckedInPi: checked }));
  });
  it("shows the iDigi emulator's devices as IoT Central devices in the IoT Central emulator, their values arriving, with no setup", async () => {
    // The emulated application's REST API, as a user of IoT Central calls it: its CA from the emulator's volume, its
    // development API token from docker-compose.yml.
    const ca = await run([...compose, "exec", "-T", "iotc-emulator", "cat", "/run/meridian/iotc-ca/ca.pem"], env);
    const token = /IOTC_EMULATOR_API_TOKEN: "([^"]+)"/.exec(await run(["cat", "docker-compose.yml"]))![1]!;
    const api = (path: string) =>
      new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const req = request(
          `https://127.0.0.1:8446${path}${path.includes("?") ? "&" : "?"}api-version=2022-07-31`,
          { ca, headers: { authorization: token } },
          (res) => {
            let text = "";
            res.on("data", (c) => (text += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
          },
        );
        req.on("error", reject);
        req.end();
      });
    type IotcDevice = { id: string; provisioned?: boolean };
    let devices: IotcDevice[] = [];
    // The route names each iDigi device {connection}-{device}: the monitor's id, then the device id.
    await untilUp(
      "iDigi devices in the IoT Central emulator",
      async () => {
        const res = await api("/api/devices");
        devices = res.status === 200 ? ((res.body as { value: IotcDevice[] }).value ?? []) : [];
        return devices.filter((d) => d.provisioned).length >= 3;
      },
      120_000,
    );
    // A value of each device: the last telemetry value IoT Central holds of one of the streams the iDigi emulator emits.
    let withValues = 0;
    for (const device of devices.filter((d) => d.provisioned)) {
      const props = await api(`/api/devices/${encodeURIComponent(device.id)}`);
      expect(props.status).toBe(200);
      const telemetry = await (async () => {
        for (const name of ["temperature", "humidity", "pressure"]) {
          const res = await api(`/api/devices/${encodeURIComponent(device.id)}/telemetry/${name}`);
          if (res.status === 200) return res.body as { timestamp: string; value: unknown };
        }
        return undefined;
      })();
      if (telemetry) withValues++;
    }
    console.log(JSON.stringify({ composeIotcDevices: devices.map((d) => d.id), composeIotcDevicesWithValues: withValues }));
    expect(withValues).toBeGreaterThan(0);
  });

  it("creates the OCI twin m5-env-01 in the OCI emulator and puts its historized data into the PI emulator, each value as ORDS holds it", async () => {
    const key = (await run([...compose, "exec", "-T", "gateway", "cat", "/run/meridian/auth/dev-api-key"], env)).trim();
    const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };
    const call = async (method: string, body: unknown) => {
      const res = await fetch(`http://127.0.0.1:8080/meridian.oci.v1.OciTwinManagerService/${method}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      const text = await res.text();
      expect(res.status, `${method}: ${text}`).toBe(200);
      return JSON.parse(text) as Record<string, unknown>;
    };
    // The route oci-to-pi: the twin's events are in PI under {connection}/{device}, the emulator's IoT domain and the
    // external key of the device it simulates (docker-compose.yml).
    const composeText = await run(["cat", "docker-compose.yml"]);
    const domainId = /&oci-domain-id (\S+)/.exec(composeText)![1]!;
    const externalKey = /OCI_EMU_SIMULATE: (\S+)/.exec(composeText)![1]!;
    const containerName = `${domainId}/${externalKey}`;
    type Container = { definition: { name?: string }; values?: Array<Record<string, unknown>> };
    const ociContainers = async () => {
      const res = await fetch("http://127.0.0.1:8443/_emulator/state?scope=pi");
      const containers = ((await res.json()) as { scopes: { pi: { containers: Record<string, Container> } } }).scopes.pi.containers;
      return Object.values(containers).filter((c) => c.definition.name === containerName);
    };
    // The simulated device posts every 2 s once oci-twin-manager created the twin; the source polls ORDS every 5 s.
    await untilUp(
      "the OCI twin's values in the PI emulator",
      async () => (await ociContainers()).some((c) => (c.values?.length ?? 0) >= 2),
      180_000,
    );

    const values = (await ociContainers())
      .flatMap((c) => c.values ?? [])
      .filter((v) => typeof v.sht_temperature === "number")
      .map((v) => ({ time: Date.parse(String(v.timestamp ?? v.Timestamp)), value: v.sht_temperature as number }));
    expect(values.length).toBeGreaterThanOrEqual(2);
    const from = Math.min(...values.map((v) => v.time));
    const to = Math.max(...values.map((v) => v.time)) + 1;
    // What the twin's historized data set holds over the same span, asked through the gateway (manage-dt's query).
    const data = await call("QueryTwinData", {
      twin: { key: "m5-env-01" },
      dataSet: "TWIN_DATA_SET_HISTORIZED",
      startTime: new Date(from).toISOString(),
      endTime: new Date(to + 1000).toISOString(),
      contentPaths: ["sht_temperature"],
      limit: 500,
      ascending: true,
    });
    const rows = (data.rows as Array<{ time_observed: string; value: number }> | undefined) ?? [];
    const inOrds = new Map(rows.map((r) => [Date.parse(r.time_observed), r.value]));
    for (const v of values) {
      expect(inOrds.has(v.time), `a historized row at ${new Date(v.time).toISOString()}`).toBe(true);
      expect(v.value, new Date(v.time).toISOString()).toBeCloseTo(inOrds.get(v.time)!, 9);
    }
    // The twin as Meridian knows it: manage-dt's custom-adapter kind, its device, and the device secret of the file.
    const twin = (await call("GetTwin", { twin: { key: "m5-env-01" } })).twin as Record<string, unknown>;
    expect(twin).toMatchObject({
      key: "m5-env-01",
      iotDomainId: domainId,
      kind: "TWIN_KIND_CUSTOM_ADAPTER",
      deviceSecretSet: true,
      instance: { externalKey },
    });
    console.log(JSON.stringify({ composeOciValuesCheckedInPi: values.length }));
  });

  // Every verb of the meridian CLI on this same stack (one stack for both: CI time).
  cliCases(() => ({ compose, env }));
});

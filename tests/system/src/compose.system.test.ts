import { execFile } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
});

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_KEYS, testIdentitiesFile } from "@meridian/testing";
import { Network, type StartedNetwork, type StartedTestContainer } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, imageTag, NODE_IMAGE, natsLogin, REPO_ROOT, serviceImage, startNats, untilUp } from "./harness.js";

/**
 * What an image holds, read from the image itself: only what runs (Dockerfile, scripts/runtime-files.mjs). The images
 * are the ones every system test runs, target `prebuilt`, whose build context holds the host's whole install with its
 * devDependencies, tests and test keys: the hardest case for leaving them out.
 */
const SERVICES = [
  "services/gateway",
  "services/omf-sender",
  "services/idigi-listener",
  "services/iotc-bridge",
  "services/oci-twin-manager",
];
const EMULATORS = ["emulators/omf", "emulators/idigi", "emulators/iotc", "emulators/oci"];

/** What the image adds to the base image. Everything it needs is about 6–9 MB; the whole tree (COPY . .) was ~95 MB. */
const MAX_ADDED_BYTES = 40 * 1024 * 1024;

/**
 * A PEM private key: the BEGIN line, the headers of an encrypted key if any, then base64. A library that only names
 * the header in its code (jose checks that a PKCS#8 string starts with it) holds no key.
 */
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n(?:[A-Za-z-]+:[^\n]*\n)*\s*[A-Za-z0-9+/=]{40,}/;

/** Prints, as JSON, the files under a folder that hold a private key. Runs with the image's own node. */
const KEY_SCAN = `
const fs = require("node:fs"), path = require("node:path");
const [pattern, top] = process.argv.slice(1);
const pem = new RegExp(pattern), hits = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.isFile() && pem.test(fs.readFileSync(p, "latin1"))) hits.push(p);
  }
})(top);
console.log(JSON.stringify(hits));`;

/**
 * What the checks read inside an image, from one container run as the image's user: a `docker run` costs about half a
 * second, and five of them per image were most of this file's time after the builds. Each command's output follows a
 * line `@@ <name>` (no path starts with @); a command that fails leaves its section empty, which fails its check.
 */
const PROBE = [
  'echo "@@ paths"; find /app',
  'echo "@@ dirs"; find /app -type d',
  'echo "@@ load"; node --input-type=module -e "$LOAD"',
  'echo "@@ keys"; node -e "$KEY_SCAN" -- "$PEM" /app',
  'echo "@@ writable"; find /app -writable',
].join("; ");

/** The sections of PROBE's output by name, each its lines. */
function sections(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of lines(text)) {
    const marker = /^@@ (\w+)$/.exec(line);
    if (marker?.[1]) {
      current = [];
      found.set(marker[1], current);
    } else current.push(line);
  }
  return found;
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.length > 0);
}

function manifest(path: string): { dependencies?: Record<string, string>; devDependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(path, "utf8"));
}

async function imageBytes(image: string): Promise<number> {
  return Number((await docker("image", "inspect", "--format", "{{.Size}}", image)).trim());
}

describe("system: the private key scan of the image tests", () => {
  it("finds the test PKI's key and passes over a library that only names the PEM header", async () => {
    const testdata = join(REPO_ROOT, "libs", "testing", "testdata");
    expect(PRIVATE_KEY_PEM.test(readFileSync(join(testdata, "server-key.pem"), "utf8"))).toBe(true);
    expect(PRIVATE_KEY_PEM.test(readFileSync(join(testdata, "server-cert.pem"), "utf8"))).toBe(false);
    expect(PRIVATE_KEY_PEM.test('if (pkcs8.indexOf("-----BEGIN PRIVATE KEY-----") !== 0)')).toBe(false);
    const found = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["-e", KEY_SCAN, "--", PRIVATE_KEY_PEM.source, testdata], (err, out) =>
        err ? reject(err) : resolve(out),
      ),
    );
    expect(JSON.parse(found)).toEqual([join(testdata, "server-key.pem")]);
  });
});

describe.each([...SERVICES, ...EMULATORS])("system: the image of %s holds only what runs", (folder) => {
  const tag = imageTag(folder);
  let paths: string[] = [];
  let dirs = new Set<string>();
  let probe = new Map<string, string[]>();

  beforeAll(async () => {
    await serviceImage(folder);
    // index.js exports the starter without starting it; importing it loads every module main.js would.
    const load = `try { await import("/app/${folder}/dist/index.js"); console.log("loaded") } catch (e) { console.log(e.message) }`;
    const env = { LOAD: load, KEY_SCAN, PEM: PRIVATE_KEY_PEM.source };
    const vars = Object.entries(env).flatMap(([name, value]) => ["-e", `${name}=${value}`]);
    probe = sections(await docker("run", "--rm", ...vars, "--entrypoint", "sh", tag, "-c", PROBE));
    paths = probe.get("paths") ?? [];
    dirs = new Set(probe.get("dirs") ?? []);
  });

  it("holds the package's dist/main.js (the CMD) and the health check", () => {
    expect(paths).toContain(`/app/${folder}/dist/main.js`);
    expect(paths).toContain("/app/scripts/healthcheck.mjs");
  });

  it("loads its modules with the image's node: every package its code imports is in the image (a dependencies entry)", () => {
    expect(probe.get("load")?.join("\n")).toBe("loaded");
  });

  it("holds no test file and no test, tests, __tests__ or testdata folder", () => {
    expect(paths.filter((p) => /\.(test|spec)\.[cm]?[jt]sx?$/.test(p) || /\/tests?\.[cm]?js$/.test(p))).toEqual([]);
    expect([...dirs].filter((d) => /\/(test|tests|__tests__|testdata)$/.test(d))).toEqual([]);
  });

  it("holds no TypeScript: no .ts file (sources or declarations) and no src folder of a workspace package", () => {
    expect(paths.filter((p) => /\.[cm]?tsx?$/.test(p))).toEqual([]);
    expect([...dirs].filter((d) => /^\/app\/(libs|services|emulators|tests)\/[^/]+\/src$/.test(d))).toEqual([]);
  });

  it("holds no private key: no *.key file and no PEM private key in any file", () => {
    expect(paths.filter((p) => /\.key$/i.test(p))).toEqual([]);
    expect(JSON.parse(probe.get("keys")?.join("\n") ?? "")).toEqual([]);
  });

  it("holds no other package's emulator, no test package and, in a service image, not the emulator kit", () => {
    const own = (p: string) => p === `/app/${folder}` || p.startsWith(`/app/${folder}/`);
    expect(paths.filter((p) => p.startsWith("/app/emulators/") && !own(p))).toEqual([]);
    expect(
      paths.filter((p) => /^\/app\/node_modules\/@meridian\/(emulator-(?!kit)|testing|fixtures|bench|system-tests|deploy-tests)/.test(p)),
    ).toEqual([]);
    expect(paths.filter((p) => p.startsWith("/app/tests/") || p.startsWith("/app/libs/testing"))).toEqual([]);
    if (folder.startsWith("services/")) {
      expect(paths.filter((p) => p.startsWith("/app/libs/emulator-kit") || p.endsWith("/node_modules/@meridian/emulator-kit"))).toEqual([]);
    }
  });

  it("holds none of its own or the root's devDependencies that no package in the image depends on", () => {
    const inImage = paths.filter((p) => /^\/app\/(libs|services|emulators)\/[^/]+\/package\.json$/.test(p));
    const needed = new Set(inImage.flatMap((p) => Object.keys(manifest(join(REPO_ROOT, p.slice("/app/".length))).dependencies ?? {})));
    const dev = [
      ...Object.keys(manifest(join(REPO_ROOT, "package.json")).devDependencies ?? {}),
      ...Object.keys(manifest(join(REPO_ROOT, folder, "package.json")).devDependencies ?? {}),
    ].filter((name) => !needed.has(name));
    expect(dev.length).toBeGreaterThan(0);
    expect(dev.filter((name) => paths.some((p) => p.endsWith(`/node_modules/${name}`)))).toEqual([]);
  });

  it("lets the user it runs as write nothing under /app", async () => {
    const inspect = JSON.parse(await docker("image", "inspect", tag)) as Array<{ Config: { User: string } }>;
    expect(inspect[0]?.Config.User).toBe("1000:1000");
    expect(probe.get("writable")).toEqual([]);
  });

  it(`adds at most ${MAX_ADDED_BYTES / 1048576} MB to the base image`, async () => {
    const [image, base] = [await imageBytes(tag), await imageBytes(NODE_IMAGE)];
    console.log(JSON.stringify({ image: folder, imageMB: +(image / 1e6).toFixed(1), addedMB: +((image - base) / 1e6).toFixed(1) }));
    expect(image - base).toBeLessThanOrEqual(MAX_ADDED_BYTES);
  });
});

describe("system: the gateway image starts with a read-only root file system", () => {
  const tag = imageTag("services/gateway");
  let network: StartedNetwork;
  let nats: StartedTestContainer;
  let id = "";

  beforeAll(async () => {
    await serviceImage("services/gateway");
    network = await new Network().start();
    nats = await startNats(network);
  });
  afterAll(async () => {
    if (id) await docker("rm", "-f", id).catch(() => {});
    await nats?.stop();
    await network?.stop();
  });

  it("answers /readyz and turns healthy, as its own non-root user, with every capability dropped", async () => {
    const run = [
      ...["run", "-d", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--network", network.getName()],
      // The only file it reads is mounted read-only, as a deployment mounts its secrets.
      ...["-v", `${testIdentitiesFile()}:/etc/meridian/identities.json:ro`, "-e", "AUTH_IDENTITIES_FILE=/etc/meridian/identities.json"],
      ...Object.entries(natsLogin("services/gateway")).flatMap(([name, value]) => ["-e", `${name}=${value}`]),
      ...["-e", "NATS_URL=nats://nats:4222", "-e", "PORT=8080", "-p", "127.0.0.1::8080", tag],
    ];
    id = (await docker(...run)).trim();
    try {
      const address = lines(await docker("port", id, "8080/tcp"))[0];
      await untilUp(
        "the gateway's /readyz from the read-only image",
        async () => (await fetch(`http://${address}/readyz`)).status === 200,
        90_000,
      );
      await untilUp(
        "the image's HEALTHCHECK reports healthy",
        async () => (await docker("inspect", "--format", "{{.State.Health.Status}}", id)).trim() === "healthy",
        90_000,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\ncontainer log:\n${await docker("logs", "--tail", "20", id).catch(() => "")}`);
    }
    expect((await docker("exec", id, "id", "-u")).trim()).toBe("1000");
  });

  it("serves the built console at / from the image, its hashed assets cached, without a key", async () => {
    expect(id, "the container of the test above").not.toBe("");
    const address = lines(await docker("port", id, "8080/tcp"))[0];
    const page = await fetch(`http://${address}/routes`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, html).toBeDefined();
    const asset = await fetch(`http://${address}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });

  it("has the meridian CLI on PATH, reaching the gateway at its default URL inside the container", async () => {
    expect(id, "the container of the test above").not.toBe("");
    expect((await docker("exec", id, "meridian", "--version")).trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const status = await docker("exec", "-e", `MERIDIAN_API_KEY=${TEST_KEYS["status:read"]}`, id, "meridian", "status", "-o", "json");
    expect(JSON.parse(status).streams.map((s: { name: string }) => s.name)).toContain("TELEMETRY");
  });
});

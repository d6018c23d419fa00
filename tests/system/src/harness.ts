import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { testIdentities, until } from "@meridian/testing";
import { GenericContainer, type StartedNetwork, type StartedTestContainer, Wait } from "testcontainers";
import { inject } from "vitest";

/** The repository root: the Docker build context of every image. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Base images: local stand-ins when the machine has no registry, the public ones otherwise. */
export const NODE_IMAGE = process.env.MERIDIAN_NODE_IMAGE ?? "node:24-bookworm-slim";
export const NATS_IMAGE = process.env.MERIDIAN_NATS_IMAGE ?? "nats:2.10-alpine";

const built = new Map<string, Promise<GenericContainer>>();

/** The tag serviceImage gives the image of a package folder, for the docker CLI. */
export function imageTag(folder: string): string {
  return `meridian-system/${folder.replace(/[^a-z0-9]+/g, "-")}:test`;
}

/**
 * Builds the image of one package folder (services/gateway, emulators/omf, ...) from the
 * repository's Dockerfile, target `prebuilt`: the JavaScript built on the host by `npm run build`
 * is copied in, so no registry is needed. Built once per test run: a file takes the image an earlier
 * file of the same run built (its marker in images-setup.ts's folder) instead of sending the build
 * context again. A build that fails leaves no marker, so the next file tries again.
 */
export function serviceImage(folder: string): Promise<GenericContainer> {
  let image = built.get(folder);
  if (!image) {
    const tag = imageTag(folder);
    const dir = inject("builtImagesDir");
    const marker = dir ? join(dir, tag.replace(/[^a-z0-9-]+/g, "_")) : undefined;
    image =
      marker && existsSync(marker)
        ? Promise.resolve(new GenericContainer(tag))
        : // The docker CLI, not testcontainers' builder: the same build, but its context step takes ~9 s where
          // testcontainers' (a .dockerignore of ~300 patterns matched in JavaScript over the whole tree) took ~17 s.
          docker(
            "build",
            "--quiet",
            "--target",
            "prebuilt",
            "--build-arg",
            `NODE_IMAGE=${NODE_IMAGE}`,
            "--build-arg",
            `SERVICE=${folder}`,
            "--tag",
            tag,
            REPO_ROOT,
          ).then(() => {
            if (marker) writeFileSync(marker, `${new Date().toISOString()}\n`);
            return new GenericContainer(tag);
          });
    built.set(folder, image);
  }
  return image;
}

/** The NATS users of the deployments (deploy/compose/nats-users.conf), with passwords for the tests only. */
export const NATS_USERS = {
  gateway: { password: "system-test-gateway", env: "NATS_GATEWAY_PASSWORD" },
  "omf-sender": { password: "system-test-omf-sender", env: "NATS_OMF_SENDER_PASSWORD" },
  "idigi-listener": { password: "system-test-idigi-listener", env: "NATS_IDIGI_LISTENER_PASSWORD" },
  "omnia-reader": { password: "system-test-omnia-reader", env: "NATS_OMNIA_READER_PASSWORD" },
  "iotc-bridge": { password: "system-test-iotc-bridge", env: "NATS_IOTC_BRIDGE_PASSWORD" },
  "oci-twin-manager": { password: "system-test-oci-twin-manager", env: "NATS_OCI_TWIN_MANAGER_PASSWORD" },
} as const;

/** NATS_USER and NATS_PASSWORD of a service (by folder, e.g. services/gateway) on the harness's NATS; none for others. */
export function natsLogin(folder: string): Record<string, string> {
  const user = folder.replace(/^services\//, "") as keyof typeof NATS_USERS;
  return folder.startsWith("services/") && NATS_USERS[user] ? { NATS_USER: user, NATS_PASSWORD: NATS_USERS[user].password } : {};
}

/**
 * A JetStream NATS server reachable as nats://nats:4222 on the network, configured as docker compose runs it
 * (deploy/compose/nats.conf): a user per service with its subject permissions, no client in without one. startService
 * logs each service in as its own user.
 */
export async function startNats(network: StartedNetwork, alias = "nats"): Promise<StartedTestContainer> {
  return new GenericContainer(NATS_IMAGE)
    .withNetwork(network)
    .withNetworkAliases(alias)
    .withCopyFilesToContainer(
      ["nats.conf", "nats-users.conf"].map((f) => ({ source: join(REPO_ROOT, "deploy", "compose", f), target: `/etc/nats/${f}` })),
    )
    .withEnvironment(Object.fromEntries(Object.values(NATS_USERS).map((u) => [u.env, u.password])))
    .withCommand(["--config", "/etc/nats/nats.conf"])
    .withLogConsumer(reportViolations)
    .withExposedPorts(4222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
}

/** A subject the permissions lack fails its service somewhere; the server's line says which user and subject. */
function reportViolations(stream: NodeJS.ReadableStream): void {
  stream.on("data", (line: string | Buffer) => {
    if (/Violation/.test(String(line))) console.warn(`nats: ${String(line).trim()}`);
  });
}

/** A file put into a container before it starts (a CA another container wrote, a secret). */
export interface ContainerFile {
  content: string;
  target: string;
}

/**
 * A Meridian service (or emulator) container, ready when `readyPath` answers 200 on `port`. A service given a NATS_URL
 * and no NATS_USER logs in to the harness's NATS as its own user (natsLogin). `files` are readable by the service's user.
 */
export async function startService(
  network: StartedNetwork,
  folder: string,
  alias: string,
  env: Record<string, string>,
  port = 8080,
  readyPath = "/readyz",
  extraPorts: number[] = [],
  files: ContainerFile[] = [],
): Promise<StartedTestContainer> {
  const image = await serviceImage(folder);
  // Services authenticate every call: they trust the test identities (TEST_KEYS), mounted as a file, unless told otherwise.
  const service = folder.startsWith("services/");
  const auth: Record<string, string> =
    service && !env.AUTH_MODE && !env.AUTH_IDENTITIES_FILE ? { AUTH_IDENTITIES_FILE: IDENTITIES_PATH } : {};
  return image
    .withNetwork(network)
    .withNetworkAliases(alias)
    .withCopyContentToContainer([
      ...(service ? [{ content: JSON.stringify(testIdentities()), target: IDENTITIES_PATH, mode: 0o444 }] : []),
      ...files.map((f) => ({ ...f, mode: 0o444 })),
    ])
    .withEnvironment({ PORT: String(port), ...(env.NATS_URL && !env.NATS_USER ? natsLogin(folder) : {}), ...auth, ...env })
    .withExposedPorts(port, ...extraPorts)
    .withWaitStrategy(Wait.forHttp(readyPath, port).forStatusCode(200))
    .withStartupTimeout(90_000)
    .start();
}

/** Where a service container finds the test identities file. */
const IDENTITIES_PATH = "/tmp/meridian-test-identities.json";

/** Runs the docker CLI against a started container: pause, unpause, kill, start, restart. */
export async function docker(...args: string[]): Promise<string> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) =>
    execFile("docker", args, (err, stdout, stderr) =>
      err ? reject(new Error(`docker ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

/** Everything a container wrote to stdout and stderr so far. */
export async function containerLogs(container: StartedTestContainer): Promise<string> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) =>
    execFile("docker", ["logs", container.getId()], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`docker logs: ${stderr || err.message}`)) : resolve(stdout + stderr),
    ),
  );
}

/** Containers take a while: by default wait two minutes, poll every 500 ms, and let a check fail while they start. */
export function untilUp(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  return until(check, { what, timeoutMs, intervalMs: 500, ignoreErrors: true });
}

export function baseUrl(container: StartedTestContainer, port = 8080): string {
  return `http://${container.getHost()}:${container.getMappedPort(port)}`;
}

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { until } from "@meridian/testing";
import { GenericContainer, type StartedNetwork, type StartedTestContainer, Wait } from "testcontainers";

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
 * is copied in, so no registry is needed. Built once per test run.
 */
export function serviceImage(folder: string): Promise<GenericContainer> {
  let image = built.get(folder);
  if (!image) {
    const tag = imageTag(folder);
    image = GenericContainer.fromDockerfile(REPO_ROOT)
      .withTarget("prebuilt")
      .withBuildArgs({ NODE_IMAGE, SERVICE: folder })
      .build(tag, { deleteOnExit: false });
    built.set(folder, image);
  }
  return image;
}

/** A JetStream NATS server reachable as nats://nats:4222 on the network. */
export async function startNats(network: StartedNetwork, alias = "nats"): Promise<StartedTestContainer> {
  return new GenericContainer(NATS_IMAGE)
    .withNetwork(network)
    .withNetworkAliases(alias)
    .withCommand(["--jetstream", "--store_dir=/data", "--http_port=8222"])
    .withExposedPorts(4222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
}

/** A Meridian service (or emulator) container, ready when `readyPath` answers 200 on `port`. */
export async function startService(
  network: StartedNetwork,
  folder: string,
  alias: string,
  env: Record<string, string>,
  port = 8080,
  readyPath = "/readyz",
  extraPorts: number[] = [],
): Promise<StartedTestContainer> {
  const image = await serviceImage(folder);
  return image
    .withNetwork(network)
    .withNetworkAliases(alias)
    .withEnvironment({ PORT: String(port), ...env })
    .withExposedPorts(port, ...extraPorts)
    .withWaitStrategy(Wait.forHttp(readyPath, port).forStatusCode(200))
    .withStartupTimeout(90_000)
    .start();
}

/** Runs the docker CLI against a started container: pause, unpause, kill, start, restart. */
export async function docker(...args: string[]): Promise<string> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) =>
    execFile("docker", args, (err, stdout, stderr) =>
      err ? reject(new Error(`docker ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
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

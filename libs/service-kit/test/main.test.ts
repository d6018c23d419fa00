import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { ConfigError } from "../src/config.js";
import { EXIT_CONFIG, packageVersion, runMain, serviceIdentity } from "../src/main.js";

class Exited extends Error {
  constructor(readonly code: number | undefined) {
    super(`exit ${code}`);
  }
}

afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.KIT_TEST_PORT;
});

function trapExit() {
  const stderr: string[] = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr.push(String(chunk));
    return true;
  });
  vi.spyOn(process, "exit").mockImplementation((code) => {
    throw new Exited(typeof code === "number" ? code : undefined);
  });
  return stderr;
}

const schema = z.object({ KIT_TEST_PORT: z.coerce.number().int().max(65535) });

describe("runMain", () => {
  it("exits 78 naming the bad setting before starting anything", async () => {
    process.env.KIT_TEST_PORT = "99999";
    const stderr = trapExit();
    const start = vi.fn(async () => {});
    await expect(runMain("kit-test", schema, start)).rejects.toEqual(new Exited(EXIT_CONFIG));
    expect(start).not.toHaveBeenCalled();
    expect(stderr.join("")).toContain("KIT_TEST_PORT");
  });

  it("exits 78 when the start itself finds a bad setting (a file it cannot read)", async () => {
    process.env.KIT_TEST_PORT = "8080";
    const stderr = trapExit();
    await expect(
      runMain("kit-test", schema, async () => {
        throw new ConfigError("KIT_FILE: cannot read /nope", ["KIT_FILE"]);
      }),
    ).rejects.toEqual(new Exited(78));
    expect(stderr.join("")).toContain("KIT_FILE: cannot read /nope");
  });

  it("passes the parsed settings to start", async () => {
    process.env.KIT_TEST_PORT = "8080";
    const start = vi.fn(async (_config: { KIT_TEST_PORT: number }) => {});
    await runMain("kit-test", schema, start);
    expect(start.mock.calls[0]?.[0]).toEqual({ KIT_TEST_PORT: 8080 });
  });
});

describe("version from package.json", () => {
  it("reads the version of the package a module belongs to", async () => {
    const { version } = (await import("../package.json", { with: { type: "json" } })).default;
    expect(packageVersion(import.meta.url)).toBe(version);
    expect(serviceIdentity("kit", import.meta.url)).toEqual({ name: "kit", version });
  });
});

/**
 * The Docker build context (.dockerignore): of the host's node_modules it holds the packages some image runs and no
 * others, so that each of the ~20 builds of a system test run sends ~80 MB instead of ~250 MB. The list is written by
 * scripts/image-context.mjs from scripts/runtime-files.mjs's own walk; a package an image needs and the context lacks
 * would fail that image's build, so a stale list fails here first, naming the package.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SCRIPT = join(ROOT, "scripts", "image-context.mjs");
const DOCKERIGNORE = readFileSync(join(ROOT, ".dockerignore"), "utf8");

function check(file?: string) {
  return spawnSync(process.execPath, [SCRIPT, "--check", ...(file ? [`--dockerignore=${file}`] : [])], { cwd: ROOT, encoding: "utf8" });
}

/** The check run on a copy of .dockerignore with one line edited. */
function checkEdited(line: string, replacement: string) {
  expect(DOCKERIGNORE).toContain(line);
  const file = join(mkdtempSync(join(tmpdir(), "image-context-")), ".dockerignore");
  writeFileSync(file, DOCKERIGNORE.replace(line, replacement));
  return check(file);
}

describe(".dockerignore: the installed packages the images run", () => {
  it("is the current list (node scripts/image-context.mjs writes it)", () => {
    const r = check();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("takes in every package the gateway image needs, the CLI's among them", () => {
    const needed = execFileSync(process.execPath, [join(ROOT, "scripts", "runtime-files.mjs"), "--list", "services/gateway", "cli"], {
      cwd: ROOT,
      encoding: "utf8",
    })
      .split("\n")
      .filter((l) => l.startsWith("node_modules/"));
    expect(needed).toContain("node_modules/nats");
    const lines = new Set(DOCKERIGNORE.split("\n"));
    for (const dir of needed) {
      const top = dir.split("/node_modules/")[0]!;
      expect(lines.has(`!${top}`), dir).toBe(true);
    }
  });

  it("leaves out the development tools and the bench's Node-RED", () => {
    for (const tool of ["typescript", "vitest", "@biomejs/biome", "node-red", "testcontainers"])
      expect(DOCKERIGNORE.split("\n").some((l) => l === `!node_modules/${tool}` || l.startsWith(`!node_modules/${tool}/`))).toBe(false);
  });

  it("fails the check naming the package, when a package an image needs is missing from the list", () => {
    const r = checkEdited("!node_modules/nats\n", "");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("missing !node_modules/nats");
  });

  it("fails the check when the list holds a package no image needs", () => {
    const r = checkEdited("!node_modules/nats\n", "!node_modules/nats\n!node_modules/typescript\n");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("not needed !node_modules/typescript");
  });
});

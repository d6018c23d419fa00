import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** A folder holding one marker per image serviceImage built in this test run (harness.ts). */
    builtImagesDir: string;
  }
}

/**
 * Vitest loads each test file on its own, so the harness's memo of built images lasts one file. Every file that
 * builds an image sends the whole build context (the runtime packages and dist, ~80 MB: .dockerignore) to the Docker
 * daemon even when every layer is cached: about 9 s an image on the CI machine, ~16 builds of the same 9 images a
 * run. This folder, one per run, lets a file take an image another file of the same run has built.
 */
export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), "meridian-system-images-"));
  project.provide("builtImagesDir", dir);
  return () => rmSync(dir, { recursive: true, force: true });
}

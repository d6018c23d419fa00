import { defineConfig } from "vitest/config";

// One test run over every workspace package; each package may add its own vitest.config.ts.
export default defineConfig({
  test: {
    projects: ["libs/*", "services/*", "emulators/*", "tests/*"],
  },
});

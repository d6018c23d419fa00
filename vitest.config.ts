import { defineConfig } from "vitest/config";

// One test run over every workspace package; each package's vitest.config.ts is made by vitest.shared.ts.
export default defineConfig({
  test: {
    projects: ["libs/*", "services/*", "emulators/*", "tests/*", "cli", "console"],
  },
});

import { defineConfig } from "@playwright/test";

/**
 * The browser tests: Debian's Chromium (no browser download is possible in CI), headless, one worker (CI machines
 * have two cores shared with the rest of the run), against the services started in-process by test/stack.ts.
 * Screenshots of every page land in test-results/screens (gitignored), kept by CI as artifacts.
 */
export default defineConfig({
  testDir: "test",
  testMatch: "*.spec.ts",
  outputDir: "test-results/output",
  globalSetup: "./test/stack.ts",
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox"] },
    screenshot: "only-on-failure",
    trace: "off",
  },
});

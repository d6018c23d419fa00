import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "@meridian/omf-sender",
    include: ["src/**/*.test.ts"],
    testTimeout: 15_000,
  },
});

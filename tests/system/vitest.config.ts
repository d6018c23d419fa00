import { defineProject } from "vitest/config";

// Containers take a while to build and start; these bounds are for hangs, not for performance.
export default defineProject({
  test: {
    name: "system",
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});

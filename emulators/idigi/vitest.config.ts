import { defineProject } from "vitest/config";

// Wire tests start real servers (RSA keys for TLS) and time batching; give slow CI machines room.
export default defineProject({
  test: {
    name: "@meridian/emulator-idigi",
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});

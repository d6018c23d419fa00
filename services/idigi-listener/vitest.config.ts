import { defineProject } from "vitest/config";

// Pipeline tests start nats-server and the iDigi emulator and wait for reconnects; give slow CI machines room.
export default defineProject({
  test: {
    name: "@meridian/idigi-listener",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

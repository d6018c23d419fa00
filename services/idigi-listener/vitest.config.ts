import { meridianProject } from "../../vitest.shared.js";

// Pipeline tests start nats-server and the iDigi emulator and wait for reconnects; give slow CI machines room.
export default meridianProject(import.meta.dirname, { testTimeout: 30_000, hookTimeout: 30_000 });

import { meridianProject } from "../../vitest.shared.js";

// Tests start emulators and nats-server; give slow CI machines room.
export default meridianProject(import.meta.dirname, { testTimeout: 30_000, hookTimeout: 30_000 });

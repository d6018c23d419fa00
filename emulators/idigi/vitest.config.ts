import { meridianProject } from "../../vitest.shared.js";

// Wire tests start real servers (RSA keys for TLS) and time batching; give slow CI machines room.
export default meridianProject(import.meta.dirname, { testTimeout: 20_000, hookTimeout: 30_000 });

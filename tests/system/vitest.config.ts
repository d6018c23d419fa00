import { meridianProject } from "../../vitest.shared.js";

// Containers take a while to build and start; these bounds are for hangs, not for performance.
export default meridianProject(import.meta.dirname, { testTimeout: 300_000, hookTimeout: 600_000 });

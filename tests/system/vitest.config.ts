import { meridianProject } from "../../vitest.shared.js";

// Containers take a while to build and start; these bounds are for hangs, not for performance.
// images-setup.ts lets every file of a run use the images the first file to need them built (harness.ts serviceImage).
export default meridianProject(import.meta.dirname, {
  testTimeout: 300_000,
  hookTimeout: 600_000,
  globalSetup: ["./src/images-setup.ts"],
});

import { meridianProject } from "../vitest.shared.js";

// Unit tests of the console's logic (src/**/*.test.ts); the browser tests in test/ run under Playwright (npm run test:browser).
export default meridianProject(import.meta.dirname, { include: ["src/**/*.test.ts"] });

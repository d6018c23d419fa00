import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defineProject, type UserWorkspaceConfig } from "vitest/config";

/**
 * Workspace packages resolve from their TypeScript source (the `@meridian/source` exports condition), so tests
 * run without a build and an edit in a library is seen at once by every package's tests.
 */
const conditions = ["@meridian/source", "import", "module", "node", "default"];

/**
 * A package's vitest project: named after the package, unit tests beside the code (`src/**`) and integration tests
 * in `test/`. `test` adds or overrides options (time bounds for tests that start servers, for example).
 */
export function meridianProject(dir: string, test: UserWorkspaceConfig["test"] = {}) {
  const { name } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string };
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions } },
    test: { name, include: ["src/**/*.test.ts", "test/**/*.test.ts"], ...test },
  });
}

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * Modules only some runs need, loaded on first use: the YAML parser (a profile file, -o yaml) and the table printer
 * (table output). Every verb pays its start-up; most runs need neither or one of them.
 */
export const lazy = {
  yaml: (): typeof import("yaml") => require("yaml"),
  table: (): typeof import("cli-table3") => require("cli-table3"),
};

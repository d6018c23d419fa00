import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/**
 * The objects `kubectl kustomize <path>` renders. kustomize wraps a long base64 Secret value (a certificate from a
 * file) over several lines, which the API server's decoder skips and the schema validator refuses: the newlines go.
 */
export function render<T = unknown>(path: string): T[] {
  const out = execFileSync("kubectl", ["kustomize", join(ROOT, path)], { encoding: "utf8" });
  return parseAllDocuments(out).map((d) => {
    const o = d.toJSON() as { kind?: string; data?: Record<string, string> };
    if (o.kind === "Secret" && o.data) o.data = Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, v.replace(/\s+/g, "")]));
    return o as T;
  });
}

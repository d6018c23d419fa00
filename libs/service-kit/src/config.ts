import { readFileSync } from "node:fs";
import { z } from "zod";

export class ConfigError extends Error {
  constructor(
    message: string,
    /** Every setting that was wrong, by its environment variable name. */
    readonly settings: string[],
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Reads settings from the environment. For every KEY the schema knows, KEY_FILE may name a file
 * holding the value instead (how Docker and Kubernetes mount secrets); the file wins only when
 * KEY itself is unset. The schema's keys are the environment variable names, so an error names
 * exactly the setting to fix.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const raw: Record<string, string | undefined> = {};
  const problems: string[] = [];
  const names: string[] = [];
  for (const key of Object.keys(schema.shape)) {
    const direct = env[key];
    const file = env[`${key}_FILE`];
    if (direct !== undefined && direct !== "") raw[key] = direct;
    else if (file) {
      try {
        raw[key] = readFileSync(file, "utf8").trim();
      } catch (err) {
        problems.push(`${key}_FILE: cannot read ${file}: ${(err as Error).message}`);
        names.push(`${key}_FILE`);
      }
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path.join(".");
      // Never echo the value: it may be a secret.
      problems.push(`${key}: ${issue.message}`);
      names.push(key);
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`, names);
  }
  return (parsed as { data: z.infer<S> }).data;
}

/**
 * Loads config or ends the process with a message naming the bad settings: a service that
 * cannot be configured must not half-start.
 */
export function loadConfigOrExit<S extends z.ZodObject>(schema: S, env?: Record<string, string | undefined>): z.infer<S> {
  try {
    return loadConfig(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG, as runMain
    }
    throw err;
  }
}

/** Zod helpers for the shapes environment variables come in. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(["true", "false", "1", "0", "yes", "no"])
      .default(fallback ? "true" : "false")
      .transform((v) => v === "true" || v === "1" || v === "yes"),
  /** Every setting has bounds: a duration defaults to at most one day. */
  durationMs: (fallback: number, max = 86_400_000) => z.coerce.number().int().min(0).max(max).default(fallback),
  url: () => z.url(),
  list: (fallback: string[] = []) =>
    z
      .string()
      .default(fallback.join(","))
      .transform((s) =>
        s
          .split(",")
          .map((x) => x.trim())
          .filter(Boolean),
      ),
};

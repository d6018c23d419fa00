import { readFileSync } from "node:fs";
import { fromJson } from "@bufbuild/protobuf";
import { type ReaderSpec, ReaderSpecSchema } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { ConfigError, type Logger } from "@meridian/service-kit";
import { validateReaderSpec } from "./api/index.js";
import type { ReaderManager } from "./pipeline/manager.js";

/**
 * Reads and validates OMNIA_READERS_FILE (`{"readers": [ReaderSpec, …]}`, proto JSON); a bad file stops the start
 * with a message naming the entry and field.
 */
export function readReadersFile(path: string): ReaderSpec[] {
  let list: unknown;
  try {
    list = (JSON.parse(readFileSync(path, "utf8")) as { readers?: unknown }).readers;
  } catch (err) {
    throw new ConfigError(`OMNIA_READERS_FILE: ${path}: ${(err as Error).message}`, ["OMNIA_READERS_FILE"]);
  }
  if (!Array.isArray(list)) throw new ConfigError(`OMNIA_READERS_FILE: ${path}: "readers" must be a list`, ["OMNIA_READERS_FILE"]);
  const ids = new Set<string>();
  return list.map((entry, i) => {
    try {
      const spec = fromJson(ReaderSpecSchema, entry);
      validateReaderSpec(spec, "");
      if (ids.has(spec.id)) throw new Error(`id: "${spec.id}" is declared twice`);
      ids.add(spec.id);
      return spec;
    } catch (err) {
      throw new ConfigError(`OMNIA_READERS_FILE: ${path}: readers[${i}]: ${(err as Error).message}`, ["OMNIA_READERS_FILE"]);
    }
  });
}

/** Puts the declared readers (the file wins over what the API changed in them); their cursors stay. Idempotent. */
export async function applyReaders(
  readers: ReaderManager,
  declared: readonly ReaderSpec[],
  logger: Logger,
): Promise<Record<string, unknown>> {
  for (const spec of declared) {
    await readers.put(spec);
    logger.info({ reader: spec.id, series: spec.series.length }, "reader from file");
  }
  return { readers: declared.length };
}

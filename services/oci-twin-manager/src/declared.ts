import { readFileSync } from "node:fs";
import { fromJson } from "@bufbuild/protobuf";
import { TwinSpecSchema } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { isRetryable } from "@meridian/retry";
import { ConfigError, type Logger } from "@meridian/service-kit";
import { twinDescription } from "./api/index.js";
import { type TwinDescription, type TwinManager, twinProblems } from "./pipeline/twins.js";

function fail(path: string, problems: string[]): never {
  throw new ConfigError(`OCI_TWINS_FILE: ${path}: ${problems.join("; ")}`, ["OCI_TWINS_FILE"]);
}

export interface TwinsFileOptions {
  path?: string;
  /** OCI_IOT_DOMAIN_ID: a twin naming no domain needs it. */
  defaultDomainId?: string | undefined;
  maxTwins: number;
}

/**
 * OCI_TWINS_FILE: `{"twins": [TwinSpec, …]}` in proto JSON (snake or camel case), reconciled at start. A bad file stops
 * the start with every problem named by entry and field (`twins[1].model.spec.contents[0].name: …`).
 */
export function parseTwins(raw: unknown, options: TwinsFileOptions): TwinDescription[] {
  const where = options.path ?? "(inline)";
  const list = (raw as { twins?: unknown } | null)?.twins;
  if (!Array.isArray(list)) fail(where, ['must be {"twins": [TwinSpec, ...]}']);
  if (list.length > options.maxTwins) fail(where, [`${list.length} twins, more than OCI_MAX_TWINS=${options.maxTwins}`]);
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const out: TwinDescription[] = [];
  list.forEach((entry: unknown, i: number) => {
    const at = `twins[${i}]`;
    let d: TwinDescription;
    try {
      d = twinDescription(fromJson(TwinSpecSchema, entry as Parameters<typeof fromJson>[1]));
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
      return;
    }
    for (const p of twinProblems(d)) problems.push(`${at}.${p.path}: ${p.reason}`);
    if ((d.iotDomainId === "" || d.iotDomainId === "default") && !options.defaultDomainId)
      problems.push(`${at}.iot_domain_id: names no IoT domain and OCI_IOT_DOMAIN_ID is not set`);
    const prior = seen.get(d.key);
    if (prior !== undefined) problems.push(`${at}.key: "${d.key}" is also the key of twins[${prior}]`);
    else seen.set(d.key, i);
    out.push(d);
  });
  if (problems.length > 0) fail(where, problems);
  return out;
}

export function readTwinsFile(path: string, options: Omit<TwinsFileOptions, "path">): TwinDescription[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    fail(path, [(err as Error).message]);
  }
  return parseTwins(raw, { ...options, path });
}

/**
 * Creates the declared twins that do not exist (a twin that exists with the same description is left as it is, its
 * source and secret taken from the file). Idempotent: the starter runs it again after a failure OCI may recover from;
 * a twin that cannot be created as declared (its key taken by another description, OCI refusing it) is logged and
 * left out, so that the others still come up.
 */
export async function applyTwins(
  twins: TwinManager,
  declared: readonly TwinDescription[],
  logger: Logger,
): Promise<Record<string, unknown>> {
  const result = { created: [] as string[], unchanged: [] as string[], failed: [] as string[] };
  for (const d of declared) {
    try {
      const { twin, created } = await twins.create(d);
      (created ? result.created : result.unchanged).push(d.key);
      if (created) logger.info({ twin: d.key, instanceId: twin.instanceId, kind: twin.kind }, "twin from file");
    } catch (err) {
      if (isRetryable(err)) throw err;
      result.failed.push(d.key);
      logger.error({ err, twin: d.key }, "twin from file not created");
    }
  }
  return result;
}

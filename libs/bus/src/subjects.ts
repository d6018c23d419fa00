import { Platform, type Source, type SourceFilter } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";

/** Root of every telemetry subject; the version is in the subject so a v2 can run beside v1. */
export const TELEMETRY_ROOT = "telemetry.v1";
export const DEAD_LETTER_ROOT = "deadletter.v1";

const PLATFORM_TOKENS: Record<Platform, string> = {
  [Platform.UNSPECIFIED]: "unknown",
  [Platform.OMF]: "omf",
  [Platform.IOT_CENTRAL]: "iotc",
  [Platform.IDIGI]: "idigi",
  [Platform.OMNIA]: "omnia",
  [Platform.OCI_IOT]: "oci",
  [Platform.API]: "api",
};

export function platformToken(platform: Platform): string {
  return PLATFORM_TOKENS[platform] ?? "unknown";
}

/**
 * Makes an id safe as one subject token, reversibly: every byte outside [A-Za-z0-9_-] becomes
 * %XX. Device ids contain '.', ' ', ':' and '/' in the wild; a lossy replacement would let two
 * devices share a subject, this cannot.
 */
export function encodeToken(value: string): string {
  if (value === "") return "%";
  if (/^[A-Za-z0-9_-]+$/.test(value)) return value;
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function decodeToken(token: string): string {
  if (token === "%") return "";
  if (!token.includes("%")) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "%") {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** telemetry.v1.<platform>.<connection>.<device> */
export function telemetrySubject(source: Pick<Source, "platform" | "connection" | "device">): string {
  return `${TELEMETRY_ROOT}.${platformToken(source.platform)}.${encodeToken(source.connection)}.${encodeToken(source.device)}`;
}

/** The subject filter for a source filter: empty fields become '*'. */
export function telemetryFilterSubject(filter: Partial<Pick<SourceFilter, "platform" | "connection" | "device">> | undefined): string {
  const platform = filter?.platform ? platformToken(filter.platform) : "*";
  const connection = filter?.connection ? encodeToken(filter.connection) : "*";
  const device = filter?.device ? encodeToken(filter.device) : "*";
  return `${TELEMETRY_ROOT}.${platform}.${connection}.${device}`;
}

/** True when the source passes the filter (empty filter fields match anything). */
export function sourceMatches(filter: Partial<SourceFilter> | undefined, source: Source | undefined): boolean {
  if (!filter) return true;
  if (!source) return false;
  if (filter.platform && filter.platform !== source.platform) return false;
  if (filter.connection && filter.connection !== source.connection) return false;
  if (filter.device && filter.device !== source.device) return false;
  return true;
}

/** deadletter.v1.<consumer>: where a sink's consumer puts what it can never deliver. */
export function deadLetterSubject(consumer: string): string {
  return `${DEAD_LETTER_ROOT}.${encodeToken(consumer)}`;
}

import { Platform, type Source, type SourceFilter } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";

/** Root of every telemetry subject; the version is in the subject so a v2 can run beside v1. */
export const TELEMETRY_ROOT = "telemetry.v1";
export const DEAD_LETTER_ROOT = "deadletter.v1";
/** Cloud to device: what a platform asks of a device (stream CLOUD_TO_DEVICE), and the answers (never stored). */
export const COMMAND_ROOT = "command.v1";
export const COMMAND_RESPONSE_ROOT = "command-response.v1";
export const WRITABLE_PROPERTY_ROOT = "property.v1";

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

const TOKEN_PLATFORMS = new Map(
  Object.entries(PLATFORM_TOKENS)
    .filter(([p]) => Number(p) !== Platform.UNSPECIFIED)
    .map(([p, token]) => [token, Number(p) as Platform]),
);

/** The platform a subject or consumer-name token stands for; undefined for "unknown" or anything else. */
export function platformOfToken(token: string): Platform | undefined {
  return TOKEN_PLATFORMS.get(token);
}

/** NATS subject matching: `*` stands for one token, a final `>` for one or more. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return i === f.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== "*" && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
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

/**
 * The device token of a telemetry message holding the events of several devices of one connection:
 * `telemetry.v1.<platform>.<connection>.~`. `encodeToken` only emits [A-Za-z0-9_%-], so no device id can become it.
 */
export const SEVERAL_DEVICES_TOKEN = "~";

/**
 * telemetry.v1.<platform>.<connection>.<device>: the subject of a message whose events are all of this one device.
 *
 * The telemetry stream's contract (libs/bus/README.md, "Telemetry messages"): one bus message holds the events of
 * one publish call for one (platform, connection), in order, in chunks of at most MAX_EVENTS_PER_MESSAGE events /
 * MAX_MESSAGE_BYTES encoded. Its subject names the device when all its events are of one device, else it ends in
 * SEVERAL_DEVICES_TOKEN. A reader learns each event's device from the event's source, never from the subject.
 */
export function telemetrySubject(source: Pick<Source, "platform" | "connection" | "device">): string {
  return `${TELEMETRY_ROOT}.${platformToken(source.platform)}.${encodeToken(source.connection)}.${encodeToken(source.device)}`;
}

/** telemetry.v1.<platform>.<connection>.~: a message holding events of several devices of the connection. */
export function severalDevicesSubject(platform: Platform, connection: string): string {
  return `${TELEMETRY_ROOT}.${platformToken(platform)}.${encodeToken(connection)}.${SEVERAL_DEVICES_TOKEN}`;
}

/**
 * The subject filter for a source filter: empty fields become '*'. Matches the messages of one device only, not the
 * several-devices messages that also hold its events: a reader of a device uses telemetrySelection instead.
 */
export function telemetryFilterSubject(filter: Partial<Pick<SourceFilter, "platform" | "connection" | "device">> | undefined): string {
  const platform = filter?.platform ? platformToken(filter.platform) : "*";
  const connection = filter?.connection ? encodeToken(filter.connection) : "*";
  const device = filter?.device ? encodeToken(filter.device) : "*";
  return `${TELEMETRY_ROOT}.${platform}.${connection}.${device}`;
}

/** The events a reader keeps (sourceMatches); empty platform or connection match anything. */
export type EventFilter = Pick<SourceFilter, "platform" | "connection" | "device">;

/** What a reader of a source filter asks the server for, and which events of those messages it keeps. */
export interface TelemetrySelection {
  /** The consumer's filter subject: a device filter's device token is '*', so several-devices messages match too. */
  subject: string;
  /** Set for a filter with a device: keep only the events whose source matches it (sourceMatches). */
  events?: EventFilter | undefined;
}

/**
 * The subject and event filter that read exactly a source filter's events. nats-server 2.9 allows one filter subject
 * per consumer, so a device's events, which may be in its own messages or in several-devices ones, are read from the
 * connection's (device-wildcard) subject and filtered by their sources.
 */
export function telemetrySelection(
  filter: Partial<Pick<SourceFilter, "platform" | "connection" | "device">> | undefined,
): TelemetrySelection {
  if (!filter?.device) return { subject: telemetryFilterSubject(filter) };
  return {
    subject: telemetryFilterSubject({ ...filter, device: "" }),
    events: { platform: filter.platform ?? Platform.UNSPECIFIED, connection: filter.connection ?? "", device: filter.device },
  };
}

/**
 * Whether a message on `subject` may hold events of the event filter's device: its own subject or a several-devices
 * one. False means the message can be skipped without decoding it.
 */
export function subjectMayHold(subject: string, events: EventFilter): boolean {
  const dot = subject.lastIndexOf(".");
  const token = subject.slice(dot + 1);
  return token === SEVERAL_DEVICES_TOKEN || token === encodeToken(events.device);
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

/** Which commands or writable-property updates a watcher wants; an unset field matches anything. */
export interface CloudToDeviceFilter {
  platform?: Platform;
  connection?: string;
  device?: string;
  /** Commands only: the command name (without its component). */
  name?: string;
}

const tokenOrAny = (value: string | undefined) => (value ? encodeToken(value) : "*");

/** command.v1.<platform>.<connection>.<device>.<name> */
export function commandSubject(platform: Platform, connection: string, device: string, name: string): string {
  return `${COMMAND_ROOT}.${platformToken(platform)}.${encodeToken(connection)}.${encodeToken(device)}.${encodeToken(name)}`;
}

/** command-response.v1.<platform>.<connection>.<request id>: core NATS only, a response lives as long as its command's deadline. */
export function commandResponseSubject(platform: Platform, connection: string, requestId: string): string {
  return `${COMMAND_RESPONSE_ROOT}.${platformToken(platform)}.${encodeToken(connection)}.${encodeToken(requestId)}`;
}

/** property.v1.<platform>.<connection>.<device> */
export function writablePropertySubject(platform: Platform, connection: string, device: string): string {
  return `${WRITABLE_PROPERTY_ROOT}.${platformToken(platform)}.${encodeToken(connection)}.${encodeToken(device)}`;
}

/** The subject filter of a command filter: empty fields become '*'. */
export function commandFilterSubject(filter: CloudToDeviceFilter = {}): string {
  const platform = filter.platform ? platformToken(filter.platform) : "*";
  return `${COMMAND_ROOT}.${platform}.${tokenOrAny(filter.connection)}.${tokenOrAny(filter.device)}.${tokenOrAny(filter.name)}`;
}

/** The subject filter of a writable-property filter (its `name` is not part of the subject). */
export function writablePropertyFilterSubject(filter: CloudToDeviceFilter = {}): string {
  const platform = filter.platform ? platformToken(filter.platform) : "*";
  return `${WRITABLE_PROPERTY_ROOT}.${platform}.${tokenOrAny(filter.connection)}.${tokenOrAny(filter.device)}`;
}

/** The responses of one platform's connection, or of all its connections. */
export function commandResponseFilterSubject(platform: Platform, connection?: string): string {
  return `${COMMAND_RESPONSE_ROOT}.${platformToken(platform)}.${tokenOrAny(connection)}.*`;
}

/** The connection and request id a command-response subject names, or undefined for another subject. */
export function parseCommandResponseSubject(subject: string): { connection: string; requestId: string } | undefined {
  const t = subject.split(".");
  if (t.length !== 5 || `${t[0]}.${t[1]}` !== COMMAND_RESPONSE_ROOT) return undefined;
  return { connection: decodeToken(t[3]!), requestId: decodeToken(t[4]!) };
}

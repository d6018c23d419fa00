/** Settings of the push side that a test or main.ts may change, with their defaults. */

/** ConnectResponse status per refusal reason. Which code DRM really sends is [I] in the notes. */
export interface ConnectStatuses {
  badCredentials: number;
  /** The monitor belongs to another customer. */
  foreignMonitor: number;
  unknownMonitor: number;
  /** The monitor exists but is not a tcp monitor. */
  notTcp: number;
  badVersion: number;
  /** The first frame is not a well-formed ConnectRequest. */
  malformed: number;
  disabled: number;
  /** A session is already open for the monitor and `duplicateSession` is `reject`. */
  duplicate: number;
}

export const DEFAULT_CONNECT_STATUSES: ConnectStatuses = {
  badCredentials: 403,
  foreignMonitor: 403,
  unknownMonitor: 400,
  notTcp: 400,
  badVersion: 400,
  malformed: 400,
  disabled: 400,
  duplicate: 400,
};

export interface PushOptions {
  connectStatuses?: Partial<ConnectStatuses>;
  /** On a refused ConnectRequest close without any ConnectResponse. Default false. */
  refuseSilently?: boolean;
  /** Close a connection that has not sent a ConnectRequest within this time. Default 60000. */
  handshakeTimeoutMs?: number;
  /** Explicit-ack monitors: max unacked blocks in flight, 0 = unlimited (default). */
  maxInFlight?: number;
  /** Explicit-ack monitors: close the session when a block stays unacked this long, 0 = never (default). */
  ackTimeoutMs?: number;
  /** Accept the legacy 6-byte Python ack (`00 04 id status`). Default true; false = strict. */
  acceptLegacyAck?: boolean;
  /** zlib monitors: only compress payloads of at least this many bytes (smaller go out with byte 0). Default 0. */
  compressMinBytes?: number;
  /** A second ConnectRequest for a monitor that already has a session: `takeover` (default) closes the old one. */
  duplicateSession?: "takeover" | "reject";
  /** Include `"group":"*"` in JSON Msgs. Default true. */
  jsonGroup?: boolean;
  /** XML blocks start with an `<?xml ...?>` prolog. Default true. */
  xmlProlog?: boolean;
  /** How many recent blocks / acks to keep per monitor for `state`. Default 1000. */
  historyLimit?: number;
  /** Block id of a connection's first PublishMessage. Default 0 (the 2012 capture starts at 0 [I]); for wrap tests. */
  firstBlockId?: number;
  /**
   * Send every payload as Base64 text (of the zlib stream for compressed payloads), as the Remote Manager docs'
   * "may be compressed & Base64 encoded" reads. Default false (raw bytes, what every client in the notes handles).
   */
  base64Payloads?: boolean;
  /**
   * With `base64Payloads`, whether the compression byte says 1 for Base64 text holding a zlib stream. Default true;
   * false sends byte 0 and leaves the receiver to find the zlib stream inside ([I]: both readings are possible).
   */
  base64CompressionByte?: boolean;
  /**
   * How the v1 API treats `ack_option`, a field the notes' v1 field list does not name ([I]): `stored` (default)
   * keeps and lists it as the XML API's monAckOption; `unknown` ignores it (the monitor keeps the default, off) and
   * lists no ack_option.
   */
  v1AckOption?: "stored" | "unknown";
}

export type ResolvedPushOptions = Required<Omit<PushOptions, "connectStatuses">> & { connectStatuses: ConnectStatuses };

export function resolvePushOptions(options: PushOptions): ResolvedPushOptions {
  return {
    connectStatuses: { ...DEFAULT_CONNECT_STATUSES, ...options.connectStatuses },
    refuseSilently: options.refuseSilently ?? false,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 60_000,
    maxInFlight: options.maxInFlight ?? 0,
    ackTimeoutMs: options.ackTimeoutMs ?? 0,
    acceptLegacyAck: options.acceptLegacyAck ?? true,
    compressMinBytes: options.compressMinBytes ?? 0,
    duplicateSession: options.duplicateSession ?? "takeover",
    jsonGroup: options.jsonGroup ?? true,
    xmlProlog: options.xmlProlog ?? true,
    historyLimit: options.historyLimit ?? 1000,
    // A block id is a u16 on the wire.
    firstBlockId: (options.firstBlockId ?? 0) & 0xffff,
    base64Payloads: options.base64Payloads ?? false,
    base64CompressionByte: options.base64CompressionByte ?? true,
    v1AckOption: options.v1AckOption ?? "stored",
  };
}

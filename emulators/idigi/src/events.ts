/**
 * Simulated devices and the event envelope (protocol notes §1.7, §1.8). Content is deterministic:
 * device ids, stream names, values and (by default) timestamps all derive from a global sequence
 * number, so a test that emits N events knows exactly what arrives.
 */

export const KNOWN_RESOURCES = [
  "DataPoint",
  "DataStream",
  "DeviceCore",
  "FileData",
  "FileDataCore",
  "Alarm",
  "AlarmStatus",
  "XbeeCore",
  "Job",
  "JobResult",
  "devices",
  "alert_status",
  "jobs",
] as const;

/** One emitted event, kept compact; rendered per monitor (its cstId, its format) when a block is built. */
export interface EventSpec {
  seq: number;
  resource: string;
  operation: string;
  /** Epoch ms. */
  ts: number;
  device: string;
  /** Index of the simulated device (drives numeric ids); -1 when the caller named the device. */
  deviceIndex: number;
  /** A record supplied by the caller instead of the generated one. */
  record?: Record<string, unknown>;
}

export interface DeviceSimOptions {
  /** Number of simulated devices, round-robin by sequence number. Default 3. */
  devices?: number;
  /** Stream names cycled for DataPoint/DataStream. */
  streams?: string[];
  /** `sequence`: ts = timeBase + seq * stepMs (deterministic). `wall`: Date.now() at emission. */
  clock?: "sequence" | "wall";
  /** Epoch ms for seq 0 in `sequence` clock. Default 2024-01-01T00:00:00.000Z. */
  timeBase?: number;
  stepMs?: number;
}

export function deviceIdFor(i: number): string {
  const hex = (0xff000000 + i + 1).toString(16).toUpperCase().padStart(8, "0");
  return `00000000-00000000-00409DFF-${hex}`;
}

const DEFAULT_OPERATION: Record<string, string> = {
  DataPoint: "INSERTION",
  FileData: "INSERTION",
  FileDataCore: "INSERTION",
  Job: "INSERTION",
  JobResult: "INSERTION",
  jobs: "CREATE",
};

export class DeviceSim {
  private seq = 0;
  readonly devices: number;
  readonly streams: string[];
  private readonly clock: "sequence" | "wall";
  private readonly timeBase: number;
  private readonly stepMs: number;

  constructor(opts: DeviceSimOptions = {}) {
    this.devices = Math.max(1, opts.devices ?? 3);
    this.streams = opts.streams && opts.streams.length > 0 ? opts.streams : ["temperature", "humidity", "pressure"];
    this.clock = opts.clock ?? "sequence";
    this.timeBase = opts.timeBase ?? Date.UTC(2024, 0, 1);
    this.stepMs = opts.stepMs ?? 1000;
    this.deviceIds = Array.from({ length: this.devices }, (_, i) => deviceIdFor(i));
  }

  private readonly deviceIds: string[];

  get emitted(): number {
    return this.seq;
  }

  reset(): void {
    this.seq = 0;
  }

  next(resource: string, opts: { device?: string; operation?: string; record?: Record<string, unknown> } = {}): EventSpec {
    const seq = this.seq++;
    const deviceIndex = opts.device ? -1 : seq % this.devices;
    const spec: EventSpec = {
      seq,
      resource,
      operation: (opts.operation ?? DEFAULT_OPERATION[resource] ?? "UPDATE").toUpperCase(),
      ts: this.clock === "wall" ? Date.now() : this.timeBase + seq * this.stepMs,
      device: opts.device ?? this.deviceIds[deviceIndex]!,
      deviceIndex,
    };
    if (opts.record) spec.record = opts.record;
    return spec;
  }

  stream(e: EventSpec): string {
    return this.streams[e.seq % this.streams.length]!;
  }
}

/** A deterministic UUID-shaped id from a sequence number. */
export function uuidFor(seq: number): string {
  const h = seq.toString(16).padStart(12, "0");
  return `6d657269-6469-4e00-8000-${h.slice(-12)}`;
}

export function valueFor(seq: number): string {
  return (20 + (seq % 100) / 10).toFixed(1);
}

function numericDevId(e: EventSpec): number {
  if (e.deviceIndex >= 0) return 7000 + e.deviceIndex;
  let h = 0;
  for (const c of e.device) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 7000 + (h % 100000);
}

function mac(e: EventSpec): string {
  const tail = e.device.replace(/-/g, "").slice(-6).padStart(6, "0");
  return `00:40:9D:${tail.slice(0, 2)}:${tail.slice(2, 4)}:${tail.slice(4, 6)}`;
}

/** The topic key (after `<cstId>/<Resource>/`) and the record for an event. */
export function renderRecord(e: EventSpec, cstId: number, sim: DeviceSim): { key: string; record: Record<string, unknown> } {
  const iso = new Date(e.ts).toISOString();
  const devId = numericDevId(e);
  switch (e.resource) {
    case "DataPoint": {
      const streamId = `${e.device}/${sim.stream(e)}`;
      return {
        key: streamId,
        record: e.record ?? {
          cstId,
          data: valueFor(e.seq),
          description: "",
          id: uuidFor(e.seq),
          quality: 0,
          serverTimestamp: e.ts,
          streamId,
          streamUnits: "",
          timestamp: e.ts,
        },
      };
    }
    case "DataStream": {
      const streamId = `${e.device}/${sim.stream(e)}`;
      return {
        key: streamId,
        record: e.record ?? {
          cstId,
          streamId,
          dataType: "DOUBLE",
          units: "",
          description: "",
          forwardTo: "",
          currentValue: { id: uuidFor(e.seq), timestamp: e.ts, serverTimestamp: e.ts, data: valueFor(e.seq), quality: 0 },
        },
      };
    }
    case "DeviceCore":
      return {
        key: `${devId}/0`,
        record: e.record ?? {
          devEffectiveStartDate: iso,
          dpDeviceType: "ConnectPort X2",
          dpRestrictedStatus: 0,
          dpConnectionStatus: e.seq % 2,
          grpId: cstId,
          id: { devVersion: 0, devId },
          devMac: mac(e),
          devConnectwareId: e.device,
          cstId,
          devTerminated: false,
        },
      };
    case "FileData":
    case "FileDataCore": {
      const fdPath = `/db/${cstId}_Meridian/${e.device}/`;
      const fdName = `event-${e.seq}.txt`;
      const content = `seq=${e.seq} value=${valueFor(e.seq)}`;
      const record: Record<string, unknown> = e.record ?? {
        id: { fdName, fdPath },
        cstId,
        fdCreatedDate: iso,
        fdLastModifiedDate: iso,
        fdContentType: "text/plain",
        fdSize: content.length,
        fdType: "file",
      };
      if (!e.record && e.resource === "FileData") record.fdData = Buffer.from(content).toString("base64");
      return { key: `db/${cstId}_Meridian/${e.device}/${fdName}`, record };
    }
    case "Alarm":
    case "AlarmStatus":
      return {
        key: `${41826 + (e.seq % 3)}/${e.device}`,
        record: e.record ?? {
          id: { almId: 41826 + (e.seq % 3), almsSourceEntityId: e.device },
          almsStatus: e.seq % 2,
          almsTopic: `Alarm.DeviceOffline`,
          almsUpdateTime: iso,
          cstId,
        },
      };
    case "XbeeCore": {
      const x = (e.seq % 256).toString(16).toUpperCase().padStart(2, "0");
      const addr = `00:13:A2:00:40:01:60:${x}`;
      return {
        key: `${addr}/1/0/1794/256`,
        record: e.record ?? { id: { xpExtAddr: addr }, devConnectwareId: e.device, cstId, xpNetAddr: e.seq % 65536, xpNodeType: 1 },
      };
    }
    case "devices":
      return {
        key: e.device,
        record: e.record ?? {
          id: e.device,
          customer_id: cstId,
          connection_status: e.seq % 2 === 0 ? "connected" : "disconnected",
          type: "ConnectPort X2",
          last_update: iso,
        },
      };
    case "alert_status":
      return {
        key: `${41826 + (e.seq % 3)}/${encodeURIComponent(`aggregate-throttle/${e.device}`)}`,
        record: e.record ?? { id: 41826 + (e.seq % 3), source: e.device, status: e.seq % 2 === 0 ? "fired" : "reset", customer_id: cstId },
      };
    default:
      return { key: `${e.seq}`, record: e.record ?? { id: e.seq, cstId, device: e.device, timestamp: iso } };
  }
}

export interface RenderContext {
  cstId: number;
  sim: DeviceSim;
  /** Include `"group":"*"` in JSON Msgs (seen in the 2012 README and 2015 examples). Default true. */
  group?: boolean;
  /** Emit `<?xml ...?>` before `<Document>` in XML blocks. Default true. */
  xmlProlog?: boolean;
}

/** One JSON Msg, key order: timestamp, topic, operation, group, [replay], <Resource>. */
export function jsonMsg(e: EventSpec, replay: boolean, ctx: RenderContext): string {
  const { key, record } = renderRecord(e, ctx.cstId, ctx.sim);
  const msg: Record<string, unknown> = {
    timestamp: new Date(e.ts).toISOString(),
    topic: `${ctx.cstId}/${e.resource}/${key}`,
    operation: e.operation,
  };
  if (ctx.group !== false) msg.group = "*";
  if (replay) msg.replay = "true";
  msg[e.resource] = record;
  return JSON.stringify(msg);
}

/** `{"Document":{"Msg":obj}}` for one, `{"Document":{"Msg":[...]}}` for several (§1.8 quirk). */
export function jsonDocument(msgs: string[]): string {
  if (msgs.length === 1) return `{"Document":{"Msg":${msgs[0]}}}`;
  return `{"Document":{"Msg":[${msgs.join(",")}]}}`;
}

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&apos;"));
}

function xmlValue(name: string, v: unknown): string {
  if (v === null || v === undefined) return `<${name}/>`;
  if (Array.isArray(v)) return v.map((x) => xmlValue(name, x)).join("");
  if (typeof v === "object") {
    let inner = "";
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) inner += xmlValue(k, x);
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${xmlEscape(String(v))}</${name}>`;
}

/** One XML Msg: topic, operation (lower case), timestamp and replay as attributes. */
export function xmlMsg(e: EventSpec, replay: boolean, ctx: RenderContext): string {
  const { key, record } = renderRecord(e, ctx.cstId, ctx.sim);
  const topic = xmlEscape(`${ctx.cstId}/${e.resource}/${key}`);
  const attrs = `topic="${topic}" operation="${e.operation.toLowerCase()}" timestamp="${new Date(e.ts).toISOString()}"${replay ? ' replay="true"' : ""}`;
  return `<Msg ${attrs}>${xmlValue(e.resource, record)}</Msg>`;
}

export function xmlDocument(msgs: string[], prolog = true): string {
  return `${prolog ? '<?xml version="1.0" encoding="UTF-8"?>' : ""}<Document>${msgs.join("")}</Document>`;
}

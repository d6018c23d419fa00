/** Fault switches for the push server, set through `POST /_emulator/faults`. */
import { FaultConfigError } from "@meridian/emulator-kit";

export type FaultSpec =
  /** Write only the first `afterBytes` bytes of the next PublishMessage, then destroy the socket. */
  | { type: "dropMidFrame"; afterBytes: number; monitorId?: number; times?: number }
  /** Stop sending to the monitor(s) for `ms` milliseconds (applied at once; queued events wait). */
  | { type: "stall"; ms: number; monitorId?: number }
  /** Hold every chunk read from the client (acks) for `delayMs` before processing it, until cleared. */
  | { type: "slowReads"; delayMs: number; monitorId?: number }
  /** After the next block is fully written, destroy the socket before any ack can be read. */
  | { type: "dropAfterBatch"; monitorId?: number; times?: number }
  /** Answer the next ConnectRequest(s) with `status` (default 403), or close without a reply when `silent`. */
  | { type: "refuseConnect"; status?: number; silent?: boolean; monitorId?: number; times?: number }
  /** Write every outgoing frame in pieces of `chunkBytes`, `delayMs` apart, until cleared. */
  | { type: "splitFrames"; chunkBytes: number; delayMs?: number; monitorId?: number }
  /** Send one frame of an unexpected type (default 0x0009) before the next PublishMessage. */
  | { type: "badFrameType"; frameType?: number; monitorId?: number; times?: number };

export type FaultType = FaultSpec["type"];

export interface ActiveFault {
  id: number;
  spec: FaultSpec;
  /** Uses left; Infinity for switches that stay on until cleared. */
  remaining: number;
  fired: number;
}

const PERSISTENT: FaultType[] = ["slowReads", "splitFrames"];

function num(b: Record<string, unknown>, k: string, required: boolean, min = 0): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) {
    if (required) throw new FaultConfigError(k, "is required");
    return undefined;
  }
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) throw new FaultConfigError(k, `must be a number >= ${min}`);
  return v;
}

/** Validates an untrusted body into a FaultSpec. */
export function parseFault(b: unknown): FaultSpec {
  if (!b || typeof b !== "object") throw new FaultConfigError("body", "must be a JSON object");
  const o = b as Record<string, unknown>;
  const monitorId = num(o, "monitorId", false, 1);
  const times = num(o, "times", false, 1);
  const base: { monitorId?: number; times?: number } = {};
  if (monitorId !== undefined) base.monitorId = monitorId;
  switch (o.type) {
    case "dropMidFrame":
      return { type: "dropMidFrame", afterBytes: num(o, "afterBytes", true)!, ...base };
    case "stall":
      return { type: "stall", ms: num(o, "ms", true)!, ...(monitorId !== undefined ? { monitorId } : {}) };
    case "slowReads":
      return { type: "slowReads", delayMs: num(o, "delayMs", true)!, ...(monitorId !== undefined ? { monitorId } : {}) };
    case "dropAfterBatch":
      return { type: "dropAfterBatch", ...base, ...(times !== undefined ? { times } : {}) };
    case "refuseConnect": {
      const status = num(o, "status", false, 0);
      const f: FaultSpec = { type: "refuseConnect", ...base, ...(times !== undefined ? { times } : {}) };
      if (status !== undefined) f.status = status;
      if (o.silent === true) f.silent = true;
      return f;
    }
    case "splitFrames": {
      const f: FaultSpec = { type: "splitFrames", chunkBytes: num(o, "chunkBytes", true, 1)!, ...base };
      const d = num(o, "delayMs", false);
      if (d !== undefined) f.delayMs = d;
      return f;
    }
    case "badFrameType": {
      const f: FaultSpec = { type: "badFrameType", ...base, ...(times !== undefined ? { times } : {}) };
      const t = num(o, "frameType", false);
      if (t !== undefined) f.frameType = t;
      return f;
    }
    default:
      throw new FaultConfigError(
        "type",
        "must be one of dropMidFrame, stall, slowReads, dropAfterBatch, refuseConnect, splitFrames, badFrameType",
      );
  }
}

export class FaultSet {
  private faults: ActiveFault[] = [];
  private nextId = 1;

  add(spec: FaultSpec): ActiveFault {
    const times = "times" in spec && spec.times !== undefined ? spec.times : 1;
    const f: ActiveFault = {
      id: this.nextId++,
      spec,
      remaining: PERSISTENT.includes(spec.type) ? Number.POSITIVE_INFINITY : times,
      fired: 0,
    };
    this.faults.push(f);
    return f;
  }

  clear(): void {
    this.faults = [];
  }

  list(): ActiveFault[] {
    return this.faults;
  }

  /** The first live fault of a type that applies to the monitor; does not consume it. */
  peek<T extends FaultType>(type: T, monitorId: number | undefined): (ActiveFault & { spec: Extract<FaultSpec, { type: T }> }) | undefined {
    if (this.faults.length === 0) return undefined;
    for (const f of this.faults) {
      if (f.spec.type !== type || f.remaining <= 0) continue;
      if (f.spec.monitorId !== undefined && f.spec.monitorId !== monitorId) continue;
      return f as ActiveFault & { spec: Extract<FaultSpec, { type: T }> };
    }
    return undefined;
  }

  /** Takes one use of the first applicable fault of a type. */
  take<T extends FaultType>(type: T, monitorId: number | undefined): Extract<FaultSpec, { type: T }> | undefined {
    const f = this.peek(type, monitorId);
    if (!f) return undefined;
    f.remaining--;
    f.fired++;
    if (f.remaining <= 0) this.faults = this.faults.filter((x) => x !== f);
    return f.spec;
  }
}

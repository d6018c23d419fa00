/** The iDigi emulator's `/_emulator` surface: the kit's common routes with push faults, plus emit and disable. */
import { type AdminSurface, BadRequestError, createAdminSurface, EmulatorHttpError } from "@meridian/emulator-kit";
import type { Logger } from "pino";
import { type FaultSpec, parseFault } from "../faults.js";
import { type EmitRequest, type PushEngine, UnknownMonitorError } from "../push/engine.js";

/** What the admin surface and the in-process handle both do. */
export interface IdigiControl {
  state(): unknown;
  /** Arms a fault; `stall` applies at once and answers the monitors it hit. */
  setFault(spec: FaultSpec): unknown;
  listFaults(): unknown;
  clearFaults(): void;
  reset(): void;
}

/** One emit call materialises its events at once (about 150 bytes each until sent): this caps its memory. */
const MAX_EMIT = 2_000_000;

export function idigiAdmin(control: IdigiControl, engine: PushEngine, caPem: () => string | undefined, logger: Logger): AdminSurface {
  return createAdminSurface<FaultSpec>({
    state: () => control.state(),
    reset: () => {
      control.reset();
      return { reset: true };
    },
    faults: {
      parse: parseFault,
      add: (spec) => control.setFault(spec),
      list: () => control.listFaults(),
      clear: () => {
        control.clearFaults();
        return { cleared: true };
      },
    },
    caPem,
    logger,
    routes: [
      { method: "POST", path: "emit", handle: (r) => emit(engine, emitRequest(r.json())) },
      {
        method: "POST",
        path: /^monitors\/(\d+)\/disable$/,
        handle: (r) => {
          const id = Number(r.params[0]);
          if (!engine.disable(id)) throw new EmulatorHttpError(404, `monitor ${id} not found`);
          return { id, status: "DISABLED" };
        },
      },
    ],
  });
}

function emit(engine: PushEngine, req: EmitRequest) {
  try {
    return engine.emit(req);
  } catch (err) {
    if (err instanceof UnknownMonitorError) throw new EmulatorHttpError(404, err.message);
    throw err;
  }
}

function emitRequest(b: Record<string, unknown>): EmitRequest {
  const count = b.count ?? 1;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > MAX_EMIT)
    throw new BadRequestError("count", `must be an integer in 0..${MAX_EMIT}`);
  const er: EmitRequest = { count };
  if (b.monitorId !== undefined) {
    if (typeof b.monitorId !== "number" && typeof b.monitorId !== "string") throw new BadRequestError("monitorId", "must be a number");
    er.monitorId = Number(b.monitorId);
  }
  for (const k of ["topic", "device", "operation"] as const) {
    if (b[k] !== undefined) {
      if (typeof b[k] !== "string") throw new BadRequestError(k, "must be a string");
      er[k] = b[k] as string;
    }
  }
  if (b.record !== undefined) {
    if (!b.record || typeof b.record !== "object") throw new BadRequestError("record", "must be an object");
    er.record = b.record as Record<string, unknown>;
  }
  return er;
}

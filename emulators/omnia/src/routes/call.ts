import type { Principal } from "../auth.js";
import type { Query } from "./request.js";

/** One API request as the routes see it. */
export interface Call {
  method: string;
  /** Decoded path segments below `/plant/timeseries/v1.x`. */
  seg: string[];
  query: Query;
  /** The JSON body; `undefined` when empty. Throws 400 when not JSON. */
  body(): unknown;
  protobuf: boolean;
  principal: Principal;
  traceId: string;
}

export interface Answer {
  status: number;
  json?: unknown;
  bytes?: Uint8Array;
}

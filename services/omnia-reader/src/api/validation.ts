import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { RequestViolations, requireFields } from "@meridian/service-kit";

/** Request validation, all in one place: every problem is reported with its field path (proto names). */

export const READER_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_SELECTORS = 100;
export const MAX_NAME_LENGTH = 256;
export const MAX_ID_LENGTH = 200;
/** Omnia's raw read limit, and its multi-request bound. */
export const MAX_LIMIT = 100_000;
export const MAX_ITEMS = 100;
export const MAX_POINTS_PER_WRITE = 100_000;
export const AGGREGATE_FUNCTIONS = new Set(["avg", "min", "max", "sum", "stddev", "count", "first", "last"]);
const INTERVAL = /^[1-9]\d{0,5}[smhd]$/;

export class Violations extends RequestViolations {
  required<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, path = ""): void {
    this.list.push(...requireFields(schema, message, path));
  }
  id(path: string, value: string): void {
    if (value.length > MAX_ID_LENGTH) this.add(path, `longer than ${MAX_ID_LENGTH} characters`);
    else if (value.includes("/")) this.add(path, "must not contain '/'");
  }
  limit(path: string, value: number | undefined): void {
    if (value !== undefined && (value < 1 || value > MAX_LIMIT)) this.add(path, `must be 1 to ${MAX_LIMIT} (Omnia's bound), got ${value}`);
  }
  window(path: string, start: Timestamp | undefined, end: Timestamp | undefined): void {
    this.time(`${path}start_time`, start);
    this.time(`${path}end_time`, end);
    if (start && end && (end.seconds < start.seconds || (end.seconds === start.seconds && end.nanos < start.nanos)))
      this.add(`${path}end_time`, "must not be before start_time");
  }
  interval(path: string, value: string): void {
    if (value !== "" && !INTERVAL.test(value)) this.add(path, `"${value}" is not <n><s|m|h|d>, e.g. 15m`);
  }
  range(path: string, value: number | undefined, min: number, max: number): void {
    if (value !== undefined && (value < min || value > max)) this.add(path, `must be ${min} to ${max}, got ${value}`);
  }
}

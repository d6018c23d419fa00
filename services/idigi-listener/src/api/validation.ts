import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  AckOption,
  Compression,
  type CreateMonitorRequest,
  CreateMonitorRequestSchema,
  type ListMonitorsRequest,
  PayloadFormat,
  type WatchEventsRequest,
  WatchEventsRequestSchema,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { type FieldViolation, invalidArgument, requireFields } from "@meridian/service-kit";
import { splitTopicList } from "../platform/index.js";

/** Request validation, all in one place: every problem is reported with its field path (proto names). */

const MONITOR_ID = /^\d{1,10}$/;
export const MAX_TOPICS = 64;
export const MAX_TOPIC_LENGTH = 256;
export const MAX_DESCRIPTION_LENGTH = 1024;
export const MAX_BATCH_SIZE = 65_535;
export const MAX_BATCH_DURATION_SECONDS = 86_400;

function topicViolations(topics: readonly string[], path: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (topics.length > MAX_TOPICS) out.push({ path, reason: `at most ${MAX_TOPICS} topics` });
  const seen = new Set<string>();
  topics.forEach((t, i) => {
    const at = `${path}[${i}]`;
    if (t.trim() === "") out.push({ path: at, reason: "must not be empty" });
    else if (t !== t.trim() || /\s/.test(t)) out.push({ path: at, reason: "must not contain whitespace" });
    else if (t.length > MAX_TOPIC_LENGTH) out.push({ path: at, reason: `longer than ${MAX_TOPIC_LENGTH} characters` });
    else if (splitTopicList(t).length !== 1) out.push({ path: at, reason: "one topic per entry (commas only inside a [C,U,D] filter)" });
    else if (!/^[A-Za-z_][A-Za-z0-9_]*(\[[CUD](,[CUD])*\])?(\/.*)?$/.test(t))
      out.push({ path: at, reason: "must look like Resource, Resource[C,U,D] or Resource/path" });
    else if (seen.has(t)) out.push({ path: at, reason: `duplicate topic "${t}"` });
    seen.add(t);
  });
  return out;
}

function enumViolation(value: number, valid: object, path: string): FieldViolation[] {
  return Object.values(valid).includes(value) ? [] : [{ path, reason: `unknown value ${value}` }];
}

function required<D extends DescMessage>(schema: D, msg: MessageShape<D>): FieldViolation[] {
  return requireFields(schema, msg);
}

export function monitorIdViolations(id: string, path = "monitor_id"): FieldViolation[] {
  if (id === "") return [{ path, reason: "required" }];
  return MONITOR_ID.test(id) && Number(id) <= 0xffffffff ? [] : [{ path, reason: "must be a decimal monitor id (0-4294967295)" }];
}

function createMonitorViolations(req: CreateMonitorRequest, prefix = ""): FieldViolation[] {
  const v = required(CreateMonitorRequestSchema, req).map((x) => ({ ...x, path: prefix + x.path }));
  if (req.topics.length > 0) v.push(...topicViolations(req.topics, `${prefix}topics`));
  v.push(...enumViolation(req.format, PayloadFormat, `${prefix}format`));
  v.push(...enumViolation(req.compression, Compression, `${prefix}compression`));
  v.push(...enumViolation(req.ackOption, AckOption, `${prefix}ack_option`));
  if (req.batchSize !== undefined && (req.batchSize < 1 || req.batchSize > MAX_BATCH_SIZE))
    v.push({ path: `${prefix}batch_size`, reason: `must be between 1 and ${MAX_BATCH_SIZE}` });
  if (req.batchDurationSeconds !== undefined && req.batchDurationSeconds > MAX_BATCH_DURATION_SECONDS)
    v.push({ path: `${prefix}batch_duration_seconds`, reason: `must be at most ${MAX_BATCH_DURATION_SECONDS}` });
  if (req.description.length > MAX_DESCRIPTION_LENGTH)
    v.push({ path: `${prefix}description`, reason: `longer than ${MAX_DESCRIPTION_LENGTH} characters` });
  return v;
}

export function validateCreateMonitor(req: CreateMonitorRequest): void {
  const v = createMonitorViolations(req);
  if (v.length > 0) invalidArgument(v);
}

export function validateListMonitors(req: ListMonitorsRequest): void {
  const v = topicViolations(req.topics, "topics");
  if (v.length > 0) invalidArgument(v);
}

/** DeleteMonitor, StartSession, StopSession: a request with just a monitor id. */
export function validateMonitorId(req: { monitorId: string }): void {
  const v = monitorIdViolations(req.monitorId);
  if (v.length > 0) invalidArgument(v);
}

export function validateWatchEvents(req: WatchEventsRequest): void {
  const v = required(WatchEventsRequestSchema, req);
  if (req.createMonitor) {
    if (req.monitorId !== "") v.push({ path: "monitor_id", reason: "must be empty with create_monitor (the monitor is created)" });
    v.push(...createMonitorViolations(req.createMonitor, "create_monitor."));
  } else {
    v.push(...monitorIdViolations(req.monitorId, "monitor_id"));
    if (req.deleteMonitorOnLeave)
      v.push({ path: "delete_monitor_on_leave", reason: "only with create_monitor: a watcher deletes only the monitor it created" });
  }
  const t = req.startTime;
  if (t && (t.nanos < 0 || t.nanos > 999_999_999)) v.push({ path: "start_time.nanos", reason: "out of range" });
  if (v.length > 0) invalidArgument(v);
}

/**
 * idigi-listener: iDigi / Digi Remote Manager push monitors → meridian.telemetry.v1 events on the bus, behind
 * meridian.idigi.v1.IdigiListenerService. The platform client alone is `@meridian/idigi-listener/platform`.
 */
export { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
export { idigiListenerService, toConnectError } from "./api/index.js";
export { type IdigiListenerConfig, idigiListenerConfig, type PushTarget, pushTarget } from "./config.js";
export { SESSIONS_BUCKET, SessionManager, type SessionRecord } from "./pipeline/manager.js";
export { batchIdFor, eventId, toTelemetryEvents } from "./pipeline/mapping.js";
export { MonitorPipeline, type PipelineCounters } from "./pipeline/monitor-pipeline.js";
export { type IdigiListener, type IdigiListenerOptions, SERVICE, startIdigiListener, VERSION } from "./service.js";

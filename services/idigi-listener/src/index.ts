/**
 * idigi-listener: iDigi / Digi Remote Manager push monitors → meridian.telemetry.v1 events on the bus, behind
 * meridian.idigi.v1.IdigiListenerService: its starter and settings. The platform client alone is
 * `@meridian/idigi-listener/platform`.
 */
export { type IdigiListenerConfig, idigiListenerConfig } from "./config.js";
export { type IdigiListener, type IdigiListenerOptions, startIdigiListener } from "./service.js";

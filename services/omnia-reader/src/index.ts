/**
 * omnia-reader: Equinor Omnia Timeseries → meridian.telemetry.v1 events on the bus (readers with cursors), behind
 * meridian.omnia.v1.OmniaReaderService: its starter and settings. The platform client alone is
 * `@meridian/omnia-reader/platform`.
 */
export { type OmniaReaderConfig, omniaReaderConfig } from "./config.js";
export { type OmniaReader, type OmniaReaderOptions, startOmniaReader } from "./service.js";

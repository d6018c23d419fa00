export {
  type BacklogState,
  type BacklogTarget,
  type BusWarning,
  DEFAULT_BACKLOG_CHECK_INTERVAL_MS,
  DISCARD_WARNING_MS,
} from "./backlog.js";
export {
  Bus,
  type BusOptions,
  DEFAULT_COMMAND_RESPONSE_WAIT_MS,
  DEFAULT_STREAM_LIMITS,
  type PublishResult,
  STREAMS,
  type StreamLimits,
  type SubscribeOptions,
} from "./bus.js";
export {
  type CommandResponseMessage,
  InvalidCloudToDeviceMessageError,
  MAX_REQUEST_ID_LENGTH,
} from "./cloud-to-device.js";
export {
  decodeBatch,
  encodeBatch,
  encodedEventSize,
  MAX_EVENTS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  makeBatch,
  SCHEMA_HEADER,
  TELEMETRY_BATCH_SCHEMA,
} from "./codec.js";
export { busFromConfig, type NatsSettings, NatsSettingsError, natsSettings } from "./config.js";
export {
  type ConsumerBacklog,
  consumerBacklog,
  consumerInfo,
  type Delivery,
  type DeviceEvents,
  DurableConsumer,
  type DurableConsumerOptions,
  deleteConsumer,
  deliveredThrough,
  eventsByDevice,
  type ParallelRunOptions,
  parseRouteConsumerName,
  REDELIVERY_BACKOFF,
  routeConsumerName,
} from "./consumer.js";
export { DEAD_LETTER_HEADERS, type DeadLetter, REPLAY_CONSUMER_HEADER, REPLAY_HEADERS, replayMsgId } from "./dead-letter.js";
export { type DeadLetterPage, type DeadLetterPageOptions, DeadLetters, type StoredDeadLetter } from "./dead-letters.js";
export {
  BusPermissionError,
  BusUnavailableError,
  KeyChangedError,
  KeyExistsError,
  MessageTooLargeError,
  PermanentError,
} from "./errors.js";
export { jsonCodec, KvBucket, type KvBucketOptions, type KvCodec, protoCodec } from "./kv.js";
export {
  BUCKETS,
  routeBucket,
  STATUS_REPORT_INTERVAL_MS,
  STATUS_TTL_MS,
  type StatusReporterOptions,
  serviceStatusBucket,
  startStatusReporter,
} from "./mesh.js";
export {
  countFailure,
  drainThroughOf,
  ensureRouteConsumer,
  type PipelineConsumerState,
  pipelineCounters,
  type RouteConsumerOptions,
  type RouteSink,
  type RouteSinkCounters,
  RouteSinks,
  type RouteSinksOptions,
  routeConsumer,
  sourceChangeDelivered,
  sourceChangePhase,
} from "./route-sinks.js";
export { parseServers, redactUrl, type ServerList } from "./servers.js";
export {
  type CloudToDeviceFilter,
  COMMAND_RESPONSE_ROOT,
  COMMAND_ROOT,
  commandFilterSubject,
  commandResponseSubject,
  commandSubject,
  DEAD_LETTER_ROOT,
  deadLetterSubject,
  decodeToken,
  type EventFilter,
  encodeToken,
  platformOfToken,
  platformToken,
  SEVERAL_DEVICES_TOKEN,
  severalDevicesSubject,
  sourceMatches,
  subjectMatches,
  subjectMayHold,
  TELEMETRY_ROOT,
  type TelemetrySelection,
  telemetryFilterSubject,
  telemetrySelection,
  telemetrySubject,
  WRITABLE_PROPERTY_ROOT,
  writablePropertyFilterSubject,
  writablePropertySubject,
} from "./subjects.js";

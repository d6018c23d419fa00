export { codeOf, expectCode } from "./codes.js";
export { type CapturedLogs, captureLogger, testLogger } from "./loggers.js";
export { freePort, type NatsServerHandle, startNatsServer } from "./nats-server.js";
export {
  type Handler,
  json,
  type RecordedRequest,
  type RecordingServer,
  type Reply,
  startRecordingServer,
  TEST_CA_PATH,
  zeroBody,
} from "./recording-server.js";
export { type StartedService, startForTest } from "./service.js";
export { type TestTransportOptions, testTransport } from "./transport.js";
export { type UntilOptions, until } from "./wait.js";

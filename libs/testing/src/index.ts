export { codeOf, expectCode } from "./codes.js";
export { type Collected, collectInBackground, expectExactlyOnce } from "./collect.js";
export { TEST_KEYS, TEST_ROLES, type TestRole, testIdentities, testIdentitiesFile } from "./identities.js";
export { type CapturedLogs, captureLogger, testLogger } from "./loggers.js";
export { comparableMessage } from "./messages.js";
export { type NatsCluster, type NatsClusterNode, type NatsClusterOptions, startNatsCluster } from "./nats-cluster.js";
export { freePort, type NatsServerHandle, startNatsServer } from "./nats-server.js";
export { createTestCa, type IssueOptions, type TestCa, type TestCertificate } from "./pki.js";
export { type SeededRandom, seededRandom } from "./random.js";
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
export { type TestTransportOptions, testCredential, testTransport } from "./transport.js";
export { type UntilOptions, until } from "./wait.js";

export {
  ADMIN_PREFIX,
  type AdminFaults,
  type AdminMethod,
  type AdminRequest,
  type AdminRoute,
  type AdminSurface,
  type AdminSurfaceOptions,
  createAdminSurface,
  isAdminPath,
} from "./admin.js";
export { basicCredentials, safeEqual } from "./credentials.js";
export { BadRequestError, BodyTooLargeError, EmulatorHttpError, FaultConfigError } from "./errors.js";
export { drain, type ReadBody, readBody, send, sendJson } from "./http.js";
export {
  enumField,
  type FaultFieldParser,
  type HttpFaultConfig,
  type HttpFaultDecision,
  HttpFaultSwitch,
  type InjectOptions,
  injectHttpFault,
  intField,
  parseHttpFaultConfig,
  truncateResponse,
} from "./http-faults.js";
export { type ListeningServer, type ListenOptions, listen, urlHost } from "./listen.js";
export {
  type CertificateAndKey,
  certificateSerial,
  createCa,
  createTestPki,
  LOOPBACK_HOSTS,
  rsaKeys,
  type TestPki,
  type TestPkiOptions,
} from "./pki.js";
export { type LoggedRequest, logRequests } from "./request-log.js";
export { type SignalTarget, stopOnSignals } from "./signals.js";

export { iotcBridgeErrors } from "./errors.js";
export { groupCredential, type IotcBridgeDeps, iotcBridgeService, validateApplication } from "./iotc-bridge.js";
export { Violations } from "./validation.js";

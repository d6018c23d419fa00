export { idigiListenerErrors } from "./errors.js";
export { type IdigiListenerDeps, idigiListenerService, monitorSpec, sessionToProto } from "./idigi-listener.js";
export { validateCreateMonitor } from "./validation.js";

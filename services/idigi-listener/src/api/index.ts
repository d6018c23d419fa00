export { idigiListenerErrors } from "./errors.js";
export { type IdigiListenerDeps, idigiListenerService, monitorSpec, sessionToProto } from "./idigi-listener.js";
export * from "./validation.js";

export * from "./config.js";
export * from "./health.js";
export * from "./interceptors.js";
export * from "./logger.js";
export * from "./reflection.js";
export * from "./server.js";
export * from "./validation.js";

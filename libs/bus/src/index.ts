export * from "./bus.js";
export * from "./codec.js";
export * from "./config.js";
export * from "./consumer.js";
export * from "./errors.js";
export * from "./kv.js";
export * from "./mesh.js";
export * from "./subjects.js";

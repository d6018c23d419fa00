/** The gateway: its starter and settings. */

export type { Backend } from "./backends.js";
export { type GatewayConfig, gatewayConfig } from "./config.js";
export { type Gateway, type GatewayOptions, startGateway } from "./service.js";

/** The gateway: its starter and settings. */
export { type GatewayConfig, gatewayConfig } from "./config.js";
export { type Backend, type Gateway, type GatewayOptions, startGateway } from "./service.js";

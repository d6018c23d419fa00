export { deadLetterService } from "./dead-letters.js";
export { gatewayErrors } from "./errors.js";
export { applyRoutes, routeService, sweepDrains } from "./routes.js";
export { statusService } from "./status.js";
export { telemetryService } from "./telemetry.js";

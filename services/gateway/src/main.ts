import { runMain } from "@meridian/service-kit";
import { gatewayConfig } from "./config.js";
import { startGateway } from "./service.js";

await runMain("gateway", gatewayConfig, startGateway);

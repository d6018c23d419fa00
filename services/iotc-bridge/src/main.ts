import { runMain } from "@meridian/service-kit";
import { iotcBridgeConfig } from "./config.js";
import { startIotcBridge } from "./service.js";

await runMain("iotc-bridge", iotcBridgeConfig, startIotcBridge);

import { runMain } from "@meridian/service-kit";
import { ociTwinManagerConfig } from "./config.js";
import { startOciTwinManager } from "./service.js";

await runMain("oci-twin-manager", ociTwinManagerConfig, startOciTwinManager);

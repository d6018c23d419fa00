import { runMain } from "@meridian/service-kit";
import { idigiListenerConfig } from "./config.js";
import { startIdigiListener } from "./service.js";

await runMain("idigi-listener", idigiListenerConfig, startIdigiListener);

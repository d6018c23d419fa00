import { runMain } from "@meridian/service-kit";
import { omniaReaderConfig } from "./config.js";
import { startOmniaReader } from "./service.js";

await runMain("omnia-reader", omniaReaderConfig, startOmniaReader);

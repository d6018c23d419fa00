import { runMain } from "@meridian/service-kit";
import { omfSenderConfig } from "./config.js";
import { startOmfSender } from "./service.js";

await runMain("omf-sender", omfSenderConfig, startOmfSender);

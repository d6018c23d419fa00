import { ConfigError, createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { omfSenderConfig } from "./config.js";
import { SERVICE, startOmfSender } from "./service.js";

const config = loadConfigOrExit(omfSenderConfig);
const logger = createLogger(SERVICE);
try {
  await startOmfSender(config, logger);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

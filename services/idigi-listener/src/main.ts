import { ConfigError, createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { idigiListenerConfig } from "./config.js";
import { SERVICE, startIdigiListener } from "./service.js";

const config = loadConfigOrExit(idigiListenerConfig);
const logger = createLogger(SERVICE);
try {
  await startIdigiListener(config, logger);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

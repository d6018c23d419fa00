import { ConfigError, createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { backendsFromConfig } from "./backends.js";
import { gatewayConfig } from "./config.js";
import { SERVICE, startGateway } from "./service.js";

const config = loadConfigOrExit(gatewayConfig);
const logger = createLogger(SERVICE);
try {
  await startGateway(config, logger, { backends: backendsFromConfig(config) });
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

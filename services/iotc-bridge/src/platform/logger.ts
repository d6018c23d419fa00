/** The logging the client needs: pino's shape (`logger.info(obj, msg)`), so a pino logger fits without importing pino. */
export interface DeviceLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: DeviceLogger = { debug() {}, info() {}, warn() {}, error() {} };

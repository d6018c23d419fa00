import { RouteSinks } from "@meridian/bus";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { RouteSink, type RouteSinkDeps } from "./route-sink.js";

/**
 * One RouteSink per enabled route whose sink is IoT Central (target = application id), run by the bus's RouteSinks:
 * restarted when the route changes, its options included. A route deleted with purge loses its consumer with it; a
 * DRAINING route delivers what was on the bus at the delete, then its consumer is deleted, which tells the gateway
 * the drain is over.
 */
export class SinkManager extends RouteSinks<RouteSink> {
  constructor(deps: RouteSinkDeps) {
    super({
      bus: deps.bus,
      platform: Platform.IOT_CENTRAL,
      logger: deps.logger,
      create: (route) => new RouteSink(route, deps),
      // Sorted: the same options in another order are the same route.
      fingerprint: (route) => JSON.stringify(Object.entries(route.options).sort()),
      describe: (sink) => ({ application: sink.applicationId }),
      // A drained route's sink stays in list() and the status reports until the gateway removes the route.
      listDrained: true,
    });
  }
}

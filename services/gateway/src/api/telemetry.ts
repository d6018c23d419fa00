import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Bus } from "@meridian/bus";
import { SubscribeResponseSchema, type TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { callLog } from "@meridian/service-kit";
import { randomEventId } from "./event-ids.js";
import { validatePublish, validateSubscribe } from "./validation.js";

export function telemetryService(bus: Bus): ServiceImpl<typeof TelemetryService> {
  return {
    async publish(req, ctx) {
      // Ids and receive times are filled before validation so a retried request keeps its ids.
      const now = timestampNow();
      const events = req.events;
      for (const e of events) {
        if (!e.id) e.id = randomEventId();
        if (!e.receivedTime) e.receivedTime = now;
      }
      validatePublish(events);
      const result = await bus.publishEvents(events);
      const log = callLog(ctx);
      if (log.enabled("debug")) log.logger.debug({ events: events.length, ...result }, "published");
      return { eventIds: events.map((e) => e.id), storedMessages: result.stored, duplicateMessages: result.duplicates };
    },

    async *subscribe(req, ctx) {
      validateSubscribe(req);
      if (!bus.connected) throw new ConnectError("event bus unavailable", Code.Unavailable);
      const stream = bus.subscribe(req.filter, {
        signal: ctx.signal,
        ...(req.startTime ? { startTime: timestampDate(req.startTime) } : {}),
      });
      try {
        for await (const event of stream) {
          yield create(SubscribeResponseSchema, { event });
        }
      } catch (err) {
        // The caller left or the server is stopping: the stream simply ends.
        if (ctx.signal.aborted) return;
        throw err;
      }
    },
  };
}

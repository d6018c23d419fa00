import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type Bus, STATUS_REPORT_INTERVAL_MS, STREAMS, serviceStatusBucket } from "@meridian/bus";
import {
  Health,
  ServiceStatusSchema,
  type StatusService,
  type StreamStatus,
  StreamStatusSchema,
} from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { callerOf } from "@meridian/service-kit";

/** An instance that missed this many reports is shown as stale. */
const STALE_AFTER_REPORTS = 3;

export function statusService(bus: Bus, self: { service: string; instance: string; version: string }): ServiceImpl<typeof StatusService> {
  const statuses = serviceStatusBucket(bus);
  return {
    async getStatus() {
      const gateway = create(ServiceStatusSchema, {
        ...self,
        health: bus.connected ? Health.SERVING : Health.NOT_SERVING,
        reportTime: timestampFromDate(new Date()),
      });
      if (!bus.connected) return { services: [gateway], streams: [] };
      const now = Date.now();
      const reported = (await statuses.entries())
        .map(([, s]) => s)
        .filter((s) => !(s.service === self.service && s.instance === self.instance))
        .map((s) => {
          const age = s.reportTime ? now - timestampDate(s.reportTime).getTime() : Number.POSITIVE_INFINITY;
          return age > STALE_AFTER_REPORTS * STATUS_REPORT_INTERVAL_MS ? create(ServiceStatusSchema, { ...s, health: Health.STALE }) : s;
        });
      const streams: StreamStatus[] = [];
      for (const name of Object.values(STREAMS)) {
        try {
          const info = await bus.jsm().streams.info(name);
          streams.push(
            create(StreamStatusSchema, {
              name,
              messages: BigInt(info.state.messages),
              bytes: BigInt(info.state.bytes),
              // JetStream: -1 bytes and 0 ns mean no limit.
              maxBytes: BigInt(Math.max(0, info.config.max_bytes)),
              ...(info.config.max_age > 0 ? { maxAge: durationFromMs(Math.round(info.config.max_age / 1e6)) } : {}),
              removed: BigInt(Math.max(0, info.state.last_seq - info.state.messages)),
              ...(info.state.messages > 0
                ? {
                    firstTime: timestampFromDate(new Date(info.state.first_ts)),
                    lastTime: timestampFromDate(new Date(info.state.last_ts)),
                  }
                : {}),
            }),
          );
        } catch {
          // A stream not declared yet is simply not listed.
        }
      }
      return { services: [gateway, ...reported], streams };
    },
    getCaller(_req, ctx) {
      const caller = callerOf(ctx);
      return { name: caller.name, via: caller.via, roles: [...caller.roles].sort() };
    },
  };
}

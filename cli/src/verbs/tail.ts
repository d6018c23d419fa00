import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Point, Quality, SourceFilterSchema, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { SubscribeResponseSchema, TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import type { CliContext } from "../kit/context.js";
import { protoJson } from "../kit/output.js";
import { PLATFORMS, platformName } from "./platform-names.js";

export interface TailOptions {
  platform?: string;
  connection?: string;
  device?: string;
  point?: string[];
  limit?: number;
  since?: Date;
}

export function pointValue(p: Point): string {
  switch (p.value.case) {
    case "doubleValue":
    case "intValue":
    case "boolValue":
      return String(p.value.value);
    case "stringValue":
      return JSON.stringify(p.value.value);
    default:
      return "null";
  }
}

/** One line per event: time, platform/connection/device, then name=value unit for each point. */
export function eventLine(ctx: CliContext, ev: TelemetryEvent, points: readonly Point[]): string {
  const t = ev.observedTime ? timestampDate(ev.observedTime).toISOString() : "";
  const src = ev.source ? `${platformName(ev.source.platform)}/${ev.source.connection}/${ev.source.device}` : "";
  const values = points.map((p) => {
    const text = `${p.name}=${pointValue(p)}${p.unit ? ` ${p.unit}` : ""}`;
    return p.quality === Quality.BAD ? ctx.out.paint(text, "red") : p.quality === Quality.UNCERTAIN ? ctx.out.paint(text, "yellow") : text;
  });
  const raw = points.length === 0 && ev.raw ? `raw ${ev.raw.contentType || "bytes"} (${ev.raw.data.length} B)` : "";
  return [ctx.out.paint(t, "gray"), ctx.out.paint(src, "cyan"), ...values, raw].filter(Boolean).join("  ");
}

export async function tail(ctx: CliContext, opts: TailOptions): Promise<void> {
  const filter = create(SourceFilterSchema, {
    platform: opts.platform ? PLATFORMS[opts.platform] : 0,
    connection: opts.connection ?? "",
    device: opts.device ?? "",
  });
  const wanted = opts.point && opts.point.length > 0 ? new Set(opts.point) : undefined;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  let count = 0;
  const stream = ctx
    .client(TelemetryService)
    .subscribe({ filter, ...(opts.since ? { startTime: timestampFromDate(opts.since) } : {}) }, { signal: ctx.signal });
  try {
    for await (const res of stream) {
      const ev = res.event;
      if (!ev) continue;
      const points = wanted ? ev.points.filter((p) => wanted.has(p.name)) : ev.points;
      if (wanted && points.length === 0) continue;
      // Each streamed response as protobuf JSON ({"event": ...}), its points narrowed to --point when given.
      const shown = wanted ? create(SubscribeResponseSchema, { event: { ...ev, points } }) : res;
      ctx.out.item(eventLine(ctx, ev, points), protoJson(SubscribeResponseSchema, shown));
      count += 1;
      if (count >= limit) break;
    }
  } catch (err) {
    // Ctrl-C ends a tail: what was asked for (watching) is done.
    if (ctx.signal.aborted) return;
    throw err;
  }
}

import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import {
  GetStatusResponseSchema,
  Health,
  type PipelineCounters,
  type ServiceStatus,
  StatusService,
  type StreamStatus,
} from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { CliContext, Colour } from "../kit/context.js";
import { protoJson } from "../kit/output.js";
import { ago, bytes } from "../kit/parse.js";

const HEALTH: Record<Health, [string, Colour]> = {
  [Health.UNSPECIFIED]: ["unknown", "gray"],
  [Health.SERVING]: ["serving", "green"],
  [Health.NOT_SERVING]: ["not serving", "red"],
  [Health.STALE]: ["stale", "yellow"],
};

/** A lag over this is a problem (`--problems`): the pipeline is more than two backlog checks (30 s each) behind. */
export const LAG_PROBLEM_MS = 60_000;

/** A pipeline's lag in milliseconds; undefined where it is not reported (no durable consumer, or not checked yet). */
export function lagMs(p: PipelineCounters): number | undefined {
  return p.lag ? durationMs(p.lag) : undefined;
}

/** A pipeline's lag for people: "0s", "42s", "3m10s", "2h5m", "3d4h"; "-" where it is not reported. */
export function lagText(p: PipelineCounters): string {
  const ms = lagMs(p);
  if (ms === undefined) return "-";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

const lagging = (p: PipelineCounters) => (lagMs(p) ?? 0) > LAG_PROBLEM_MS;

type PipelineRow = { service: ServiceStatus; pipeline: PipelineCounters };

export async function status(ctx: CliContext, opts: { problems?: boolean }): Promise<void> {
  const res = await ctx.client(StatusService).getStatus({}, { signal: ctx.signal });
  let services = res.services;
  let pipelines: PipelineRow[] = services.flatMap((service) => service.pipelines.map((pipeline) => ({ service, pipeline })));
  if (opts.problems) {
    services = services.filter((s) => s.health !== Health.SERVING || s.warnings.length > 0);
    pipelines = pipelines.filter(({ pipeline: p }) => p.failed > 0n || p.pending > 0n || lagging(p));
  }
  const { out } = ctx;
  if (out.format !== "table") {
    // The response as protobuf JSON; --problems keeps only the services with a problem.
    const doc = protoJson(GetStatusResponseSchema, res) as { services: unknown[] };
    if (opts.problems) {
      const keep = new Set(services);
      doc.services = doc.services.filter((_, i) => keep.has(res.services[i]!));
    }
    out.object(doc);
    return;
  }
  out.note(out.paint("SERVICES", "bold"));
  out.table(services, [
    { header: "service", value: (s) => s.service },
    { header: "instance", value: (s) => s.instance },
    { header: "version", value: (s) => s.version },
    { header: "health", value: (s) => HEALTH[s.health]?.[0] ?? String(s.health), colour: (s) => HEALTH[s.health]?.[1] },
    { header: "reported", value: (s) => (s.reportTime ? `${ago(timestampDate(s.reportTime))} ago` : "") },
    { header: "warnings", value: (s) => s.warnings.map((w) => `${w.kind}: ${w.subject} ${w.message}`.trim()).join("; ") },
  ]);
  out.note("");
  out.note(out.paint("PIPELINES", "bold"));
  out.table(pipelines, [
    { header: "service", value: (r) => r.service.service },
    { header: "pipeline", value: (r) => r.pipeline.name },
    { header: "received", value: (r) => r.pipeline.received, align: "right" },
    { header: "delivered", value: (r) => r.pipeline.delivered, align: "right" },
    {
      header: "failed",
      value: (r) => r.pipeline.failed,
      align: "right",
      colour: (r) => (r.pipeline.failed > 0n ? "red" : undefined),
    },
    {
      header: "pending",
      value: (r) => r.pipeline.pending,
      align: "right",
      colour: (r) => (r.pipeline.pending > 0n ? "yellow" : undefined),
    },
    { header: "lag", value: (r) => lagText(r.pipeline), align: "right", colour: (r) => (lagging(r.pipeline) ? "yellow" : undefined) },
    { header: "last error", value: (r) => (r.pipeline.lastError ? truncate(r.pipeline.lastError, 80) : ""), colour: () => "red" },
  ]);
  if (opts.problems) return;
  out.note("");
  out.note(out.paint("STREAMS", "bold"));
  out.table(res.streams, [
    { header: "stream", value: (s: StreamStatus) => s.name },
    { header: "messages", value: (s) => s.messages, align: "right" },
    { header: "bytes", value: (s) => bytes(s.bytes), align: "right" },
    // Past its size or age limit a stream discards its oldest messages, read or not.
    { header: "limit", value: (s) => (s.maxBytes > 0n ? bytes(s.maxBytes) : "none"), align: "right" },
    { header: "removed", value: (s) => s.removed, align: "right" },
    { header: "oldest", value: (s) => (s.firstTime && s.messages > 0n ? `${ago(timestampDate(s.firstTime))} ago` : "") },
    { header: "newest", value: (s) => (s.lastTime && s.messages > 0n ? `${ago(timestampDate(s.lastTime))} ago` : "") },
  ]);
}

function truncate(s: string, n: number): string {
  const one = s.replace(/\s+/g, " ");
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/**
 * `/_emulator` on the kit's admin surface: health, state, reset (re-seed), faults, CA, plus the Omnia-specific
 * routes: fault scripts, counters, late points, a live tick, access rules, streaming events, settings.
 */
import { BadRequestError, createAdminSurface } from "@meridian/emulator-kit";
import type { EmulatorContext } from "../context.js";
import { type FaultConfig, parseFaultConfig, parseScript } from "../faults.js";
import { parseRateLimit } from "../rate-limit.js";
import type { Datapoint } from "../store.js";
import { formatTime, parseTime } from "../time.js";

const MAX_ADMIN_POINTS = 1_000_000;
const MAX_SEED_POINTS = 1_000_000;

export function omniaAdmin(ctx: EmulatorContext) {
  return createAdminSurface<FaultConfig>({
    state: (q) =>
      ctx.state({
        points: q.get("points") === "true",
        id: q.get("id") ?? undefined,
        maxPoints: q.get("maxPoints") ? Number(q.get("maxPoints")) : undefined,
      }),
    reset: () => {
      ctx.reset();
      return { ok: true, series: ctx.store.series.size };
    },
    faults: {
      parse: parseFaultConfig,
      add: (f) => ctx.faults.set(f),
      replace: (f) => {
        const scripts = ctx.faults.get().scripts;
        ctx.faults.clear();
        for (const s of scripts) ctx.faults.addScript(s);
        return ctx.faults.set(f);
      },
      list: () => ctx.faults.get(),
      clear: () => {
        ctx.faults.clear();
        return {};
      },
    },
    caPem: () => ctx.caPem,
    routes: [
      { method: "POST", path: "faults/scripts", handle: (r) => ({ scripts: ctx.faults.addScript(parseScript(r.json())) }) },
      { method: "GET", path: "counters", handle: () => ctx.counters },
      {
        // A different seed (or none): the store is rebuilt from it; counters, faults and rules stay.
        method: "POST",
        path: "seed",
        handle: (r) => {
          const b = r.json();
          const next = { ...ctx.seedConfig };
          if (b.seed !== undefined) {
            if (b.seed !== false && (typeof b.seed !== "string" || !b.seed))
              throw new BadRequestError("seed", "must be a non-empty string or false");
            next.seed = b.seed as string | false;
          }
          if (b.points !== undefined) {
            if (typeof b.points !== "number" || !Number.isInteger(b.points) || b.points < 0 || b.points > MAX_SEED_POINTS)
              throw new BadRequestError("points", `must be an integer in 0..${MAX_SEED_POINTS}`);
            next.points = b.points;
          }
          if (b.stepSeconds !== undefined) {
            if (typeof b.stepSeconds !== "number" || !Number.isInteger(b.stepSeconds) || b.stepSeconds < 1 || b.stepSeconds > 86_400)
              throw new BadRequestError("stepSeconds", "must be an integer in 1..86400");
            next.stepSeconds = b.stepSeconds;
          }
          if (b.endTime !== undefined) {
            if (typeof b.endTime !== "string" || parseTime(b.endTime) === undefined)
              throw new BadRequestError("endTime", "must be an RFC 3339 time");
            next.endTime = b.endTime;
          }
          ctx.seedConfig = next;
          ctx.seed();
          return { seed: next, ids: ctx.seededIds };
        },
      },
      {
        method: "POST",
        path: "counters/reset",
        handle: () => {
          ctx.counters = { ...ctx.counters, requests: 0, byOperation: {}, byPath: {}, byStatus: {}, faults: {}, authRefusals: 0 };
          return ctx.counters;
        },
      },
      {
        // Late-arriving points: inserted at any time, past ones included, as if the historian delivered them late.
        method: "POST",
        path: "datapoints",
        handle: (r) => {
          const body = r.json();
          if (!Array.isArray(body.items)) throw new BadRequestError("items", "must be an array of {id, datapoints}");
          let n = 0;
          const batches = body.items.map((item: unknown, i: number) => {
            const it = item as { id?: unknown; datapoints?: unknown };
            const s = typeof it.id === "string" ? ctx.store.get(it.id) : undefined;
            if (!s) throw new BadRequestError(`items[${i}].id`, "names no timeseries");
            if (!Array.isArray(it.datapoints)) throw new BadRequestError(`items[${i}].datapoints`, "must be an array");
            const points: Datapoint[] = it.datapoints.map((p: unknown, j: number) => {
              const d = p as { time?: unknown; timeNs?: unknown; value?: unknown; status?: unknown };
              const f = `items[${i}].datapoints[${j}]`;
              const t =
                typeof d.timeNs === "string" && /^-?\d+$/.test(d.timeNs)
                  ? BigInt(d.timeNs)
                  : typeof d.time === "string"
                    ? parseTime(d.time)
                    : undefined;
              if (t === undefined) throw new BadRequestError(`${f}.time`, "must be an RFC 3339 time (or timeNs, decimal ns)");
              if (typeof d.value !== "number") throw new BadRequestError(`${f}.value`, "must be a number");
              const status = d.status ?? 192;
              if (typeof status !== "number" || !Number.isInteger(status) || status < 0)
                throw new BadRequestError(`${f}.status`, "must be an integer >= 0");
              return { t, value: d.value, status };
            });
            n += points.length;
            if (n > MAX_ADMIN_POINTS) throw new BadRequestError("items", `at most ${MAX_ADMIN_POINTS} points per call`);
            return { s, points };
          });
          for (const b of batches) ctx.write(b.s, b.points);
          ctx.counters.latePoints += n;
          return { inserted: n };
        },
      },
      {
        method: "POST",
        path: "live/tick",
        handle: () => {
          const t = ctx.liveTick();
          return { time: formatTime(t), timeNs: t.toString(), series: ctx.liveIds };
        },
      },
      {
        method: "POST",
        path: "access/deny",
        handle: (r) => {
          const b = r.json();
          const rule: { facility?: string; id?: string } = {};
          if (typeof b.facility === "string") rule.facility = b.facility;
          if (typeof b.id === "string") rule.id = b.id;
          if (!rule.facility && !rule.id) throw new BadRequestError("body", "needs facility or id");
          ctx.denied.push(rule);
          return { denied: ctx.denied };
        },
      },
      {
        method: "DELETE",
        path: "access",
        handle: () => {
          ctx.denied = [];
          return { denied: [] };
        },
      },
      {
        method: "PUT",
        path: "rate-limit",
        handle: (r) => {
          const b = r.json();
          try {
            ctx.rateLimiter.set(parseRateLimit(b));
          } catch (err) {
            throw new BadRequestError("body", (err as Error).message);
          }
          return { rateLimit: ctx.rateLimiter.limit };
        },
      },
      {
        method: "DELETE",
        path: "rate-limit",
        handle: () => {
          ctx.rateLimiter.set(undefined);
          return { rateLimit: null };
        },
      },
      { method: "GET", path: "streaming/events", handle: () => ({ events: ctx.streamEvents }) },
      {
        method: "GET",
        path: "config",
        handle: () => {
          const { onRequest: _o, faults: _f, ...o } = ctx.opts;
          return { ...o, auth: { ...o.auth, caPem: o.auth.caPem ? "(set)" : undefined } };
        },
      },
    ],
  });
}

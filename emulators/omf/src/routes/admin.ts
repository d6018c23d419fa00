/** The OMF emulator's `/_emulator` surface: the kit's common routes plus counters, token expiry and the settings. */
import { type AdminSurface, createAdminSurface, EmulatorHttpError } from "@meridian/emulator-kit";
import type { EmulatorContext } from "../context.js";
import { type FaultConfig, parseFaultConfig } from "../faults.js";
import { applySettings, parseSettingsPatch } from "../settings.js";

function arrivalsOf(ctx: EmulatorContext) {
  if (!ctx.arrivals) throw new EmulatorHttpError(404, "arrivals are not recorded: start with OMF_EMULATOR_RECORD_ARRIVALS=true");
  return ctx.arrivals;
}

export function omfAdmin(ctx: EmulatorContext): AdminSurface {
  return createAdminSurface<FaultConfig>({
    state: (q) =>
      ctx.state({
        values: q.get("values") !== "false",
        maxValues: q.get("maxValues") ? Number(q.get("maxValues")) : undefined,
        scope: q.get("scope") ?? undefined,
      }),
    reset: () => {
      ctx.reset();
      return { ok: true };
    },
    faults: {
      parse: parseFaultConfig,
      add: (f) => ctx.faults.set(f),
      replace: (f) => {
        ctx.faults.clear();
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
      { method: "GET", path: "counters", handle: () => ctx.counters },
      { method: "GET", path: "arrivals", handle: () => arrivalsOf(ctx).snapshot() },
      { method: "GET", path: "arrivals/clock", handle: () => arrivalsOf(ctx).clock() },
      {
        method: "DELETE",
        path: "arrivals",
        handle: () => {
          // A long bench run would otherwise hold every value it sent: its phases start from empty series instead.
          arrivalsOf(ctx).clear();
          const values = ctx.store.clearValues();
          return { ok: true, valuesCleared: values };
        },
      },
      { method: "POST", path: "tokens/expire", handle: () => ({ expired: ctx.tokens.expireAll() }) },
      { method: "GET", path: "settings", handle: () => ctx.settings },
      { method: "POST", path: "settings", handle: (r) => applySettings(ctx.settings, parseSettingsPatch(r.json())) },
      { method: "GET", path: "operations", handle: () => ({ operations: [...ctx.operations.values()] }) },
      {
        method: "GET",
        path: /^operations\/([^/]+)$/,
        handle: (r) => {
          const op = [...ctx.operations.values()].find((o) => o.operationId.toLowerCase() === r.params[0]);
          if (!op) throw new EmulatorHttpError(404, `no operation ${r.params[0]}`);
          return op;
        },
      },
      {
        method: "GET",
        path: "config",
        handle: () => {
          const o = ctx.opts;
          return {
            tls: o.tls,
            piDataServerName: o.piDataServerName,
            piUsers: o.piUsers.map((u) => ({ username: u.username, readOnly: !!u.readOnly })),
            piCsrfDefense: o.piCsrfDefense,
            piCsrfStatus: o.piCsrfStatus,
            adhClients: o.adhClients.map((c) => c.clientId),
            adhTenantId: o.adhTenantId ?? null,
            tokenLifetimeSeconds: o.tokenLifetimeSeconds,
            maxBodyBytes: o.maxBodyBytes,
            maxInflatedBytes: o.maxInflatedBytes,
            settings: ctx.settings,
          };
        },
      },
    ],
  });
}

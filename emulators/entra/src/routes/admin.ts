/**
 * The Entra emulator's `/_emulator` surface: the kit's health, state, reset, faults and CA, plus what a test or the
 * compose stack needs to drive the identity side — approve or decline a device code, rotate the signing key, change
 * lifetimes, register an application, revoke refresh tokens, read the counters.
 */
import {
  type AdminSurface,
  BadRequestError,
  createAdminSurface,
  EmulatorHttpError,
  type HttpFaultConfig,
  parseHttpFaultConfig,
} from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import { z } from "zod";
import { ApplicationSchema } from "../config.js";
import type { EmulatorContext, Settings } from "../context.js";

/** Bounds for settings changed at run time: a token of 0 s or of a year is a mistake, not a test. */
export const SettingsPatch = z
  .object({
    tokenLifetimeSeconds: z.number().int().min(1).max(86_400),
    refreshTokenLifetimeSeconds: z
      .number()
      .int()
      .min(1)
      .max(365 * 86_400),
    deviceCodeLifetimeSeconds: z.number().int().min(1).max(3600),
    deviceCodeIntervalSeconds: z.number().int().min(1).max(60),
    enforcePollingInterval: z.boolean(),
    authorizationCodeLifetimeSeconds: z.number().int().min(1).max(600),
  })
  .partial()
  .strict();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new BadRequestError(issue.path.join(".") || "body", issue.message);
}

const username = (body: Record<string, unknown>): string | undefined => {
  if (body.username === undefined) return undefined;
  if (typeof body.username !== "string" || !body.username) throw new BadRequestError("username", "must be a non-empty string");
  return body.username;
};

export function entraAdmin(ctx: EmulatorContext, logger?: Logger): AdminSurface {
  const deviceCode = (userCode: string) => {
    const dc = ctx.deviceCodeByUserCode(userCode);
    if (!dc) throw new EmulatorHttpError(404, `no device code with user code ${userCode.toUpperCase()}`);
    if (dc.status !== "pending") throw new EmulatorHttpError(409, `device code ${dc.userCode} is ${dc.status}`);
    if (dc.expiresAt <= Date.now() / 1000) throw new EmulatorHttpError(409, `device code ${dc.userCode} has expired`);
    return dc;
  };
  return createAdminSurface<HttpFaultConfig>({
    state: () => ctx.state(),
    reset: () => {
      ctx.reset();
      return { ok: true };
    },
    faults: {
      parse: (body) => parseHttpFaultConfig(body),
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
    logger,
    routes: [
      { method: "GET", path: "counters", handle: () => ctx.counters },
      { method: "GET", path: "device-codes", handle: () => ctx.listDeviceCodes() },
      {
        method: "POST",
        path: /^device-codes\/([a-z0-9]{1,32})\/approve$/,
        handle: (r) => {
          const dc = deviceCode(r.params[0]!);
          const name = username(r.json());
          const user = ctx.directory.user(name);
          if (!user) throw new BadRequestError("username", `no user ${name}`);
          dc.status = "approved";
          dc.user = user;
          return { userCode: dc.userCode, status: dc.status, user: user.username };
        },
      },
      {
        method: "POST",
        path: /^device-codes\/([a-z0-9]{1,32})\/decline$/,
        handle: (r) => {
          const dc = deviceCode(r.params[0]!);
          dc.status = "declined";
          return { userCode: dc.userCode, status: dc.status };
        },
      },
      {
        method: "POST",
        path: "keys/rotate",
        handle: async (r) => {
          const body = r.json();
          if (body.dropPrevious !== undefined && typeof body.dropPrevious !== "boolean")
            throw new BadRequestError("dropPrevious", "must be a boolean");
          const kid = await ctx.keys.rotate(body.dropPrevious === true);
          return { kid, keys: ctx.keys.summary() };
        },
      },
      { method: "GET", path: "settings", handle: () => ctx.settings },
      {
        method: "PUT",
        path: "settings",
        handle: (r) => {
          const patch = parse(SettingsPatch, r.json()) as Partial<Settings>;
          Object.assign(ctx.settings, patch);
          return ctx.settings;
        },
      },
      {
        method: "POST",
        path: "applications",
        handle: (r) => {
          const body = parse(ApplicationSchema, r.json());
          let app: ReturnType<typeof ctx.directory.addApplication>;
          try {
            app = ctx.directory.addApplication(body);
          } catch (err) {
            throw new BadRequestError("certificates", (err as Error).message);
          }
          return { clientId: app.clientId, servicePrincipalId: app.servicePrincipalId, certificates: app.certificates.map((c) => c.x5t) };
        },
      },
      {
        method: "POST",
        path: "refresh-tokens/revoke",
        handle: (r) => ({ revoked: ctx.revokeRefreshTokens(username(r.json())) }),
      },
    ],
  });
}

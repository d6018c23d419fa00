import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Who made a call, as authentication established it. */
export interface Caller {
  /** The identity's name: an API key's name, a token's subject, a certificate identity's name. Logged; never a secret. */
  name: string;
  /** How the caller proved it: an API key, a JWT bearer token, a verified client certificate; "anonymous" only with AUTH_MODE=disabled. */
  via: "api-key" | "jwt" | "certificate" | "anonymous";
  roles: ReadonlySet<string>;
}

export const NO_CALLER: Caller = Object.freeze({ name: "", via: "anonymous", roles: new Set<string>() });

/** Set by the auth interceptor for every authenticated call. */
export const callerKey = createContextKey<Caller>(NO_CALLER, { description: "authenticated caller" });

/** The caller of the current call (handlers use it for audit fields and per-caller decisions). */
export function callerOf(ctx: Pick<HandlerContext, "values">): Caller {
  return ctx.values.get(callerKey);
}

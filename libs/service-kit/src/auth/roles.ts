/**
 * The roles an RPC can require (declared on the RPC in its contract: `option (meridian.auth.v1.access)`), plus
 * `metrics:read` for /metrics when it is restricted. A caller holding "*" holds every role. One list, so a typo in
 * an identities file or a contract is an error rather than a role nobody can hold.
 */
export const ROLES = [
  "telemetry:read",
  "telemetry:publish",
  "routes:read",
  "routes:admin",
  "platform:read",
  "platform:admin",
  "status:read",
  "deadletters:read",
  "deadletters:admin",
  "metrics:read",
] as const;

export type Role = (typeof ROLES)[number];
export const ALL_ROLES = "*";

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Whether a set of granted roles (possibly holding "*") includes `role`; "<area>:admin" includes "<area>:read". */
export function holds(granted: ReadonlySet<string>, role: string): boolean {
  if (granted.has(ALL_ROLES) || granted.has(role)) return true;
  return role.endsWith(":read") && granted.has(`${role.slice(0, -":read".length)}:admin`);
}

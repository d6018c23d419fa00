import { type DescMethod, getOption, hasOption } from "@bufbuild/protobuf";
import { access } from "@meridian/contracts/meridian/auth/v1/access_pb";

/** The role an RPC requires, read from its contract (the same option the servers enforce). */
export function roleOf(method: DescMethod): string | undefined {
  return hasOption(method, access) ? getOption(method, access).role : undefined;
}

/**
 * Whether granted roles include `role`: "*" holds every role, "<area>:admin" includes "<area>:read" (the rule of
 * meridian.auth.v1.AccessRule). Only for showing what a caller may do: the server decides every call.
 */
export function holds(granted: readonly string[], role: string): boolean {
  if (granted.includes("*") || granted.includes(role)) return true;
  return role.endsWith(":read") && granted.includes(`${role.slice(0, -":read".length)}:admin`);
}

/** Whether the caller may call `method`; true while its roles are unknown (the API still refuses what it must). */
export function mayCall(granted: readonly string[] | undefined, method: DescMethod): boolean {
  const role = roleOf(method);
  return granted === undefined || role === undefined || holds(granted, role);
}

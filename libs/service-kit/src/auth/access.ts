import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import { type AccessRule, access } from "@meridian/contracts/meridian/auth/v1/access_pb";
import { isRole } from "./roles.js";

/** Services every server registers itself, which carry no Meridian access rule: health is open to probes. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";
export const REFLECTION_SERVICES: ReadonlySet<string> = new Set([
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

const cache = new WeakMap<DescMethod, AccessRule | undefined>();

/** The method's access rule from its contract, or undefined when it declares none. */
export function accessRule(method: DescMethod): AccessRule | undefined {
  if (cache.has(method)) return cache.get(method);
  const rule = hasOption(method, access) ? getOption(method, access) : undefined;
  cache.set(method, rule);
  return rule;
}

/**
 * Refuses to serve a method without a valid access rule: a new RPC cannot be born open, and a misspelt role (which
 * nobody could hold) is caught at start, not at the first call.
 */
export function assertAccessRules(services: readonly DescService[]): void {
  const problems: string[] = [];
  for (const service of services) {
    if (service.typeName === HEALTH_SERVICE || REFLECTION_SERVICES.has(service.typeName)) continue;
    for (const method of service.methods) {
      const rule = accessRule(method);
      const where = `${service.typeName}.${method.name}`;
      if (!rule) problems.push(`${where} declares no (meridian.auth.v1.access) role`);
      else if (!isRole(rule.role)) problems.push(`${where} requires unknown role "${rule.role}"`);
    }
  }
  if (problems.length > 0) throw new Error(`refusing to serve RPCs without a valid access rule:\n  ${problems.join("\n  ")}`);
}

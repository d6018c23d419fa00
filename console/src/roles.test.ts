import { DeadLetterService } from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { describe, expect, it } from "vitest";
import { holds, mayCall, roleOf } from "./roles.js";

describe("roles", () => {
  it("reads an RPC's role from its contract", () => {
    expect(roleOf(RouteService.method.createRoute)).toBe("routes:admin");
    expect(roleOf(DeadLetterService.method.listDeadLetters)).toBe("deadletters:read");
  });

  it("'*' holds every role, '<area>:admin' includes '<area>:read' and nothing else", () => {
    expect(holds(["*"], "routes:admin")).toBe(true);
    expect(holds(["routes:admin"], "routes:read")).toBe(true);
    expect(holds(["routes:read"], "routes:admin")).toBe(false);
    expect(holds(["routes:admin"], "deadletters:read")).toBe(false);
    expect(holds(["status:admin"], "status:read")).toBe(true);
  });

  it("allows an action while the roles are unknown and refuses it once they are known to lack its role", () => {
    expect(mayCall(undefined, RouteService.method.createRoute)).toBe(true);
    expect(mayCall(["routes:read"], RouteService.method.createRoute)).toBe(false);
    expect(mayCall(["routes:read"], RouteService.method.listRoutes)).toBe(true);
  });
});

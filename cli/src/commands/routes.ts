import { type Command, Option } from "commander";
import type { CliContext } from "../kit/context.js";
import { collect, parseRevision, parseTime } from "../kit/parse.js";
import { PLATFORM_NAMES } from "../verbs/platform-names.js";
import type { RouteCreateOptions, RouteUpdateOptions } from "../verbs/routes.ts";

export function registerRoutes(program: Command, ctx: () => CliContext): void {
  const routes = program
    .command("routes")
    .description("routes: which telemetry (a source filter) goes to which sink platform and target")
    .addHelpText(
      "after",
      `
Examples:
  meridian routes list
  meridian routes create idigi-to-pi --source-platform idigi --sink omf --target pi
  meridian routes create --file route.yaml
  meridian routes update idigi-to-pi --source-connection plant-8 --option lingerMs=200
  meridian routes delete idigi-to-pi --purge`,
    );

  routes
    .command("create")
    .description("create a route from flags, or from a JSON/YAML file (a Route in proto JSON, or {routes: [Route, …]})")
    .argument("[id]", "the route's id (^[a-z][a-z0-9-]{0,62}$); overrides the file's")
    .option("-f, --file <path>", "a JSON or YAML file in the proto JSON shape of meridian.route.v1.Route")
    .option("--name <text>", "display name")
    .addOption(new Option("--source-platform <platform>", "only telemetry from this platform").choices(PLATFORM_NAMES))
    .option("--source-connection <name>", "only telemetry of this connection")
    .option("--source-device <id>", "only telemetry of this device")
    .addOption(new Option("--sink <platform>", "the sink platform").choices(PLATFORM_NAMES))
    .option("--target <name>", "the sink's target (an OMF endpoint, an iDigi monitor, …)")
    .option("--option <key=value>", "a sink option (repeatable)", collect)
    .option("--disabled", "create it disabled")
    .option("--start <time>", "replay from this time (a duration back, 2h, or RFC 3339); needs routes:admin", (v) => parseTime(v))
    .addHelpText(
      "after",
      `
Examples:
  meridian routes create idigi-to-pi --source-platform idigi --sink omf --target pi
  meridian routes create plant-7 --source-connection plant-7 --sink oci-iot --target twins --option batchSize=50
  meridian routes create --file route.json
  route.yaml:
    id: idigi-to-pi
    source: { platform: PLATFORM_IDIGI }
    sink: { platform: PLATFORM_OMF, target: pi }`,
    )
    .action(async (id: string | undefined, opts: RouteCreateOptions) => {
      const v = await import("../verbs/routes.js");
      await v.createRoutes(ctx(), id, opts);
    });

  routes
    .command("update")
    .description(
      "change a route's name, source, sink options or enabled state (its id, sink and start stay): read, changed, written at the revision read",
    )
    .argument("<id>", "the route's id")
    .option("--name <text>", "display name")
    .addOption(
      new Option("--source-platform <platform>", "only telemetry from this platform (any: every one)").choices(["any", ...PLATFORM_NAMES]),
    )
    .option("--source-connection <name>", "only telemetry of this connection ('' for any)")
    .option("--source-device <id>", "only telemetry of this device ('' for any)")
    .option("--option <key=value>", "set a sink option (repeatable)", collect)
    .option("--remove-option <key>", "remove a sink option (repeatable)", collect)
    .option("--enable", "deliver again")
    .option("--disable", "pause delivery (the route's consumer keeps its place)")
    .option("--revision <n>", "the revision you read (Route.revision): refused when the route changed since", (v) => parseRevision(v))
    .addHelpText(
      "after",
      `
A new source applies to what is stored after the change; what was stored before it is still delivered by the previous
source. A route changed by someone else since the revision read is refused (exit 6): read it again.

Examples:
  meridian routes update idigi-to-pi --source-connection plant-8
  meridian routes update idigi-to-pi --option maxBatchEvents=500 --remove-option lingerMs
  meridian routes update idigi-to-pi --disable --revision 4`,
    )
    .action(async (id: string, opts: RouteUpdateOptions) => {
      const v = await import("../verbs/routes.js");
      await v.updateRoute(ctx(), id, opts);
    });

  routes
    .command("list")
    .alias("ls")
    .description("every route with its source, sink, state and drain")
    .addHelpText("after", "\nExamples:\n  meridian routes list\n  meridian routes list -o json | jq -r '.routes[].id'")
    .action(async () => {
      const v = await import("../verbs/routes.js");
      await v.listRoutes(ctx());
    });

  routes
    .command("get")
    .description("one route")
    .argument("<id>", "the route's id")
    .addHelpText("after", "\nExamples:\n  meridian routes get idigi-to-pi\n  meridian routes get idigi-to-pi -o yaml")
    .action(async (id: string) => {
      const v = await import("../verbs/routes.js");
      await v.getRoute(ctx(), id);
    });

  routes
    .command("delete")
    .alias("rm")
    .description("delete a route: its sink delivers what it holds first (draining), or --purge drops it at once")
    .argument("<id>", "the route's id")
    .option("--purge", "remove the route and its consumer now, dropping what it holds")
    .addHelpText("after", "\nExamples:\n  meridian routes delete idigi-to-pi\n  meridian routes delete idigi-to-pi --purge")
    .action(async (id: string, opts: { purge?: boolean }) => {
      const v = await import("../verbs/routes.js");
      await v.deleteRoute(ctx(), id, opts);
    });
}

import { type Command, Option } from "commander";
import type { CliContext } from "../kit/context.js";
import { collect, intIn, parseTime } from "../kit/parse.js";
import { PLATFORM_NAMES } from "../verbs/platform-names.js";
import type { TailOptions } from "../verbs/tail.ts";

export function registerTail(program: Command, ctx: () => CliContext): void {
  program
    .command("tail")
    .description("live telemetry as it reaches the bus (Ctrl-C stops), optionally from a time in the past")
    .addOption(new Option("--platform <platform>", "only events from this platform").choices(PLATFORM_NAMES))
    .option("--connection <name>", "only events of this connection")
    .option("--device <id>", "only events of this device")
    .option("--point <name>", "only these points (repeatable); events without them are left out", collect)
    .option("--limit <n>", "stop after n events", intIn(1, 1_000_000_000))
    .option("--since <time>", "start from a time in the past: a duration (10m, 2h) or RFC 3339", (v) => parseTime(v))
    .addHelpText(
      "after",
      `
Examples:
  meridian tail
  meridian tail --platform idigi --device 00000000-00000000-00409DFF-FF000001
  meridian tail --since 10m --limit 100 -o json | jq -c '.event.points'
  meridian tail --point temperature --point pressure`,
    )
    .action(async (opts: TailOptions) => {
      const { tail } = await import("../verbs/tail.js");
      await tail(ctx(), opts);
    });
}

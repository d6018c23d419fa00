import { type Command, Option } from "commander";
import type { CliContext } from "../kit/context.js";
import { intIn, parseTime } from "../kit/parse.js";
import type { DlqFilterOptions } from "../verbs/dlq.ts";

const filterOptions = (cmd: Command): Command =>
  cmd
    .option("--consumer <name>", "only letters of this consumer (e.g. omf-idigi-to-pi)")
    .option("--route <id>", "only letters of this route's sinks")
    .option("--reason <text>", "only letters whose reason contains this text")
    .option("--since <time>", "only letters from this time on: a duration back (1h, 7d) or RFC 3339", (v) => parseTime(v))
    .option("--until <time>", "only letters before this time: a duration back or RFC 3339", (v) => parseTime(v))
    .addOption(new Option("--state <state>", "only letters not yet replayed, or replayed ones").choices(["pending", "replayed"]));

export function registerDlq(program: Command, ctx: () => CliContext): void {
  const dlq = program
    .command("dlq")
    .description("dead letters: messages a sink or source gave up on, with why; show, replay or purge them")
    .addHelpText(
      "after",
      `
Examples:
  meridian dlq list --since 1h
  meridian dlq show 1042
  meridian dlq replay 1042 1043
  meridian dlq replay --route idigi-to-pi --reason "400"
  meridian dlq purge --until 7d --yes`,
    );

  filterOptions(
    dlq
      .command("list")
      .alias("ls")
      .description("dead letters, oldest first, following pages until --limit")
      .option("--limit <n>", "at most n letters", intIn(1, 100_000), 100),
  )
    .addHelpText(
      "after",
      `
Examples:
  meridian dlq list
  meridian dlq list --consumer omf-idigi-to-pi --reason 400 --since 2h
  meridian dlq list --state pending --limit 1000 -o json | jq -r '.deadLetters[].sequence'`,
    )
    .action(async (opts: DlqFilterOptions & { limit: number }) => {
      const v = await import("../verbs/dlq.js");
      await v.listDeadLetters(ctx(), opts);
    });

  dlq
    .command("show")
    .description("one dead letter: why, where it came from, its headers and its payload")
    .argument("<sequence>", "the dead letter's sequence (from dlq list)")
    .addHelpText("after", "\nExamples:\n  meridian dlq show 1042\n  meridian dlq show 1042 -o json | jq '.batch.events'")
    .action(async (sequence: string) => {
      const v = await import("../verbs/dlq.js");
      await v.showDeadLetter(ctx(), sequence);
    });

  filterOptions(
    dlq
      .command("replay")
      .description(
        "put dead letters back on their subject for their consumer (or --to-route's), each once; -o json: {results: [...]}, every chunk's",
      )
      .argument("[sequences...]", "sequences or ranges (1042 1050-1060); or a filter")
      .option("--to-route <id>", "deliver to this route's sink instead of the original consumer"),
  )
    .addHelpText(
      "after",
      `
Without sequences, every letter the filter matches is replayed (letters not yet replayed, unless --state says
otherwise), 500 per call. Exit 1 when the gateway refused any letter (each is listed with why).

Examples:
  meridian dlq replay 1042
  meridian dlq replay 1042-1100 --to-route idigi-to-pi-v2
  meridian dlq replay --consumer omf-idigi-to-pi --since 1h`,
    )
    .action(async (sequences: string[], opts: DlqFilterOptions & { toRoute?: string }) => {
      const v = await import("../verbs/dlq.js");
      await v.replayDeadLetters(ctx(), sequences, opts);
    });

  filterOptions(
    dlq
      .command("purge")
      .description("delete dead letters for good: by sequence, by filter (--yes), or --all (--yes)")
      .argument("[sequences...]", "sequences or ranges (1042 1050-1060); or a filter")
      .option("--all", "every dead letter")
      .option("--yes", "confirm a purge by filter or --all"),
  )
    .addHelpText(
      "after",
      `
Examples:
  meridian dlq purge 1042 1043
  meridian dlq purge --consumer omf-old-route --yes
  meridian dlq purge --all --yes`,
    )
    .action(async (sequences: string[], opts: DlqFilterOptions & { all?: boolean; yes?: boolean }) => {
      const v = await import("../verbs/dlq.js");
      await v.purgeDeadLetters(ctx(), sequences, opts);
    });
}

import type { Command } from "commander";
import type { CliContext } from "../kit/context.js";

export function registerStatus(program: Command, ctx: () => CliContext): void {
  program
    .command("status")
    .description("every service instance (health, version), its pipelines' counters and the streams' sizes")
    .option("--problems", "only services that are not serving and pipelines with failures or a backlog")
    .addHelpText(
      "after",
      `
Pipelines: RECEIVED, DELIVERED, FAILED since the instance started; PENDING waiting on the bus for the pipeline;
LAG received but neither delivered, skipped nor failed yet (in the pipeline's hands).

Examples:
  meridian status
  meridian status --problems
  meridian status -o json | jq '.streams'`,
    )
    .action(async (opts: { problems?: boolean }) => {
      const { status } = await import("../verbs/status.js");
      await status(ctx(), opts);
    });
}

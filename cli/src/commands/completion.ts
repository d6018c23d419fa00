import { type Command, createArgument } from "commander";
import { completionScript, SHELLS, type Shell } from "../kit/completion.js";
import type { Io } from "../kit/runtime.js";

export function registerCompletion(program: Command, io: Io): void {
  program
    .command("completion")
    .description("print a shell completion script (bash, zsh or fish)")
    .addArgument(createArgument("<shell>", "the shell").choices(SHELLS))
    .addHelpText(
      "after",
      `
Examples:
  source <(meridian completion bash)                       # bash, this shell
  meridian completion bash > /etc/bash_completion.d/meridian
  meridian completion zsh > "\${fpath[1]}/_meridian"          # zsh
  meridian completion fish > ~/.config/fish/completions/meridian.fish`,
    )
    .action((shell: Shell) => {
      io.stdout.write(completionScript(program, shell));
    });
}

import type { Command } from "commander";
import type { Io } from "../kit/runtime.js";
import type { GlobalFlags } from "../kit/settings.js";

export function registerConfig(program: Command, io: Io): void {
  const config = program
    .command("config")
    .description("profiles: named sets of gateway URL, credential and TLS settings in the profile file")
    .addHelpText(
      "after",
      `
The profile file is $MERIDIAN_CONFIG, else ~/.config/meridian/config.yaml (written with mode 0600: it may hold keys):
  current: prod
  profiles:
    prod:  { gateway: https://meridian.example.com, apiKeyFile: ~/.meridian-key, caFile: /etc/ssl/meridian-ca.pem }
    local: { gateway: http://127.0.0.1:8080, apiKey: mrd_…, output: table, timeout: 10 }

Examples:
  meridian config set-profile local --gateway http://127.0.0.1:8080 --api-key-file ./dev-api-key
  meridian config use local
  meridian config list`,
    );
  config
    .command("set-profile")
    .description("create or change a profile from the global flags given (--gateway, --api-key-file, --ca-file, …)")
    .argument("<name>", "the profile's name")
    .option("--use", "also make it the current profile")
    .addHelpText(
      "after",
      `
Examples:
  meridian config set-profile prod --gateway https://meridian.example.com --api-key-file ~/.meridian-key --use
  meridian config set-profile prod --timeout 60 -o yaml`,
    )
    .action(async (name: string, opts: { use?: boolean }, cmd: Command) => {
      const v = await import("../verbs/config.js");
      v.setProfile(io, name, cmd.optsWithGlobals<GlobalFlags>(), opts.use === true);
    });
  config
    .command("use")
    .description("make a profile the current one")
    .argument("<name>", "the profile's name")
    .addHelpText("after", "\nExamples:\n  meridian config use prod")
    .action(async (name: string) => {
      const v = await import("../verbs/config.js");
      v.useProfile(io, name);
    });
  config
    .command("list")
    .alias("ls")
    .description("the profiles (credentials shown by kind, never in full)")
    .addHelpText("after", "\nExamples:\n  meridian config list\n  meridian config list -o json")
    .action(async (_opts: unknown, cmd: Command) => {
      const v = await import("../verbs/config.js");
      v.listProfiles(io, cmd.optsWithGlobals<GlobalFlags>());
    });
  config
    .command("delete-profile")
    .description("remove a profile")
    .argument("<name>", "the profile's name")
    .addHelpText("after", "\nExamples:\n  meridian config delete-profile old")
    .action(async (name: string) => {
      const v = await import("../verbs/config.js");
      v.deleteProfile(io, name);
    });
}

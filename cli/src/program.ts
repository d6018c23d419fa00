import { Command, CommanderError, Option } from "commander";
import { registerCompletion } from "./commands/completion.js";
import { registerConfig } from "./commands/config.js";
import { registerDlq } from "./commands/dlq.js";
import { registerRoutes } from "./commands/routes.js";
import { registerStatus } from "./commands/status.js";
import { registerTail } from "./commands/tail.js";
import type { CliContext } from "./kit/context.js";
import { CliError, EXIT } from "./kit/exit.js";
import type { Io, Runtime } from "./kit/runtime.js";
import { type GlobalFlags, OUTPUT_FORMATS, PROTOCOLS, resolveSettings, type Settings } from "./kit/settings.js";

export const EXIT_CODES_HELP = `Exit codes:
  0    done
  1    done, and the answer is no (omf verify found a difference, a replay refused letters)
  2    bad flag, argument or file: nothing was sent
  3    the gateway (or a platform behind it) cannot be reached, or did not answer in time
  4    no credential, a wrong one, or a missing role
  5    the thing named does not exist
  6    it exists already, or is in the wrong state
  7    the gateway refused the request's content
  8    any other error the gateway answered
  130  stopped by Ctrl-C before the work was done`;

const SETTINGS_HELP = `Settings (flag > environment > profile > default):
  --gateway       MERIDIAN_GATEWAY_URL    profile: gateway     default http://127.0.0.1:8080
  --api-key       MERIDIAN_API_KEY        profile: apiKey
  --api-key-file  MERIDIAN_API_KEY_FILE   profile: apiKeyFile
  --token         MERIDIAN_TOKEN          profile: token
  --profile       MERIDIAN_PROFILE        the profile file's "current"
  --output        MERIDIAN_OUTPUT         profile: output      default table
  --timeout       MERIDIAN_TIMEOUT        profile: timeout     default 30 (seconds, unary calls)
  --protocol      MERIDIAN_PROTOCOL       profile: protocol    default connect
  --ca-file, --cert-file, --key-file: MERIDIAN_CA_FILE, MERIDIAN_CERT_FILE, MERIDIAN_KEY_FILE; profile caFile, certFile, keyFile
  Profile file: $MERIDIAN_CONFIG, else ~/.config/meridian/config.yaml (meridian config --help). NO_COLOR or --no-color: no colour.`;

export type Register = (program: Command, ctx: () => CliContext) => void;

/** The verbs of the platform services (one file per area), each loaded only when its area is run or help lists them all. */
const PLATFORM_AREAS: Record<string, () => Promise<Register>> = {
  omf: async () => (await import("./commands/omf.js")).registerOmf,
  idigi: async () => (await import("./commands/idigi.js")).registerIdigi,
  iotc: async () => (await import("./commands/iotc.js")).registerIotc,
  omnia: async () => (await import("./commands/omnia.js")).registerOmnia,
  twin: async () => (await import("./commands/twin.js")).registerTwin,
};
const CORE_VERBS = new Set(["status", "tail", "routes", "dlq", "config"]);
const GLOBAL_WITH_VALUE = new Set([
  "--gateway",
  "--api-key",
  "--api-key-file",
  "--token",
  "--ca-file",
  "--cert-file",
  "--key-file",
  "--profile",
  "-o",
  "--output",
  "--timeout",
  "--protocol",
]);

/**
 * The platform areas a command line needs: none for the mesh verbs (their start-up stays small), the one named, or
 * all of them for help, completion and anything commander must name as unknown.
 */
export async function platformAreas(argv: readonly string[]): Promise<Register[]> {
  const args = argv.slice(2);
  let verb: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") break;
    if (a.startsWith("-")) {
      if (GLOBAL_WITH_VALUE.has(a)) i += 1;
      continue;
    }
    verb = a;
    break;
  }
  const wanted = verb && CORE_VERBS.has(verb) ? [] : verb && verb in PLATFORM_AREAS ? [verb] : Object.keys(PLATFORM_AREAS);
  return Promise.all(wanted.map((area) => PLATFORM_AREAS[area]!()));
}

/** Builds the command tree. `ctx` is valid inside an action only (after the global options are parsed). */
export function buildProgram(ctx: () => CliContext, io: Io, version: string, platforms: readonly Register[] = []): Command {
  const program = new Command("meridian")
    .description("The command line of Meridian: a client of the gateway for operators and scripts.")
    .version(version, "-V, --version", "print the version")
    .addOption(new Option("--gateway <url>", "the gateway's URL (http:// or https://)"))
    .addOption(new Option("--api-key <key>", "API key (mrd_…) sent as bearer credential"))
    .addOption(new Option("--api-key-file <path>", "a file holding the API key"))
    .addOption(new Option("--token <jwt>", "a JWT from your identity provider, sent as bearer credential"))
    .addOption(new Option("--ca-file <path>", "PEM CA certificates the gateway's certificate must chain to"))
    .addOption(new Option("--cert-file <path>", "PEM client certificate (mTLS)"))
    .addOption(new Option("--key-file <path>", "PEM key of the client certificate"))
    .addOption(new Option("--insecure", "do not verify the gateway's TLS certificate (warned)"))
    .addOption(new Option("--profile <name>", "a profile of the profile file"))
    .addOption(new Option("-o, --output <format>", "table for people, json or yaml for scripts").choices(OUTPUT_FORMATS))
    .addOption(new Option("--no-color", "no colour (also NO_COLOR=1)"))
    .addOption(new Option("--timeout <seconds>", "deadline of each call"))
    .addOption(new Option("--protocol <protocol>", "wire protocol to the gateway").choices(PROTOCOLS))
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      `
Examples:
  meridian status
  meridian routes list -o json
  meridian tail --platform idigi --limit 10
  meridian dlq list --since 1h
  meridian --profile prod dlq replay 1042

${SETTINGS_HELP}

${EXIT_CODES_HELP}`,
    );
  registerStatus(program, ctx);
  registerTail(program, ctx);
  registerRoutes(program, ctx);
  registerDlq(program, ctx);
  for (const register of platforms) register(program, ctx);
  registerConfig(program, io);
  registerCompletion(program, io);
  // Every subcommand reports errors the same way and never exits the process itself.
  const configure = (cmd: Command) => {
    for (const c of cmd.commands) {
      c.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
      c.configureHelp({ showGlobalOptions: true });
      configure(c);
    }
  };
  configure(program);
  return program;
}

/** Parses `argv`, runs the verb and resolves to its exit code; every failure is one `error: …` line on stderr. */
export async function run(argv: string[], io: Io, version: string): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    // A second Ctrl-C means now: the first one let the verb stop cleanly and it has not.
    if (interrupts > 1) process.exit(EXIT.interrupted);
    controller.abort(new CliError(`stopped (${signal})`, EXIT.interrupted));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let runtime: Runtime | undefined;
  let settings: Settings | undefined;
  let actionCommand: Command | undefined;
  let runtimeModule: typeof import("./kit/runtime.js") | undefined;
  const ctx = (): CliContext => {
    if (runtime) return runtime.ctx;
    if (!actionCommand || !runtimeModule) throw new Error("ctx() is called inside an action only");
    settings = resolveSettings({ flags: actionCommand.optsWithGlobals<GlobalFlags>(), env: io.env });
    runtime = runtimeModule.createRuntime(settings, io, controller.signal);
    return runtime.ctx;
  };
  const program = buildProgram(ctx, io, version, await platformAreas(argv));
  program.hook("preAction", async (_this, action) => {
    actionCommand = action;
    runtimeModule = await import("./kit/runtime.js");
  });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version asked for are 0; anything commander refused (unknown option, missing argument) is usage.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { describeError } = runtimeModule ?? (await import("./kit/runtime.js"));
    const { message, exitCode } = describeError(err, settings?.gateway, settings?.timeoutMs);
    io.stderr.write(`error: ${message}\n`);
    return exitCode;
  } finally {
    runtime?.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

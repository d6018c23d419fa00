import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram, platformAreas } from "../program.js";
import { commandTree, completionScript, SHELLS } from "./completion.js";

const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: {} };
const program = buildProgram(
  () => {
    throw new Error("not in an action");
  },
  io,
  "0.0.0",
  await platformAreas(["node", "meridian"]),
);

function verbs(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands.flatMap((c) => [[...prefix, c.name()], ...verbs(c, [...prefix, c.name()])]);
}

function hasShell(shell: string): boolean {
  try {
    execFileSync(shell, ["-c", "true"]);
    return true;
  } catch {
    return false;
  }
}

describe("completion scripts", () => {
  it("walk the whole command tree: every verb at its path, with its options", () => {
    const nodes = commandTree(program);
    for (const path of verbs(program)) {
      const parent = nodes.find((n) => n.path === path.slice(0, -1).join(" "));
      expect(parent?.children, path.join(" ")).toContain(path.at(-1));
    }
    expect(nodes.find((n) => n.path === "dlq replay")?.options).toEqual(
      expect.arrayContaining(["--to-route", "--consumer", "--gateway", "-o"]),
    );
  });

  it.each(SHELLS)("%s: the script names every verb", (shell) => {
    const script = completionScript(program, shell);
    for (const path of verbs(program)) expect(script, path.join(" ")).toContain(path.at(-1));
    for (const verb of [
      "status",
      "tail",
      "routes",
      "dlq",
      "completion",
      "config",
      "create",
      "replay",
      "purge",
      "set-profile",
      "omf",
      "idigi",
      "iotc",
      "omnia",
      "twin",
    ]) {
      expect(script).toContain(verb);
    }
  });

  it.runIf(hasShell("bash"))("bash: completes verbs, subverbs and options where the cursor stands", () => {
    const file = join(mkdtempSync(join(tmpdir(), "meridian-completion-")), "meridian.bash");
    writeFileSync(file, completionScript(program, "bash"));
    const complete = (...words: string[]) =>
      execFileSync(
        "bash",
        [
          "-c",
          `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _meridian; printf '%s\\n' "\${COMPREPLY[@]}"`,
          "_",
          file,
          "meridian",
          ...words,
        ],
        { encoding: "utf8" },
      )
        .split("\n")
        .filter(Boolean);
    expect(complete("d")).toEqual(["dlq"]);
    expect(complete("routes", "")).toEqual(["create", "update", "list", "ls", "get", "delete", "rm"]);
    expect(complete("--gateway", "http://x", "dlq", "re")).toEqual(["replay"]);
    expect(complete("routes", "delete", "--p")).toEqual(expect.arrayContaining(["--purge", "--profile", "--protocol"]));
  });

  it.runIf(hasShell("zsh"))("zsh: the script parses", () => {
    execFileSync("zsh", ["-n", "-c", completionScript(program, "zsh")]);
  });

  it.runIf(hasShell("fish"))("fish: the script parses", () => {
    execFileSync("fish", ["--no-execute", "-c", completionScript(program, "fish")]);
  });
});

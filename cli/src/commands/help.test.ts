import { Command } from "commander";
import { describe, expect, it } from "vitest";
import type { CliContext } from "../kit/context.js";
import { registerIdigi } from "./idigi.js";
import { registerIotc } from "./iotc.js";
import { registerOmf } from "./omf.js";
import { registerOmnia } from "./omnia.js";
import { registerTwin } from "./twin.js";

const AREAS = { omf: registerOmf, idigi: registerIdigi, iotc: registerIotc, omnia: registerOmnia, twin: registerTwin };

function leaves(cmd: Command, path: string[] = []): Array<{ path: string; cmd: Command }> {
  if (cmd.commands.length === 0) return [{ path: path.join(" "), cmd }];
  return cmd.commands.flatMap((c) => leaves(c, [...path, c.name()]));
}

function help(cmd: Command): string {
  let text = "";
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

describe.each(Object.entries(AREAS))("meridian %s", (area, register) => {
  const program = new Command("meridian");
  const noContext = (): CliContext => {
    throw new Error("no verb runs here");
  };
  register(program, noContext);
  const verbs = leaves(program);

  it("every verb has a description and --help with examples of itself", () => {
    expect(verbs.length).toBeGreaterThan(2);
    for (const { path, cmd } of verbs) {
      expect(cmd.description(), path).not.toBe("");
      const text = help(cmd);
      expect(text, path).toContain("Examples:");
      const examples = text
        .slice(text.indexOf("Examples:"))
        .split("\n")
        .slice(1)
        .filter((l) => l.trim() !== "");
      expect(examples.length, path).toBeGreaterThan(0);
      for (const e of examples) expect(e.trim(), path).toMatch(new RegExp(`^meridian ${area} `));
      // Each example names the verb it illustrates.
      expect(
        examples.some((e) => e.includes(`meridian ${path}`)),
        `${path}: ${examples.join(" | ")}`,
      ).toBe(true);
    }
  });

  it("no verb redefines a global option (-o, --output, --timeout, --gateway, --insecure, --profile)", () => {
    const globals = new Set([
      "-o",
      "--output",
      "--timeout",
      "--gateway",
      "--insecure",
      "--profile",
      "--api-key",
      "--token",
      "--protocol",
      "-V",
    ]);
    for (const { path, cmd } of verbs)
      for (const o of cmd.options) for (const f of [o.short, o.long]) if (f) expect(globals.has(f), `${path} ${f}`).toBe(false);
  });
});

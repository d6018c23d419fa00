import type { Command } from "commander";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** Subcommand names on the path from the root, space-separated ("" for the root). */
  path: string;
  children: string[];
  options: string[];
  descriptions: Map<string, string>;
}

/** Every command path of the tree with its subcommands and options (its own and its ancestors', as commander reads them). */
export function commandTree(root: Command): Node[] {
  const nodes: Node[] = [];
  const walk = (cmd: Command, path: string[], inherited: string[]) => {
    const own = cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
    const options = [...new Set([...inherited, ...own, "--help"])];
    const children = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    const descriptions = new Map<string, string>();
    for (const c of children) descriptions.set(c.name(), c.summary() || c.description().split("\n")[0] || "");
    nodes.push({ path: path.join(" "), children: children.flatMap((c) => [c.name(), ...c.aliases()]), options, descriptions });
    for (const c of children) walk(c, [...path, c.name()], options);
  };
  walk(root, [], []);
  return nodes;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function completionScript(root: Command, shell: Shell): string {
  const name = root.name();
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const nodes = commandTree(root);
  const children = nodes.map((n) => `    ${quote(n.path)}) echo ${quote(n.children.join(" "))} ;;`).join("\n");
  const options = nodes.map((n) => `    ${quote(n.path)}) echo ${quote(n.options.join(" "))} ;;`).join("\n");
  // Each shell walks the words typed so far through the tree (a word that is a subcommand of the current path descends),
  // then offers the subcommands or, after "-", the options of where it stands.
  const shared = `${fn}_children() {
  case "$1" in
${children}
  esac
}
${fn}_options() {
  case "$1" in
${options}
  esac
}
${fn}_path() {
  local path="" w c
  for w in "$@"; do
    for c in $(${fn}_children "$path"); do
      if [ "$w" = "$c" ]; then path="\${path:+$path }$w"; break; fi
    done
  done
  echo "$path"
}`;
  switch (shell) {
    case "bash":
      return `# ${name} completion for bash: source <(${name} completion bash), or save it in /etc/bash_completion.d/${name}
${shared}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local path
  path="$(${fn}_path "\${COMP_WORDS[@]:1:COMP_CWORD-1}")"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_options "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(${fn}_children "$path")" -- "$cur"))
    [ \${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o default -F ${fn} ${name}
`;
    case "zsh":
      return `#compdef ${name}
# ${name} completion for zsh: source <(${name} completion zsh), or save it as _${name} in a directory of $fpath
${shared}
${fn}() {
  local path
  path="$(${fn}_path "\${(@)words[2,CURRENT-1]}")"
  if [[ "$PREFIX" == -* ]]; then
    compadd -- \${=$(${fn}_options "$path")}
  else
    local -a subs
    subs=(\${=$(${fn}_children "$path")})
    if (( \${#subs} )); then compadd -- $subs; else _files; fi
  fi
}
compdef ${fn} ${name}
`;
    case "fish": {
      const lines = [
        `# ${name} completion for fish: ${name} completion fish > ~/.config/fish/completions/${name}.fish`,
        `function __${fn}_path`,
        `    set -l path ""`,
        `    for w in (commandline -opc)[2..-1]`,
        `        for c in (__${fn}_children "$path")`,
        `            if test "$w" = "$c"`,
        `                if test -z "$path"; set path $w; else; set path "$path $w"; end`,
        `                break`,
        `            end`,
        `        end`,
        `    end`,
        `    echo $path`,
        `end`,
        `function __${fn}_children`,
        `    switch "$argv[1]"`,
        ...nodes.map((n) => `        case ${quote(n.path)}\n            string split " " -- ${quote(n.children.join(" "))}`),
        `    end`,
        `end`,
        `function __${fn}_at`,
        `    set -l p (__${fn}_path)`,
        `    test "$p" = "$argv[1]"`,
        `end`,
        `complete -c ${name} -f`,
      ];
      for (const n of nodes) {
        for (const child of n.children) {
          const desc = n.descriptions.get(child) ?? "";
          lines.push(`complete -c ${name} -n "__${fn}_at ${quote(n.path)}" -a ${quote(child)} -d ${quote(desc)}`);
        }
        for (const opt of n.options) {
          const flag = opt.startsWith("--") ? `-l ${opt.slice(2)}` : `-s ${opt.slice(1)}`;
          lines.push(`complete -c ${name} -n "__${fn}_at ${quote(n.path)}" ${flag}`);
        }
      }
      return `${lines.join("\n")}\n`;
    }
  }
}

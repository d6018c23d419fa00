// Keeps the list of installed packages in .dockerignore: the build context holds, of node_modules, only the packages
// some image runs (every package under services/ and emulators/, and the CLI the gateway image carries).
//
//   node scripts/image-context.mjs           rewrites the list
//   node scripts/image-context.mjs --check   exits 1, naming what differs, when the list is not the current one
//   --dockerignore=<path>                   another file than the repository's .dockerignore (for its test)
//
// Why: every `docker build` sends its whole context to the daemon before the first step, cache or not, and the
// classic builder (docker-compose v1 uses it) sends it again for each image. With the host's whole install in it (the
// prebuilt target needs node_modules), that was ~250 MB and ~32 s per image, ~20 images per CI run. The runtime target
// installs its own packages and needs none of these; the prebuilt target's scripts/runtime-files.mjs fails naming a
// package the context lacks.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const file = process.argv.find((a) => a.startsWith("--dockerignore="))?.slice("--dockerignore=".length) ?? join(root, ".dockerignore");
const BEGIN = "# BEGIN installed packages the images run (written by scripts/image-context.mjs, checked by a deploy test)";
const END = "# END installed packages the images run";

const folders = ["services", "emulators"]
  .flatMap((parent) => readdirSync(join(root, parent)).map((name) => `${parent}/${name}`))
  .filter((folder) => existsSync(join(root, folder, "package.json")))
  .concat("cli")
  .sort();
const reached = execFileSync(process.execPath, [join(root, "scripts", "runtime-files.mjs"), "--list", ...folders], {
  cwd: root,
  encoding: "utf8",
})
  .split("\n")
  .filter((line) => line.length > 0);
// Only the root's node_modules is left out above; a package installed inside a listed one comes with it.
const installed = reached.filter((dir) => dir.startsWith("node_modules/") && !reached.some((p) => dir.startsWith(`${p}/`)));
// Workspace packages are links in node_modules/@meridian: the context needs the links (their files are the folders').
const block = [BEGIN, "node_modules/*", "!node_modules/@meridian", ...installed.map((dir) => `!${dir}`), END].join("\n");

const text = readFileSync(file, "utf8");
const from = text.indexOf(BEGIN);
const to = text.indexOf(END);
if (from < 0 || to < from) {
  console.error(`image-context: ${file} has no "${BEGIN}" … "${END}" block`);
  process.exit(1);
}
const current = text.slice(from, to + END.length);
if (process.argv.includes("--check")) {
  if (current === block) process.exit(0);
  const had = new Set(current.split("\n"));
  const wants = new Set(block.split("\n"));
  const missing = [...wants].filter((l) => !had.has(l));
  const extra = [...had].filter((l) => !wants.has(l));
  console.error(
    `image-context: ${file}'s package list is not current (run node scripts/image-context.mjs): ` +
      `missing ${missing.join(", ") || "nothing"}; not needed ${extra.join(", ") || "nothing"}`,
  );
  process.exit(1);
}
writeFileSync(file, text.slice(0, from) + block + text.slice(to + END.length));
console.log(`image-context: ${installed.length} installed packages for ${folders.length} image packages`);

// Copies into <out> what one workspace package (services/gateway, emulators/omf, ...) needs at run time, and
// nothing else: its package.json and built JavaScript, the same of every workspace package it imports, and the
// installed third-party packages its production dependencies reach. The image stages run it (Dockerfile), so an
// image holds no tests, sources, test keys, emulators or devDependencies, whether its node_modules came from
// `npm install` in the image or from the host's install with the devDependencies in it: the walk follows
// `dependencies` (plus optional and peer ones), never `devDependencies`, through the installed tree with Node's own
// lookup rule, so it needs no registry.
//
//   node scripts/runtime-files.mjs <package folder> <out dir> [--if-built]
//   node scripts/runtime-files.mjs --list <package folder>...
//
// Paths under <out> are the repository's (node_modules/@meridian/* links included), so a module finds its
// dependencies there exactly as it does here. --if-built: a tree that was never built (no dist/main.js) gives an
// empty <out> and a warning instead of an error; the classic Docker builder runs the prebuilt stage even for
// `--target runtime`, where the build context may hold no build. --list: prints, one per line, the installed package
// folders (node_modules/...) these packages reach, copying nothing (scripts/image-context.mjs keeps .dockerignore's
// list of them).
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = realpathSync(join(dirname(fileURLToPath(import.meta.url)), ".."));
const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const ifBuilt = process.argv.includes("--if-built");
const list = process.argv.includes("--list");
const [folder, outArg] = args;
if (list ? args.length === 0 : !folder || !outArg || args.length !== 2) {
  console.error("usage: node scripts/runtime-files.mjs <package folder, e.g. services/gateway> <out dir> [--if-built]");
  console.error("       node scripts/runtime-files.mjs --list <package folder>...");
  process.exit(64);
}
const starts = (list ? args : [folder]).map((f) => resolve(root, f));
const out = list ? "" : resolve(outArg);

for (const start of starts)
  if (!existsSync(join(start, "package.json"))) fail(`${relative(root, start)} is no package folder (no package.json)`);
if (!list && (!existsSync(join(starts[0], "dist", "main.js")) || !existsSync(join(root, "node_modules")))) {
  const what = `${folder}/dist/main.js or node_modules is missing: build on the host first (npm install && npx turbo run build)`;
  if (!ifBuilt) fail(what);
  console.warn(`runtime-files: ${what}; nothing copied, an image of this stage would not start`);
  mkdirSync(out, { recursive: true });
  process.exit(0);
}

/** Where Node finds package `name` when a module in `from` imports it: node_modules of `from`, then of each parent. */
function installedAt(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const at = join(dir, "node_modules", name);
    if (existsSync(join(at, "package.json"))) return at;
    // The image holds the repository and nothing above it, so neither does the lookup.
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

const manifests = new Map(); // real package folder → package.json
const links = new Map(); // node_modules path that is a link (workspace packages) → real folder
const missing = [];
const pending = [...starts];
while (pending.length > 0) {
  const dir = pending.pop();
  if (manifests.has(dir)) continue;
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  manifests.set(dir, manifest);
  const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
  for (const [name, meta] of Object.entries(manifest.peerDependenciesMeta ?? {})) if (meta?.optional) optional.add(name);
  const names = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  for (const name of names) {
    // Type declarations only: nothing loads them at run time, and .dockerignore keeps them out of the build context
    // (some packages, e.g. mqtt, list @types/* among their production dependencies).
    if (name.startsWith("@types/")) continue;
    const at = installedAt(name, dir);
    if (!at) {
      // An optional dependency for another platform, or an optional peer, is legitimately absent.
      if (!optional.has(name)) missing.push(`${name} (a dependency of ${relative(root, dir) || "the root"})`);
      continue;
    }
    const real = realpathSync(at);
    if (real !== at) links.set(at, real);
    pending.push(real);
  }
}
if (missing.length > 0)
  fail(`not installed: ${missing.join(", ")}. Run npm install (and check .dockerignore leaves them in the build context)`);

function isInstalled(dir) {
  return relative(root, dir).split(sep).includes("node_modules");
}

if (list) {
  // The folder a package is installed at (a link's own path for a workspace package is not one: its files are the
  // workspace folder's, in the context anyway).
  const installed = [...manifests.keys()].filter(isInstalled).map((dir) => relative(root, dir).split(sep).join("/"));
  console.log(installed.sort().join("\n"));
  process.exit(0);
}

/** Tests, TypeScript (sources and declarations), source maps: never run. */
const NEVER_RUN_DIRS = new Set(["node_modules", "test", "tests", "__tests__", "testdata", "__fixtures__", ".github"]);
const NEVER_RUN_FILE = /(^tests?\.[cm]?js|\.(test|spec)\.[cm]?[jt]sx?|\.[cm]?tsx?|\.map)$/;

/**
 * A workspace package: package.json and the dist files whose source still exists. tsc never deletes output, so a
 * host's dist can hold files of sources removed since (old test helpers among them); they are left out.
 */
function copyWorkspacePackage(dir, to) {
  const dist = join(dir, "dist");
  if (!existsSync(dist)) fail(`${relative(root, dir)} has no dist/: build it first (npx turbo run build)`);
  mkdirSync(to, { recursive: true });
  cpSync(join(dir, "package.json"), join(to, "package.json"));
  const src = join(dir, "src");
  let stale = 0;
  cpSync(dist, join(to, "dist"), {
    recursive: true,
    filter: (path) => {
      const rel = relative(dist, path);
      if (rel === "") return true;
      if (statSync(path).isDirectory()) return !NEVER_RUN_DIRS.has(rel.split(sep).pop());
      if (NEVER_RUN_FILE.test(rel.split(sep).pop()) || !/\.(m?js|cjs|json)$/.test(path)) return false;
      if (!existsSync(src)) return true;
      const base = join(src, rel).replace(/\.(m?js|cjs|json)$/, "");
      const sources = { js: [".ts", ".tsx", ".js"], mjs: [".mts", ".mjs"], cjs: [".cts", ".cjs"], json: [".json"] }[path.split(".").pop()];
      if (sources.some((ext) => existsSync(base + ext))) return true;
      stale += 1;
      return false;
    },
  });
  return stale;
}

/** An installed package: its files without tests, TypeScript, maps and its own node_modules (dependencies come on their own). */
function copyInstalledPackage(dir, to) {
  cpSync(dir, to, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (path) => {
      if (path === dir) return true;
      const name = path.slice(path.lastIndexOf(sep) + 1);
      return statSync(path, { throwIfNoEntry: false })?.isDirectory() ? !NEVER_RUN_DIRS.has(name) : !NEVER_RUN_FILE.test(name);
    },
  });
}

rmSync(out, { recursive: true, force: true });
const workspace = [];
let installed = 0;
let stale = 0;
for (const dir of manifests.keys()) {
  const rel = relative(root, dir);
  if (rel.startsWith("..")) fail(`${dir} is outside the repository`);
  if (isInstalled(dir)) {
    copyInstalledPackage(dir, join(out, rel));
    installed += 1;
  } else {
    stale += copyWorkspacePackage(dir, join(out, rel));
    workspace.push(rel);
  }
}
removeEmptyFolders(out);
for (const [at, real] of links) {
  const link = join(out, relative(root, at));
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(relative(dirname(at), real), link);
}

/** Folders that held only TypeScript or maps (zod's src/, for one) would be left empty. */
function removeEmptyFolders(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyFolders(join(dir, entry.name));
  }
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
}

function sizeOf(path) {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0);
}
console.log(
  `runtime-files: ${folder} → ${out}: workspace packages ${workspace.sort().join(", ")}; ${installed} installed packages; ` +
    `${(sizeOf(out) / 1048576).toFixed(1)} MiB${stale > 0 ? `; ${stale} stale dist files left out` : ""}`,
);

function fail(message) {
  console.error(`runtime-files: ${message}`);
  process.exit(1);
}

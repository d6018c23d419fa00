/**
 * npm run bench:console — the operations console in a browser under live telemetry (issue 16, "Measure"): time to first
 * render, time to the first live value, and the browser's memory while Live telemetry follows a connection that
 * receives BENCH_CONSOLE_RATE (1,000) events/s for BENCH_CONSOLE_SECONDS (600).
 *
 * The stack is the browser tests' own (console/test/stack.ts, loaded from source: Node strips its types): nats-server,
 * the gateway serving the built console (console/dist), omf-sender, idigi-listener and the emulators, in this process.
 * The browser is Debian's Chromium (CHROMIUM_PATH, else /usr/bin/chromium), headless, driven by Playwright, a
 * 1280×800 page as in the browser tests.
 *
 *  - firstRenderMs: the page's first contentful paint (its Paint Timing entry) on the first, cold load of `/`;
 *    signInFormMs: from navigation to the sign-in form visible; signedInMs: from pressing Sign in to the pages' menu.
 *  - firstLiveValueMs: from pressing Follow (connection "console-bench", the load already running) to the first row
 *    in the live table.
 *  - The load: Connect JSON Publish calls to the gateway of BENCH_CONSOLE_EVENTS_PER_CALL (100) events of
 *    BENCH_CONSOLE_DEVICES (10) devices × 4 points (2 doubles, an int64, a bool), observed now (so the live chart,
 *    the last minute, draws them), paced on a fixed schedule from the start.
 *  - Every BENCH_CONSOLE_SAMPLE_SECONDS (10) through the Chrome DevTools Protocol: JSHeapUsedSize and JSHeapTotalSize
 *    (Performance.getMetrics) as they are, then JSHeapUsedSize again after a forced collection
 *    (HeapProfiler.collectGarbage: what the page holds, without the collector's saw-tooth), DOM nodes; the RSS and
 *    PSS of the page's renderer (of Chromium's renderers, the one that used the most CPU) and the PSS of all Chromium's
 *    processes summed (pids and types from SystemInfo.getProcessInfo, VmRSS from /proc/<pid>/status, Pss from
 *    /proc/<pid>/smaps_rollup); the events the page shows (its `data-events` count) and the events acknowledged so far.
 *    Chromium's CPU over the load, per process type (SystemInfo.getProcessInfo's cpuTime), in % of one core.
 *  - Kept up: after the load the page must show every acknowledged event within BENCH_CONSOLE_CATCH_UP_SECONDS (30),
 *    except those published before its stream opened (at most the load's rate × the time from the load's start to the
 *    first row). Per sample, `behindEvents` is how many acknowledged events the page had not shown yet (that number
 *    subtracted).
 *  - Growth after BENCH_CONSOLE_WARMUP_SECONDS (60; the page's de-duplication set fills in 50 s at 1k events/s) of the
 *    heap after collection and of the page renderer's RSS, judged as bench:soak judges RSS (growth.ts):
 *    BENCH_CONSOLE_MAX_GROWTH (1.2), BENCH_CONSOLE_MAX_SLOPE_MIB_PER_MIN (1), BENCH_CONSOLE_MIN_RISE_MIB (4); also the
 *    slope over the whole window after the warm-up.
 * The run fails (exit 1) on growth, on a page that did not keep up, on a refused call, or on an error in the page.
 * Appends one JSON object to tests/bench/results/console.jsonl and prints it. A smoke run:
 * BENCH_CONSOLE_SECONDS=30 BENCH_CONSOLE_WARMUP_SECONDS=5 BENCH_CONSOLE_SAMPLE_SECONDS=2 BENCH_RESULTS_DIR=/tmp/….
 * To see what the page keeps: BENCH_CONSOLE_HEAP_SNAPSHOTS=<folder> writes a heap snapshot of the page at the first
 * sample after the warm-up and one at the end of the load, and console-heap-diff.json (heap-snapshot.ts): the kinds
 * of objects that grew most between them and the retainer paths of a few new ones. A snapshot pauses the page for
 * seconds, so a run with them is for diagnosis, not for its numbers.
 */
import { writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { registerHooks } from "node:module";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { TEST_KEYS } from "@meridian/testing";
import { type CDPSession, chromium, type Page } from "@playwright/test";
import { envNumber, median, postJson } from "./common.js";
import { judgeGrowth, slope } from "./growth.js";
import { diffHeapSnapshots, writeHeapSnapshot } from "./heap-snapshot.js";
import { REPO_ROOT } from "./processes.js";
import { appendResult } from "./results.js";
import { procPssMiB, procRssMiB } from "./sampler.js";

const RATE = envNumber("BENCH_CONSOLE_RATE", 1000, 1, 20_000);
const SECONDS = envNumber("BENCH_CONSOLE_SECONDS", 600, 5, 3600);
const SAMPLE_SECONDS = envNumber("BENCH_CONSOLE_SAMPLE_SECONDS", 10, 1, 600);
const WARMUP_SECONDS = envNumber("BENCH_CONSOLE_WARMUP_SECONDS", 60, 0, 3600);
const EVENTS_PER_CALL = envNumber("BENCH_CONSOLE_EVENTS_PER_CALL", 100, 1, 1000);
const DEVICES = envNumber("BENCH_CONSOLE_DEVICES", 10, 1, 1000);
const CATCH_UP_SECONDS = envNumber("BENCH_CONSOLE_CATCH_UP_SECONDS", 30, 1, 600);
const BOUNDS = {
  maxGrowth: envNumber("BENCH_CONSOLE_MAX_GROWTH", 1.2, 1.01, 10),
  maxSlopeMiBPerMin: envNumber("BENCH_CONSOLE_MAX_SLOPE_MIB_PER_MIN", 1, 0.01, 10_000),
  minRiseMiB: envNumber("BENCH_CONSOLE_MIN_RISE_MIB", 4, 0, 10_000),
};
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** A folder: heap snapshots of the page at the end of the warm-up and at the end of the load, and what grew between. */
const HEAP_SNAPSHOTS = process.env.BENCH_CONSOLE_HEAP_SNAPSHOTS || undefined;
/** Calls in flight at most; past it the schedule waits (and ticksBehindSchedule says so). */
const MAX_IN_FLIGHT = 64;
const CONNECTION = "console-bench";
const MiB = 1024 * 1024;

const round1 = (x: number) => Math.round(x * 10) / 10;

// ---- the load

let eventCounter = 0;
const runTag = Date.now().toString(36);

function publishBody(): string {
  const observed = new Date().toISOString();
  const parts: string[] = [];
  for (let j = 0; j < EVENTS_PER_CALL; j++) {
    const n = eventCounter++;
    parts.push(
      `{"id":"${CONNECTION}-${runTag}-${n}","source":{"platform":"PLATFORM_API","connection":"${CONNECTION}","device":"dev-${n % DEVICES}"},` +
        `"observedTime":"${observed}",` +
        `"points":[{"name":"pressure","unit":"bar","doubleValue":${4 + (n % 100) / 100}},{"name":"temperature","unit":"degC","doubleValue":${80 + (n % 50) / 10}},` +
        `{"name":"cycle_count","intValue":"${n}"},{"name":"running","boolValue":${n % 7 !== 0}}]}`,
    );
  }
  return `{"events":[${parts.join(",")}]}`;
}

/** Publishes at RATE on a fixed schedule from start() until stop(); counts what the gateway acknowledged. */
function loadGenerator(gatewayUrl: string) {
  const port = Number(new URL(gatewayUrl).port);
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  const intervalMs = (1000 * EVENTS_PER_CALL) / RATE;
  const refusedBy: Record<string, number> = {};
  let acked = 0;
  let sent = 0;
  let behind = 0;
  let stopping = false;
  let startedAt = 0;
  let stoppedAt = 0;
  const sends = new Set<Promise<void>>();
  let loop: Promise<void> | undefined;
  const run = async () => {
    for (let k = 0; !stopping; k++) {
      const wait = startedAt + k * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -intervalMs) behind++;
      if (stopping) break;
      while (sends.size >= MAX_IN_FLIGHT) await Promise.race(sends);
      sent += EVENTS_PER_CALL;
      const p = postJson(
        agent,
        {
          port,
          path: "/meridian.telemetry.v1.TelemetryService/Publish",
          headers: { authorization: `Bearer ${TEST_KEYS["telemetry:publish"]}` },
        },
        publishBody(),
        30_000,
      ).then((outcome) => {
        if (outcome === 200) acked += EVENTS_PER_CALL;
        else refusedBy[String(outcome)] = (refusedBy[String(outcome)] ?? 0) + EVENTS_PER_CALL;
      });
      sends.add(p);
      void p.finally(() => sends.delete(p));
    }
    await Promise.all(sends);
  };
  return {
    start() {
      startedAt = performance.now();
      loop = run();
    },
    async stop() {
      stopping = true;
      stoppedAt = performance.now();
      await loop;
      agent.destroy();
    },
    acked: () => acked,
    summary: () => {
      const seconds = (stoppedAt - startedAt) / 1000;
      const refused = Object.values(refusedBy).reduce((a, b) => a + b, 0);
      return {
        sent,
        acked,
        refused,
        refusedBy,
        seconds: round1(seconds),
        achievedEventsPerSec: Math.round(acked / seconds),
        ticksBehindSchedule: behind,
      };
    },
  };
}

// ---- the browser's figures

interface Sample {
  /** Seconds since the load started. */
  t: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  heapAfterGcMiB: number;
  /** The page's renderer (the renderer that used the most CPU so far): RSS and PSS. */
  rendererRssMiB: number;
  rendererPssMiB: number;
  /** Every Chromium process's PSS, summed (RSS would count their shared memory once per process). */
  chromiumPssMiB: number;
  chromiumProcesses: number;
  domNodes: number;
  /** Events the page shows (its count), and events the gateway acknowledged, at this moment. */
  shown: number;
  acked: number;
}

async function metrics(cdp: CDPSession): Promise<Record<string, number>> {
  const { metrics: list } = await cdp.send("Performance.getMetrics");
  return Object.fromEntries(list.map((m) => [m.name, m.value]));
}

/** Chromium's processes now: pid, type and CPU seconds so far, and their RSS (VmRSS) in MiB. */
async function chromiumProcesses(browserCdp: CDPSession) {
  const { processInfo } = await browserCdp.send("SystemInfo.getProcessInfo");
  return processInfo.map((p) => ({ pid: p.id, type: p.type, cpuSeconds: p.cpuTime }));
}

async function shownEvents(page: Page): Promise<number> {
  return Number((await page.getByTestId("stream-state").getAttribute("data-events")) ?? 0);
}

// ---- the run

/**
 * The stack's own relative imports name `./x.js` (TypeScript's convention) for files that are `./x.ts` on disk: Node
 * strips types but does not map the extension, so a `.js` import from a `.ts` file under console/test/ that is not
 * found is resolved to its `.ts` twin.
 */
function resolveStackImports() {
  const consoleTest = pathToFileURL(join(REPO_ROOT, "console", "test")).href;
  registerHooks({
    resolve(specifier, context, next) {
      try {
        return next(specifier, context);
      } catch (err) {
        const fromStack = context.parentURL?.startsWith(consoleTest) && context.parentURL.endsWith(".ts");
        if (!fromStack || !specifier.startsWith(".") || !specifier.endsWith(".js")) throw err;
        return next(`${specifier.slice(0, -3)}.ts`, context);
      }
    },
  });
}

async function main() {
  resolveStackImports();
  const stackModule = pathToFileURL(join(REPO_ROOT, "console", "test", "stack.ts")).href;
  const { default: startStack } = (await import(stackModule)) as { default: () => Promise<() => Promise<void>> };
  const stopStack = await startStack();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  try {
    const gatewayUrl = process.env.CONSOLE_URL!;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: gatewayUrl });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`console.error: ${m.text()}`);
    });
    const cdp = await context.newCDPSession(page);
    await cdp.send("Performance.enable");
    const browserCdp = await browser.newBrowserCDPSession();

    // First render and sign-in, cold.
    const navStart = performance.now();
    await page.goto("/");
    await page.getByLabel("API key").waitFor();
    const signInFormMs = Math.round(performance.now() - navStart);
    const fcp = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
    await page.getByLabel("API key").fill(TEST_KEYS.admin);
    const signInStart = performance.now();
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("navigation", { name: "Pages" }).waitFor();
    const signedInMs = Math.round(performance.now() - signInStart);

    await page.getByRole("link", { name: "Live telemetry" }).click();
    await page.getByLabel("Connection").fill(CONNECTION);
    const load = loadGenerator(gatewayUrl);
    const cpuBefore = await chromiumProcesses(browserCdp);
    load.start();
    const loadStart = performance.now();
    await page.getByRole("button", { name: "Follow" }).click();
    const followAt = performance.now();
    await page.locator("tr[data-point]").first().waitFor({ timeout: 30_000 });
    const firstLiveValueMs = Math.round(performance.now() - followAt);
    const streamOpenedBy = (performance.now() - loadStart) / 1000;

    const samples: Sample[] = [];
    const sampleNow = async (): Promise<Sample> => {
      const t = round1((performance.now() - loadStart) / 1000);
      const shown = await shownEvents(page);
      const acked = load.acked();
      const before = await metrics(cdp);
      await cdp.send("HeapProfiler.collectGarbage");
      const after = await metrics(cdp);
      const procs = await chromiumProcesses(browserCdp);
      const renderer = procs.filter((p) => p.type === "renderer").sort((a, b) => b.cpuSeconds - a.cpuSeconds)[0];
      const s: Sample = {
        t,
        heapUsedMiB: round1((before.JSHeapUsedSize ?? 0) / MiB),
        heapTotalMiB: round1((before.JSHeapTotalSize ?? 0) / MiB),
        heapAfterGcMiB: round1((after.JSHeapUsedSize ?? 0) / MiB),
        rendererRssMiB: round1(renderer ? (procRssMiB(renderer.pid) ?? 0) : 0),
        rendererPssMiB: round1(renderer ? (procPssMiB(renderer.pid) ?? 0) : 0),
        chromiumPssMiB: round1(procs.reduce((a, p) => a + (procPssMiB(p.pid) ?? 0), 0)),
        chromiumProcesses: procs.length,
        domNodes: after.Nodes ?? 0,
        shown,
        acked,
      };
      samples.push(s);
      return s;
    };
    await sampleNow();
    const loadEnd = loadStart + SECONDS * 1000;
    let lastReport = performance.now();
    const snapshots: string[] = [];
    const snapshot = async (label: string) => {
      if (!HEAP_SNAPSHOTS) return;
      const file = join(HEAP_SNAPSHOTS, `console-${label}.heapsnapshot`);
      await writeHeapSnapshot(cdp, file);
      snapshots.push(file);
      console.error(`console: heap snapshot ${file}`);
    };
    for (let next = loadStart + SAMPLE_SECONDS * 1000; next < loadEnd; next += SAMPLE_SECONDS * 1000) {
      await sleep(Math.max(0, next - performance.now()));
      const s = await sampleNow();
      if (snapshots.length === 0 && s.t >= WARMUP_SECONDS) await snapshot(`${Math.round(s.t)}s`);
      if (performance.now() - lastReport >= 60_000 || SECONDS <= 60) {
        lastReport = performance.now();
        console.error(
          `console: ${s.t.toFixed(0)} s, ${s.acked} acknowledged, ${s.shown} shown, heap ${s.heapUsedMiB} MiB (${s.heapAfterGcMiB} after GC), renderer RSS ${s.rendererRssMiB} MiB`,
        );
      }
    }
    await sleep(Math.max(0, loadEnd - performance.now()));
    await load.stop();
    const end = await sampleNow();
    await snapshot(`${Math.round(end.t)}s`);
    if (snapshots.length === 2) {
      const diff = diffHeapSnapshots(snapshots[0]!, snapshots[1]!);
      const file = join(HEAP_SNAPSHOTS!, "console-heap-diff.json");
      writeFileSync(file, `${JSON.stringify(diff, null, 2)}\n`);
      console.error(`console: what grew between the snapshots: ${file}`);
    }
    const cpuAfter = await chromiumProcesses(browserCdp);
    const loadSummary = load.summary();

    // Caught up: the page's count stops at the acknowledged total less what was published before its stream opened.
    const notShownAtMost = Math.ceil(RATE * streamOpenedBy) + EVENTS_PER_CALL;
    const catchUpStart = performance.now();
    let shownFinal = await shownEvents(page);
    let stableSince = performance.now();
    while (performance.now() - catchUpStart < CATCH_UP_SECONDS * 1000) {
      await sleep(250);
      const n = await shownEvents(page);
      if (n !== shownFinal) {
        shownFinal = n;
        stableSince = performance.now();
      } else if (loadSummary.acked - n <= notShownAtMost && performance.now() - stableSince >= 2000) break;
    }
    const notShown = loadSummary.acked - shownFinal;
    const caughtUp = notShown >= 0 && notShown <= notShownAtMost;
    const catchUpSeconds = round1((stableSince - catchUpStart) / 1000);

    const afterWarmup = samples.filter((s) => s.t >= WARMUP_SECONDS);
    const behind = afterWarmup.map((s) => Math.max(0, s.acked - notShown - s.shown));
    const perMinute = (pick: (s: Sample) => number) =>
      round1(
        slope(
          afterWarmup.map((s) => s.t),
          afterWarmup.map(pick),
        ) * 60,
      );
    const growth = {
      jsHeapAfterGc: judgeGrowth(
        afterWarmup.map((s) => ({ t: s.t, mib: s.heapAfterGcMiB })),
        BOUNDS,
      ),
      rendererRss: judgeGrowth(
        afterWarmup.map((s) => ({ t: s.t, mib: s.rendererRssMiB })),
        BOUNDS,
      ),
    };
    // Per process type; a process that exited during the load is left out (its last figure is not known).
    const cpuPercent: Record<string, number> = {};
    for (const p of cpuAfter) {
      const was = cpuBefore.find((b) => b.pid === p.pid)?.cpuSeconds ?? 0;
      cpuPercent[p.type] = (cpuPercent[p.type] ?? 0) + ((p.cpuSeconds - was) / loadSummary.seconds) * 100;
    }

    const failures = [
      ...Object.entries(growth)
        .filter(([, g]) => !g.ok)
        .map(([n, g]) => `${n}: ${g.verdict}`),
      ...(caughtUp
        ? []
        : [`the page shows ${shownFinal} of ${loadSummary.acked} acknowledged events (${notShownAtMost} may be missing at most)`]),
      ...(loadSummary.refused > 0 ? [`${loadSummary.refused} events refused (${JSON.stringify(loadSummary.refusedBy)})`] : []),
      ...(pageErrors.length > 0 ? [`${pageErrors.length} errors in the page: ${pageErrors.slice(0, 3).join(" | ")}`] : []),
    ];
    appendResult("console", {
      setup: {
        job: `Live telemetry following connection "${CONNECTION}"; Connect JSON Publish of ${EVENTS_PER_CALL} events (${DEVICES} devices × 4 points) → gateway → JetStream → the page's Subscribe`,
        stack:
          "console/test/stack.ts in the bench's process (nats-server, gateway serving console/dist, omf-sender, idigi-listener, emulators)",
        browser: `Chromium ${browser.version()} (${CHROMIUM}), headless, 1280×800`,
        rate: RATE,
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        sampleSeconds: SAMPLE_SECONDS,
        heapAfterGc: "HeapProfiler.collectGarbage before each heapAfterGcMiB reading",
      },
      bounds: BOUNDS,
      firstRenderMs: fcp === null ? null : Math.round(fcp),
      signInFormMs,
      signedInMs,
      firstLiveValueMs,
      load: loadSummary,
      page: {
        eventsShown: shownFinal,
        notShown,
        notShownAtMost,
        caughtUp,
        catchUpSeconds,
        behindEventsAfterWarmup: behind.length ? { median: median(behind), max: Math.max(...behind) } : null,
        chromiumCpuPercentByType: Object.fromEntries(Object.entries(cpuPercent).map(([k, v]) => [k, round1(v)])),
        errors: pageErrors.slice(0, 20),
      },
      end,
      slopeAfterWarmupMiBPerMin: {
        jsHeapAfterGc: perMinute((s) => s.heapAfterGcMiB),
        jsHeapUsed: perMinute((s) => s.heapUsedMiB),
        rendererRss: perMinute((s) => s.rendererRssMiB),
        chromiumPss: perMinute((s) => s.chromiumPssMiB),
      },
      growth,
      curve: samples,
      passed: failures.length === 0,
      failures,
    });
    if (failures.length > 0) {
      console.error(`console bench FAILED: ${failures.join("; ")}`);
      process.exitCode = 1;
    }
  } finally {
    await browser.close().catch(() => {});
    await stopStack().catch(() => {});
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

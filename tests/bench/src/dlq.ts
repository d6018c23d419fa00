/**
 * npm run bench:dlq — dead-letter replay through the gateway. A route's sink (its real DurableConsumer, in this process)
 * refuses N messages for good (PermanentError: N dead letters); then it is "fixed", and the dead letters are listed and
 * replayed through the gateway (its own process, as deployed) in pages of 500 until the sink has delivered all N.
 * Prints one JSON object: replayed messages/s, the gateway's CPU per replayed message and RSS, and the raw bus publish
 * rate of the same run as the yardstick. Bounded: exits non-zero past 60 s.
 */
import { createClient } from "@connectrpc/connect";
import { Bus, encodeBatch, makeBatch, PermanentError, routeBucket, routeConsumer, STREAMS, telemetrySubject } from "@meridian/bus";
import { DeadLetterService, ReplayOutcome, ReplayState } from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { freePort, startNatsServer, testTransport } from "@meridian/testing";
import { pino } from "pino";
import { machine, rate, sampleEvent } from "./common.js";
import { type RunningProcess, startProcess } from "./processes.js";
import { measureRawBus, PUBLISH_WINDOW } from "./raw-bus.js";

const MESSAGES = Number(process.env.BENCH_DLQ_MESSAGES ?? 10_000);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 20_000);
/** The largest ReplayDeadLetters call. */
const PAGE = 500;
/** Every wait gives up here; the process exits at 60 s whatever it is doing. */
const DEADLINE_MS = 55_000;
const HARD_LIMIT_MS = 60_000;
const CONNECTION = "dlq";
const ROUTE = "bench-dlq";
const logger = pino({ level: "warn" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => boolean | Promise<boolean>, deadline: number): Promise<void> {
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`bench:dlq: ${what} not reached within the bench's bound`);
    await sleep(20);
  }
}

async function main() {
  const started = performance.now();
  const deadline = started + DEADLINE_MS;
  const nats = await startNatsServer();
  const bus = Bus.connect({ servers: nats.url, name: "bench", logger });
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  let gateway: RunningProcess | undefined;
  const stopSink = new AbortController();
  try {
    await bus.ready;
    gateway = await startProcess(
      "gateway",
      "services/gateway",
      { PORT: String(gatewayPort), NATS_URL: nats.url, CALLER_RATE_LIMIT: "1000000", CALLER_RATE_BURST: "1000000" },
      `${gatewayUrl}/readyz`,
    );
    const transport = testTransport(gatewayUrl);
    const routes = createClient(RouteService, transport);
    const dlq = createClient(DeadLetterService, transport);
    const raw = await measureRawBus(bus, RAW_MESSAGES, logger);

    // The route and its sink: everything refused until `fixed`.
    await routes.createRoute({ route: { id: ROUTE, source: { connection: CONNECTION }, sink: { platform: Platform.OMF, target: "pi" } } });
    const route = (await routeBucket(bus).get(ROUTE))!;
    // Its "dead-lettered" warning per message is not what is measured.
    const consumer = routeConsumer(bus, route, Platform.OMF, { logger: pino({ level: "error" }), maxAckPending: 1000 });
    await consumer.declare();
    let fixed = false;
    const delivered = new Set<string>();
    const sink = consumer.runParallel(
      async (d) => {
        if (!fixed) throw new PermanentError("400 Bad Request", "bench: the endpoint refuses every message");
        for (const e of d.batch.events) delivered.add(e.id);
      },
      stopSink.signal,
      { maxInFlight: 256 },
    );

    // N messages published (windowed, as measureRawBus) and dead-lettered by the sink.
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < MESSAGES; i++) {
      const e = sampleEvent(i, `dev-${i % 10}`, CONNECTION);
      const pr = bus.publishBatch(telemetrySubject(e.source!), makeBatch(e.id, [e]));
      inflight.add(pr);
      void pr.finally(() => inflight.delete(pr));
      if (inflight.size >= PUBLISH_WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const t0DeadLetter = performance.now();
    await waitFor(
      "every message dead-lettered",
      async () => (await bus.jsm().streams.info(STREAMS.deadLetter)).state.messages >= MESSAGES,
      deadline,
    );
    const deadLetterMs = performance.now() - t0DeadLetter;

    // The endpoint is fixed: list the pending dead letters a page at a time and replay each page, until the sink has them all.
    fixed = true;
    const cpu0 = gateway.cpuSeconds();
    const t0 = performance.now();
    let pages = 0;
    let replayed = 0;
    let listMs = 0;
    let replayMs = 0;
    for (let token = ""; ; ) {
      const l0 = performance.now();
      const page = await dlq.listDeadLetters({ filter: { routeId: ROUTE, state: ReplayState.PENDING }, pageSize: PAGE, pageToken: token });
      listMs += performance.now() - l0;
      if (page.deadLetters.length > 0) {
        const r0 = performance.now();
        const res = await dlq.replayDeadLetters({ sequences: page.deadLetters.map((l) => l.sequence) });
        replayMs += performance.now() - r0;
        replayed += res.results.filter((r) => r.outcome === ReplayOutcome.REPLAYED).length;
        pages++;
      }
      if (!page.nextPageToken) break;
      token = page.nextPageToken;
      if (performance.now() > deadline) throw new Error("bench:dlq: replay not done within the bench's bound");
    }
    await waitFor("every replayed message delivered", () => delivered.size >= MESSAGES, deadline);
    const totalMs = performance.now() - t0;
    const cpu = gateway.cpuSeconds() - cpu0;
    const rss = gateway.rssMiB();

    console.log(
      JSON.stringify(
        {
          benchmark: "dlq",
          machine: machine(),
          natsServer: "nats-server single node, file storage, loopback",
          messages: MESSAGES,
          messageBytes: encodeBatch(makeBatch("x", [sampleEvent(0, "dev-0", CONNECTION)])).length,
          deadLettering: { ms: Math.round(deadLetterMs), messagesPerSec: rate(MESSAGES, deadLetterMs) },
          replay: {
            pages,
            pageSize: PAGE,
            replayed,
            deliveredBySink: delivered.size,
            ms: Math.round(totalMs),
            listMs: Math.round(listMs),
            replayCallsMs: Math.round(replayMs),
            replayedMessagesPerSec: rate(MESSAGES, totalMs),
            gatewayCpuMicrosPerMessage: Math.round((cpu * 1e6) / MESSAGES),
            gatewayRssMiB: rss,
          },
          rawBus: raw,
          ratioReplayToRawPublish: Number((rate(MESSAGES, totalMs) / raw.publishPerSec).toFixed(3)),
          totalSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
        },
        null,
        2,
      ),
    );
    stopSink.abort();
    await sink;
  } finally {
    stopSink.abort();
    await gateway?.stop();
    await bus.close();
    await nats.stop();
  }
}

const bound = setTimeout(() => {
  console.error(`bench:dlq exceeded ${HARD_LIMIT_MS / 1000} s`);
  process.exit(1);
}, HARD_LIMIT_MS);
bound.unref();
await main();
process.exit(0);

/**
 * The bus on the production shape: a 3-node JetStream cluster with R3 streams and KV. The stream leader is killed
 * (then another node) while events are published and a durable consumer delivers them: no publish may fail, every
 * acknowledged event must be delivered, and the stream must hold each once.
 */
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, type NatsCluster, startNatsCluster, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bus, STREAMS } from "../src/bus.js";
import { decodeBatch } from "../src/codec.js";
import { DurableConsumer } from "../src/consumer.js";
import { jsonCodec, KvBucket } from "../src/kv.js";
import { telemetryFilterSubject } from "../src/subjects.js";

const CONNECTION = "cluster";

function event(id: string, device: string, value: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id,
    source: { platform: Platform.API, connection: CONNECTION, device },
    observedTime: timestampNow(),
    points: [{ name: "v", value: { case: "doubleValue", value } }],
  });
}

describe("Bus on a 3-node JetStream cluster", { timeout: 180_000 }, () => {
  let cluster: NatsCluster;
  let bus: Bus;
  const logs = captureLogger();

  beforeAll(async () => {
    cluster = await startNatsCluster();
    bus = Bus.connect({ servers: cluster.urls, name: "cluster-test", logger: logs.logger, streams: { replicas: 3 } });
    await bus.ready;
  }, 90_000);
  afterAll(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  it("declares the streams and KV buckets with three replicas", async () => {
    expect((await bus.jsm().streams.info(STREAMS.telemetry)).config.num_replicas).toBe(3);
    expect((await bus.jsm().streams.info(STREAMS.deadLetter)).config.num_replicas).toBe(3);
    const bucket = new KvBucket(bus, "cluster_test", jsonCodec<{ n: number }>());
    await bucket.put("k", { n: 1 });
    expect(await bucket.get("k")).toEqual({ n: 1 });
    const kv = await bus.jsm().streams.info("KV_cluster_test");
    expect(kv.config.num_replicas).toBe(3);
    expect(kv.cluster?.replicas?.length).toBe(2);
    expect(await cluster.streamLeader(STREAMS.telemetry)).toMatch(/^n[123]$/);
  });

  it("loses and duplicates nothing while the stream leader, then the consumer's leader, is killed", async () => {
    // What is printed when the stream does not hold what was acknowledged: when each publish attempt was made and
    // answered (stream sequence of its PubAck), against the kills, starts and elections.
    const t0 = Date.now();
    const at = () => ((Date.now() - t0) / 1000).toFixed(2);
    const timeline: string[] = [];
    const mark = (what: string) => timeline.push(`${at()}s ${what}`);
    const attempts = recordPublishAttempts(bus, at);
    const acked = new Set<string>();
    const failed: string[] = [];
    const delivered = new Map<string, number>();
    const ac = new AbortController();
    const consumer = new DurableConsumer(bus, {
      durable: "cluster-sink",
      filterSubject: telemetryFilterSubject({ platform: Platform.API, connection: CONNECTION }),
      ackWaitMs: 5000,
      logger: logs.logger,
      startTime: new Date(),
    });
    const consuming = consumer.run(async (d) => {
      for (const e of d.batch.events) delivered.set(e.id, (delivered.get(e.id) ?? 0) + 1);
    }, ac.signal);

    // Two publishers, as a gateway serves concurrent requests; each batch of 10 events is one publish.
    let publishing = true;
    let batches = 0;
    const publisher = async (name: string) => {
      for (let b = 0; publishing; b++) {
        const events = Array.from({ length: 10 }, (_, i) => event(`${name}-${b}-${i}`, `d${i % 3}`, i));
        try {
          await bus.publishEvents(events);
          for (const e of events) acked.add(e.id);
          batches++;
        } catch (err) {
          failed.push(`${name}-${b}: ${(err as Error).message}`);
        }
      }
    };
    const publishers = [publisher("a"), publisher("b")];
    const progress = async (more: number) => {
      const target = batches + more;
      await until(() => batches >= target, { timeoutMs: 60_000, what: `${more} more batches published` });
    };

    await progress(50);
    const first = await cluster.waitForStreamLeader(STREAMS.telemetry);
    mark(`stream leader ${first.name}; killing it (${batches} batches acknowledged)`);
    await first.kill();
    mark(`${first.name} killed`);
    await progress(50);
    const newLeader = await cluster.waitForStreamLeader(STREAMS.telemetry, { not: first.name });
    mark(`stream leader ${newLeader.name}; starting ${first.name} (${batches} batches)`);
    await first.start();
    mark(`${first.name} started`);
    await cluster.waitHealthy(60_000);
    mark("cluster healthy");
    // Then the consumer's leader: its pulls get "409 Leadership Change" or no answer, and deliveries must go on.
    const consumerLeader = await cluster.consumerLeader(STREAMS.telemetry, "cluster-sink");
    const second = consumerLeader && consumerLeader !== first.name ? cluster.node(consumerLeader) : newLeader;
    await progress(50);
    mark(
      `consumer leader ${consumerLeader}, stream leader ${await cluster.streamLeader(STREAMS.telemetry)}; killing ${second.name} (${batches} batches)`,
    );
    await second.kill();
    mark(`${second.name} killed`);
    await progress(50);
    const thirdLeader = await cluster.waitForStreamLeader(STREAMS.telemetry, { not: second.name });
    mark(`stream leader ${thirdLeader.name}; starting ${second.name} (${batches} batches)`);
    await second.start();
    mark(`${second.name} started`);
    await cluster.waitHealthy(60_000);
    mark("cluster healthy");
    await progress(50);
    publishing = false;
    await Promise.all(publishers);
    attempts.stop();
    mark(`publishing stopped (${batches} batches)`);

    expect(failed).toEqual([]);
    await until(() => [...acked].every((id) => delivered.has(id)), {
      timeoutMs: 60_000,
      what: `every acknowledged event delivered (${acked.size} acknowledged, ${delivered.size} delivered)`,
    });
    mark("every acknowledged event delivered");
    ac.abort();
    await consuming;

    // Nothing the publishers did not have acknowledged appeared, and every acknowledged event is stored. A retried
    // publish keeps its Nats-Msg-Id: an attempt that was stored after all is recognised as a duplicate. nats-server
    // before its clustered de-dupe fix (2025; Debian's 2.9.10 here) may still store it a second time across the leader
    // election; such a copy must carry the same Nats-Msg-Id (so consumers skip it), never be a publish under a new id.
    expect([...delivered.keys()].filter((id) => !acked.has(id))).toEqual([]);
    // Read back once every replica holds what the leader holds: the read-back's consumer may be on any replica (see
    // waitForReplicas).
    const replicas = await waitForReplicas(bus, cluster).catch(async (err: Error) => {
      console.warn(await explainReplicaLag(bus, cluster, err, timeline));
      throw err;
    });
    mark(`every replica holds what the leader holds: ${replicas}`);
    const storedEvents = await countStoredEvents(bus);
    mark(`read back: ${storedEvents.summary}`);
    const notStored = [...acked].filter((id) => !storedEvents.ids.has(id));
    if (notStored.length > 0 || storedEvents.total - storedEvents.copiesUnderSameMsgId !== acked.size) {
      console.warn(await explainReadBack(bus, cluster, { notStored, attempts: attempts.byBatch, timeline, storedEvents }));
    }
    expect(notStored).toEqual([]);
    expect(storedEvents.distinct).toBe(acked.size);
    expect(storedEvents.total - storedEvents.copiesUnderSameMsgId).toBe(acked.size);
    if (storedEvents.copiesUnderSameMsgId > 0)
      console.warn(`stored twice under the same Nats-Msg-Id: ${storedEvents.copiesUnderSameMsgId} events`);
  });
});

interface PublishAttempt {
  start: string;
  end?: string;
  msgId?: string;
  seq?: number;
  duplicate?: boolean;
  error?: string;
}

/**
 * Records every JetStream publish attempt of the bus (the bus retries one across an election), by batch (`a-12`, from
 * the first event's id), with when it was made and answered and its PubAck: for the report of a failure only.
 */
function recordPublishAttempts(bus: Bus, at: () => string): { byBatch: Map<string, PublishAttempt[]>; stop(): void } {
  const byBatch = new Map<string, PublishAttempt[]>();
  const js = bus.js();
  const original = js.publish;
  js.publish = async (subject, data, options) => {
    const first = data instanceof Uint8Array ? decodeBatch(data).events[0]?.id : undefined;
    const batch = first?.replace(/-\d+$/, "") ?? subject;
    const attempt: PublishAttempt = { start: at(), ...(options?.msgID ? { msgId: options.msgID } : {}) };
    byBatch.set(batch, [...(byBatch.get(batch) ?? []), attempt]);
    try {
      const ack = await original.call(js, subject, data, options);
      Object.assign(attempt, { end: at(), seq: ack.seq, duplicate: ack.duplicate });
      return ack;
    } catch (err) {
      Object.assign(attempt, { end: at(), error: (err as Error).message });
      throw err;
    }
  };
  return {
    byBatch,
    stop: () => {
      js.publish = original;
    },
  };
}

interface StoredEvents {
  total: number;
  distinct: number;
  copiesUnderSameMsgId: number;
  ids: Set<string>;
  /** Stream sequences of the messages read. */
  seqs: Set<number>;
  summary: string;
}

/**
 * Waits until each node's own copy of the telemetry stream has what its leader has (messages, first and last sequence)
 * and says what that is; fails naming each node's state when one does not get there in time.
 *
 * countStoredEvents reads through an ordered consumer: an R1 ephemeral consumer, which nats-server places on any one of
 * the stream's replicas (createGroupForConsumer shuffles the peers, 2.9 to 2.11) and which reads that node's own store.
 * A publish is acknowledged once the leader and one follower have it; the other follower may still be applying the
 * last ones (more so a node just restarted, or on a loaded machine). On it the consumer's num_pending is short and the
 * read-back misses the newest acknowledged messages although the stream holds them. That is the likely cause of this
 * test's one failure under a full parallel test run (one acknowledged and delivered 10-event publish not read back).
 * Every replica must hold every acknowledged message in the end, so this wait checks that too: on a loaded machine a
 * nats-server 2.9.10 follower was seen still one message short 30 s after the last publish, which the old read-back
 * would have reported as that message missing whenever its consumer landed there. Such a failure now names the nodes
 * and says whether one more publish brings the replica level.
 */
async function waitForReplicas(bus: Bus, cluster: NatsCluster, timeoutMs = 30_000): Promise<string> {
  let last = "";
  const holding = until(
    async () => {
      const leader = (await bus.jsm().streams.info(STREAMS.telemetry)).state;
      const want = `${leader.messages} messages, seq ${leader.first_seq}..${leader.last_seq}`;
      const nodes = await nodeStreamStates(cluster);
      last = `leader: ${want}; ${Object.entries(nodes)
        .map(([name, s]) => `${name}: ${s}`)
        .join("; ")}`;
      return Object.values(nodes).every((s) => s === want);
    },
    { timeoutMs, intervalMs: 200, ignoreErrors: true, what: `every replica of ${STREAMS.telemetry} holding what its leader holds` },
  );
  await holding.catch((err: Error) => {
    throw new Error(`${err.message} (${last})`);
  });
  return last;
}

/**
 * What the report of replicas that did not catch up says: the timeline, each node's warnings, and whether the replica
 * behind catches up once one more message is published (to another connection's subject, outside the test's reads):
 * a follower that had not learnt its last entries were committed does; one whose copy lost a message does not.
 */
async function explainReplicaLag(bus: Bus, cluster: NatsCluster, err: Error, timeline: string[]): Promise<string> {
  const out = [err.message, "timeline:", ...timeline.map((l) => `  ${l}`)];
  for (const n of cluster.nodes) {
    const lines = n
      .output()
      .split("\n")
      .filter((l) => /\[(WRN|ERR)\]|[Cc]atchup|snapshot/.test(l));
    out.push(`${n.name} warnings since its last start (${lines.length}, last 40):`, ...lines.slice(-40).map((l) => `  ${l}`));
  }
  try {
    const probe = event("replica-probe", "probe", 0);
    probe.source!.connection = "replica-probe";
    await bus.publishEvents([probe]);
    out.push(`after one more message: ${await waitForReplicas(bus, cluster, 10_000)}`);
  } catch (probeErr) {
    out.push(`after one more message: ${(probeErr as Error).message}`);
  }
  return out.join("\n");
}

/** Each node's own state of the telemetry stream, from its monitoring endpoint (also of a node that is not the leader). */
async function nodeStreamStates(cluster: NatsCluster): Promise<Record<string, string>> {
  const states: Record<string, string> = {};
  for (const n of cluster.nodes) {
    if (!n.running) {
      states[n.name] = "not running";
      continue;
    }
    try {
      const res = await fetch(`${n.monitorUrl}/jsz?streams=true`, { signal: AbortSignal.timeout(2000) });
      const jsz = (await res.json()) as { account_details?: Array<{ stream_detail?: JszStreamState[] }> };
      const s = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((x) => x.name === STREAMS.telemetry)?.state;
      states[n.name] = s ? `${s.messages} messages, seq ${s.first_seq}..${s.last_seq}` : "no stream";
    } catch (err) {
      states[n.name] = (err as Error).message;
    }
  }
  return states;
}

/**
 * Reads the whole telemetry stream of the test's connection: its events, how many distinct ids, and how many events are
 * in messages whose Nats-Msg-Id an earlier message had (the same publish stored twice).
 */
async function countStoredEvents(bus: Bus): Promise<StoredEvents> {
  const ids = new Set<string>();
  const msgIds = new Set<string>();
  const seqs = new Set<number>();
  let total = 0;
  let copiesUnderSameMsgId = 0;
  const consumer = await bus.js().consumers.get(STREAMS.telemetry, {
    filterSubjects: telemetryFilterSubject({ platform: Platform.API, connection: CONNECTION }),
  });
  const info = await consumer.info();
  let left = info.num_pending;
  let endedEarly = false;
  while (left > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(left, 500), expires: 5000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      seqs.add(m.seq);
      const events = decodeBatch(m.data).events;
      const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
      if (msgId && msgIds.has(msgId)) copiesUnderSameMsgId += events.length;
      msgIds.add(msgId);
      for (const e of events) {
        total++;
        ids.add(e.id);
      }
      left--;
    }
    if (got === 0) {
      endedEarly = true;
      break;
    }
  }
  const summary =
    `${seqs.size} messages (${total} events, ${ids.size} distinct) through an ordered consumer on ${info.cluster?.leader ?? "?"}, ` +
    `num_pending ${info.num_pending}, stream seq ${Math.min(...seqs)}..${Math.max(...seqs)}${endedEarly ? `, a fetch got nothing with ${left} left` : ""}`;
  return { total, distinct: ids.size, copiesUnderSameMsgId, ids, seqs, summary };
}

interface JszStreamState {
  name: string;
  state?: { messages: number; first_seq: number; last_seq: number; num_deleted?: number };
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean; offline?: boolean; active: number; lag?: number }> };
}

/**
 * What the report of a failed read-back says: each acknowledged batch not read back with its publish attempts and what
 * the stream leader holds at its acknowledged sequence; each node's own state of the stream; the timeline; a second
 * read-back once every replica is current; the nodes' warnings.
 */
async function explainReadBack(
  bus: Bus,
  cluster: NatsCluster,
  r: { notStored: string[]; attempts: Map<string, PublishAttempt[]>; timeline: string[]; storedEvents: StoredEvents },
): Promise<string> {
  const out: string[] = [`read back: ${r.storedEvents.summary}`, `${r.notStored.length} acknowledged events not read back`];
  const batches = [...new Set(r.notStored.map((id) => id.replace(/-\d+$/, "")))];
  for (const b of batches) {
    const list = r.attempts.get(b) ?? [];
    out.push(
      `batch ${b} (publisher ${b.split("-")[0]}): ${r.notStored.filter((id) => id.startsWith(`${b}-`)).length} events not read back`,
    );
    for (const a of list) {
      out.push(
        `  attempt ${a.start}s..${a.end ?? "?"}s msgId ${a.msgId}: ${a.error ?? `seq ${a.seq}${a.duplicate ? " (duplicate)" : ""}`}` +
          (a.seq ? `, read back: ${r.storedEvents.seqs.has(a.seq)}` : ""),
      );
      if (!a.seq) continue;
      try {
        const m = await bus.jsm().streams.getMessage(STREAMS.telemetry, { seq: a.seq });
        out.push(`  leader holds at seq ${a.seq}: msgId ${m.header.get("Nats-Msg-Id")}, first event ${decodeBatch(m.data).events[0]?.id}`);
      } catch (err) {
        out.push(`  leader holds at seq ${a.seq}: ${(err as Error).message}`);
      }
    }
  }
  const nodeStates = async () => {
    for (const n of cluster.nodes) {
      if (!n.running) {
        out.push(`  ${n.name}: not running`);
        continue;
      }
      try {
        const res = await fetch(`${n.monitorUrl}/jsz?streams=true`, { signal: AbortSignal.timeout(2000) });
        const jsz = (await res.json()) as { account_details?: Array<{ stream_detail?: JszStreamState[] }> };
        const s = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((x) => x.name === STREAMS.telemetry);
        out.push(`  ${n.name}: state ${JSON.stringify(s?.state)} cluster ${JSON.stringify(s?.cluster)}`);
      } catch (err) {
        out.push(`  ${n.name}: ${(err as Error).message}`);
      }
    }
  };
  out.push("each node's own state of the stream:");
  await nodeStates();
  try {
    const info = await bus.jsm().streams.info(STREAMS.telemetry);
    out.push(`stream info: state ${JSON.stringify(info.state)} cluster ${JSON.stringify(info.cluster)}`);
  } catch (err) {
    out.push(`stream info: ${(err as Error).message}`);
  }
  out.push("timeline:", ...r.timeline.map((l) => `  ${l}`));
  try {
    await until(async () => (await bus.jsm().streams.info(STREAMS.telemetry)).cluster?.replicas?.every((p) => p.current) ?? false, {
      timeoutMs: 30_000,
      what: "every replica current",
    });
    const again = await countStoredEvents(bus);
    out.push(
      `read back again once every replica was current: ${again.summary}; not read back now: ${r.notStored.filter((id) => !again.ids.has(id)).length}`,
    );
    out.push("each node's own state of the stream now:");
    await nodeStates();
  } catch (err) {
    out.push(`second read-back: ${(err as Error).message}`);
  }
  for (const n of cluster.nodes) {
    const lines = n
      .output()
      .split("\n")
      .filter((l) => /\[(WRN|ERR)\]|TELEMETRY|[Cc]atchup|snapshot/.test(l));
    out.push(`${n.name} warnings since its last start (${lines.length}, last 40):`, ...lines.slice(-40).map((l) => `  ${l}`));
  }
  return out.join("\n");
}

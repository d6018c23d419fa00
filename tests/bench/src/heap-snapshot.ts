/**
 * Heap snapshots of a page over the DevTools protocol, and what grew between two of them: for finding what a page
 * keeps (bench:console's BENCH_CONSOLE_HEAP_SNAPSHOTS). A snapshot is V8's .heapsnapshot JSON (DevTools opens it);
 * the diff counts nodes by kind (objects by constructor, strings by type) and walks the shortest retainer path from
 * the roots to a few nodes of the kinds that grew most and are new in the second snapshot.
 */
import { createWriteStream, readFileSync } from "node:fs";
import type { CDPSession } from "@playwright/test";

/** Writes a snapshot of the page's heap (after V8's own collection: takeHeapSnapshot collects first) to `file`. */
export async function writeHeapSnapshot(cdp: CDPSession, file: string): Promise<void> {
  const out = createWriteStream(file);
  const onChunk = ({ chunk }: { chunk: string }) => {
    out.write(chunk);
  };
  cdp.on("HeapProfiler.addHeapSnapshotChunk", onChunk);
  try {
    await cdp.send("HeapProfiler.enable");
    await cdp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  } finally {
    cdp.off("HeapProfiler.addHeapSnapshotChunk", onChunk);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

interface Parsed {
  nodeCount: number;
  nodeFields: number;
  nodes: number[];
  edges: number[];
  strings: string[];
  nodeTypes: string[];
  edgeTypes: string[];
  edgeFields: number;
  /** Per node, the index of its first edge in `edges`. */
  firstEdge: Uint32Array;
  f: { type: number; name: number; id: number; size: number; edgeCount: number };
  e: { type: number; name: number; to: number };
}

function parse(file: string): Parsed {
  const snap = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const meta = snap.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const f = {
    type: meta.node_fields.indexOf("type"),
    name: meta.node_fields.indexOf("name"),
    id: meta.node_fields.indexOf("id"),
    size: meta.node_fields.indexOf("self_size"),
    edgeCount: meta.node_fields.indexOf("edge_count"),
  };
  const e = {
    type: meta.edge_fields.indexOf("type"),
    name: meta.edge_fields.indexOf("name_or_index"),
    to: meta.edge_fields.indexOf("to_node"),
  };
  const nodeCount = snap.nodes.length / nodeFields;
  const firstEdge = new Uint32Array(nodeCount + 1);
  for (let i = 0, acc = 0; i < nodeCount; i++) {
    firstEdge[i] = acc;
    acc += snap.nodes[i * nodeFields + f.edgeCount]! * edgeFields;
    firstEdge[i + 1] = acc;
  }
  return {
    nodeCount,
    nodeFields,
    nodes: snap.nodes,
    edges: snap.edges,
    strings: snap.strings,
    nodeTypes: meta.node_types[0],
    edgeTypes: meta.edge_types[0],
    edgeFields,
    firstEdge,
    f,
    e,
  };
}

const STRING_TYPES = new Set(["string", "concatenated string", "sliced string", "number", "hidden", "code"]);

/** A node's kind: "object Foo", "closure bar", "string" (strings by type only: their name is their text). */
function kindOf(s: Parsed, i: number): string {
  const type = s.nodeTypes[s.nodes[i * s.nodeFields + s.f.type]!]!;
  if (STRING_TYPES.has(type)) return type;
  return `${type} ${s.strings[s.nodes[i * s.nodeFields + s.f.name]!]!.slice(0, 60)}`;
}

function describeNode(s: Parsed, i: number): string {
  const type = s.nodeTypes[s.nodes[i * s.nodeFields + s.f.type]!]!;
  const name = s.strings[s.nodes[i * s.nodeFields + s.f.name]!]!;
  return `${type} ${JSON.stringify(name.slice(0, 60))} @${s.nodes[i * s.nodeFields + s.f.id]} (${s.nodes[i * s.nodeFields + s.f.size]} B)`;
}

function countByKind(s: Parsed): Map<string, { count: number; bytes: number }> {
  const m = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodeCount; i++) {
    const k = kindOf(s, i);
    const c = m.get(k) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += s.nodes[i * s.nodeFields + s.f.size]!;
    m.set(k, c);
  }
  return m;
}

/** Shortest path (strong edges) from the root to `target`, as "retainer -[edge]-> …" lines, root first. */
function retainerPath(s: Parsed, target: number, maxDepth = 24): string[] {
  const weak = s.edgeTypes.indexOf("weak");
  const dist = new Int32Array(s.nodeCount).fill(-1);
  const via = new Int32Array(s.nodeCount).fill(-1);
  const viaEdge = new Int32Array(s.nodeCount).fill(-1);
  const queue = new Int32Array(s.nodeCount);
  let head = 0;
  let tail = 0;
  dist[0] = 0;
  queue[tail++] = 0;
  while (head < tail && dist[target] === -1) {
    const n = queue[head++]!;
    for (let k = s.firstEdge[n]!; k < s.firstEdge[n + 1]!; k += s.edgeFields) {
      if (s.edges[k + s.e.type] === weak) continue;
      const to = s.edges[k + s.e.to]! / s.nodeFields;
      if (dist[to] !== -1) continue;
      dist[to] = dist[n]! + 1;
      via[to] = n;
      viaEdge[to] = k;
      queue[tail++] = to;
    }
  }
  if (dist[target] === -1) return ["(not reachable by strong edges)"];
  const lines: string[] = [];
  for (let n = target; n > 0; n = via[n]!) {
    const k = viaEdge[n]!;
    const et = s.edgeTypes[s.edges[k + s.e.type]!]!;
    const raw = s.edges[k + s.e.name]!;
    const edgeName = et === "element" || et === "hidden" ? `[${raw}]` : s.strings[raw]!;
    lines.push(`${describeNode(s, via[n]!)} -[${et} ${edgeName}]-> ${describeNode(s, n)}`);
  }
  lines.reverse();
  // A long chain (a linked list of 100,000 promise reactions) says what it is from its two ends.
  if (lines.length <= maxDepth) return lines;
  const first = Math.ceil((maxDepth * 3) / 4);
  const last = maxDepth - first;
  return [...lines.slice(0, first), `… ${lines.length - maxDepth} more like these …`, ...lines.slice(-last)];
}

export interface HeapDiff {
  nodes: { before: number; after: number };
  /** Kinds whose retained count grew most, with the change in count and self size. */
  grown: Array<{ kind: string; countBefore: number; countAfter: number; bytesDelta: number }>;
  /** For the top kinds: shortest retainer paths from the root to a node of that kind created after the first snapshot. */
  retainers: Array<{ kind: string; paths: string[][] }>;
}

/** What grew from snapshot `a` to snapshot `b` (files written by writeHeapSnapshot). */
export function diffHeapSnapshots(a: string, b: string, top = 15, tracedKinds = 4, pathsPerKind = 2): HeapDiff {
  const sa = parse(a);
  const before = countByKind(sa);
  const idsBefore = new Set<number>();
  for (let i = 0; i < sa.nodeCount; i++) idsBefore.add(sa.nodes[i * sa.nodeFields + sa.f.id]!);
  const nodesBefore = sa.nodeCount;
  const sb = parse(b);
  const after = countByKind(sb);
  const grown = [...after]
    .map(([kind, c]) => ({
      kind,
      countBefore: before.get(kind)?.count ?? 0,
      countAfter: c.count,
      bytesDelta: c.bytes - (before.get(kind)?.bytes ?? 0),
    }))
    .sort((x, y) => y.countAfter - y.countBefore - (x.countAfter - x.countBefore))
    .slice(0, top);
  const retainers: HeapDiff["retainers"] = [];
  for (const g of grown.slice(0, tracedKinds)) {
    const picks: number[] = [];
    // New nodes of this kind, spread over the snapshot (the newest would be the page's live buffers' tail).
    const candidates: number[] = [];
    for (let i = 0; i < sb.nodeCount; i++) {
      if (kindOf(sb, i) === g.kind && !idsBefore.has(sb.nodes[i * sb.nodeFields + sb.f.id]!)) candidates.push(i);
    }
    for (let j = 0; j < pathsPerKind && j < candidates.length; j++) {
      picks.push(candidates[Math.floor((j * candidates.length) / pathsPerKind)]!);
    }
    retainers.push({ kind: g.kind, paths: picks.map((i) => retainerPath(sb, i)) });
  }
  return { nodes: { before: nodesBefore, after: sb.nodeCount }, grown, retainers };
}

/** Data answers in the API's two encodings: the JSON envelope `{data:{items}}` and protobuf CompactDatapointsDto. */
import { type CompactItem, type CompactValue, encodeCompactDatapoints } from "./protobuf.js";
import type { ItemResult } from "./query.js";
import { formatTime } from "./time.js";

export interface DataAnswer {
  items: ItemResult[];
  continuationToken: string | null;
  /** Set when the request named a federationSource. */
  federated?: boolean;
}

/** `includeItemTokens`: multi-queries carry a token per item (JSON only; the protobuf item has no such field). */
export function dataJson(a: DataAnswer, includeItemTokens: boolean): unknown {
  const items = a.items.map((r) => {
    const datapoints =
      r.kind === "raw"
        ? r.rows.map((p) => ({ time: formatTime(p.t), value: p.value, status: p.status }))
        : r.rows.map((row) => ({ time: formatTime(row.t), ...row.values }));
    return {
      id: r.id,
      ...r.extra,
      totalCount: r.totalCount,
      ...(includeItemTokens ? { continuationToken: r.continuationToken } : {}),
      datapoints,
    };
  });
  return {
    data: { items },
    continuationToken: a.continuationToken,
    ...(a.federated !== undefined ? { federated: a.federated } : {}),
  };
}

export function dataProtobuf(a: DataAnswer): Uint8Array {
  const data: CompactItem[] = a.items.map((r) => {
    const values: CompactValue[] = [];
    if (r.kind === "raw") {
      for (const p of r.rows)
        values.push({ case: "int64", value: p.t }, { case: "double", value: p.value }, { case: "uint32", value: p.status });
      return { id: r.id, totalCount: BigInt(r.totalCount), fields: ["time", "value", "status"], values };
    }
    for (const row of r.rows) {
      values.push({ case: "int64", value: row.t });
      for (const f of r.functions) {
        const v = row.values[f];
        if (v === null || v === undefined) values.push({ case: undefined });
        else if (f === "count") values.push({ case: "uint64", value: BigInt(v) });
        else values.push({ case: "double", value: v });
      }
    }
    return { id: r.id, totalCount: BigInt(r.totalCount), fields: ["time", ...r.functions], values };
  });
  return encodeCompactDatapoints({ data, continuationToken: a.continuationToken });
}

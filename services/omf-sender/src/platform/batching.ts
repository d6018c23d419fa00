import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_VALUES_PER_REQUEST } from "./config.js";
import { OmfInvalidMessageError } from "./errors.js";
import { keepSerializedBody, type OmfDataItem, type OmfEndpointKind, type OmfMessage, type OmfValue } from "./messages.js";

export interface BatchLimits {
  /** Upper bound of the serialized (pre-compression) JSON body, in bytes. */
  maxBytes: number;
  /** Upper bound of values (data) or objects (type/container) per request. */
  maxValues: number;
}

const byteLength = (s: string) => Buffer.byteLength(s, "utf8");

/**
 * Splits a message into requests whose serialized body is ≤ `maxBytes` and which carry ≤ `maxValues` values
 * (defaults: the body limit of `kind`, or 192 KB without one; 10,000 values).
 * Data items are split between values (a container's values may go into several requests, in order);
 * type and container objects are never split. Sizes are exact: `serializeBody(batch).length` in UTF-8 bytes.
 * Throws OmfInvalidMessageError naming the value when one value (or object) alone is over the limit.
 */
export function batchMessage<M extends OmfMessage>(message: M, limits: Partial<BatchLimits> & { kind?: OmfEndpointKind } = {}): M[] {
  // Defaults: the endpoint kind's body limit from the notes (PI 4 MiB, ADH/EDS 192 KB); without a kind, the smallest.
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BODY_BYTES[limits.kind ?? "adh"];
  const maxValues = limits.maxValues ?? DEFAULT_MAX_VALUES_PER_REQUEST;
  if (!(maxBytes > 2) || !(maxValues >= 1)) throw new RangeError("batch limits: maxBytes must be > 2 and maxValues ≥ 1");
  const action = message.action ?? "create";
  const whole = asOneRequest(message, action, maxBytes, maxValues);
  if (whole) return [whole];

  if (message.messageType !== "data") {
    const batches: unknown[][] = [];
    let current: unknown[] = [];
    let bytes = 2;
    message.body.forEach((obj, i) => {
      const size = byteLength(JSON.stringify(obj));
      if (2 + size > maxBytes) {
        throw new OmfInvalidMessageError([`body[${i}]: serializes to ${size + 2} bytes alone, over the ${maxBytes}-byte limit`]);
      }
      const cost = size + (current.length > 0 ? 1 : 0);
      if (current.length > 0 && (bytes + cost > maxBytes || current.length + 1 > maxValues)) {
        batches.push(current);
        current = [];
        bytes = 2;
      }
      bytes += size + (current.length > 0 ? 1 : 0);
      current.push(obj);
    });
    if (current.length > 0) batches.push(current);
    return batches.map((body) => ({ messageType: message.messageType, action, body }) as unknown as M);
  }

  const batches: OmfDataItem[][] = [];
  let pieces: OmfDataItem[] = [];
  let bytes = 2;
  let count = 0;
  // The item currently being filled (last piece of `pieces`), with its values.
  let open: { source: OmfDataItem; values: OmfValue[] } | undefined;

  const closePiece = () => {
    if (open) pieces.push({ ...open.source, values: open.values } as OmfDataItem);
    open = undefined;
  };
  const closeBatch = () => {
    closePiece();
    if (pieces.length > 0) batches.push(pieces);
    pieces = [];
    bytes = 2;
    count = 0;
  };

  (message.body as readonly OmfDataItem[]).forEach((item, i) => {
    const values = (item.values ?? []) as readonly OmfValue[];
    if (values.length === 0) return;
    const shell = byteLength(JSON.stringify({ ...item, values: [] }));
    closePiece();
    values.forEach((value, j) => {
      const size = byteLength(JSON.stringify(value));
      const continuing = open !== undefined;
      const piecesInBatch = pieces.length + (open ? 1 : 0);
      const cost = continuing ? size + (open!.values.length > 0 ? 1 : 0) : (piecesInBatch > 0 ? 1 : 0) + shell + size;
      if (count > 0 && (bytes + cost > maxBytes || count + 1 > maxValues)) {
        const source = open?.source ?? item;
        closeBatch();
        open = { source, values: [] };
        bytes += shell + size;
      } else if (!continuing) {
        if (2 + shell + size > maxBytes) {
          throw new OmfInvalidMessageError([
            `body[${i}].values[${j}]: serializes to ${2 + shell + size} bytes alone, over the ${maxBytes}-byte limit`,
          ]);
        }
        open = { source: item, values: [] };
        bytes += cost;
      } else {
        bytes += cost;
      }
      if (bytes > maxBytes) {
        throw new OmfInvalidMessageError([
          `body[${i}].values[${j}]: serializes to ${2 + shell + size} bytes alone, over the ${maxBytes}-byte limit`,
        ]);
      }
      open!.values.push(value);
      count++;
    });
    closePiece();
  });
  closeBatch();
  return batches.map((body) => ({ messageType: "data", action, body }) as unknown as M);
}

/**
 * The message as one request, when it fits one: what the split below would return for it (its items and values, in
 * order), serialized once, whole; that body is kept for the send. Undefined when the split has to decide: over a
 * limit, empty, or with an item without values (the split leaves those out).
 */
function asOneRequest<M extends OmfMessage>(message: M, action: string, maxBytes: number, maxValues: number): M | undefined {
  let count = 0;
  if (message.messageType === "data") {
    for (const item of message.body as readonly OmfDataItem[]) {
      const n = item.values?.length ?? 0;
      if (n === 0) return undefined;
      count += n;
    }
  } else count = message.body.length;
  if (count === 0 || count > maxValues) return undefined;
  const json = JSON.stringify(message.body);
  // UTF-8 takes at least a byte per UTF-16 code unit: a string longer than the limit is over it in bytes too.
  if (json.length > maxBytes || byteLength(json) > maxBytes) return undefined;
  const request = { messageType: message.messageType, action, body: message.body } as unknown as M;
  keepSerializedBody(request, json);
  return request;
}

/**
 * Halves a message for retrying after a 413: data by value count (items regrouped, order kept), type/container
 * by object count. Undefined when it cannot be split (a single value or object).
 */
export function splitInHalf<M extends OmfMessage>(message: M): [M, M] | undefined {
  const action = message.action ?? "create";
  if (message.messageType !== "data") {
    if (message.body.length < 2) return undefined;
    const mid = Math.ceil(message.body.length / 2);
    return [
      { messageType: message.messageType, action, body: message.body.slice(0, mid) } as unknown as M,
      { messageType: message.messageType, action, body: message.body.slice(mid) } as unknown as M,
    ];
  }
  const items = message.body as readonly OmfDataItem[];
  const total = items.reduce((n, item) => n + (item.values?.length ?? 0), 0);
  if (total < 2) return undefined;
  let remaining = Math.ceil(total / 2);
  const first: OmfDataItem[] = [];
  const second: OmfDataItem[] = [];
  for (const item of items) {
    const values = (item.values ?? []) as readonly OmfValue[];
    if (values.length === 0) continue;
    const take = Math.min(remaining, values.length);
    if (take > 0) first.push({ ...item, values: values.slice(0, take) } as OmfDataItem);
    if (take < values.length) second.push({ ...item, values: values.slice(take) } as OmfDataItem);
    remaining -= take;
  }
  return [
    { messageType: "data", action, body: first } as OmfMessage as M,
    { messageType: "data", action, body: second } as OmfMessage as M,
  ];
}

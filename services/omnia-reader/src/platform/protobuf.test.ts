import { describe, expect, it } from "vitest";
import { OmniaProtocolError } from "./errors.js";
import { compactToAggregates, compactToDatapoints, decodeCompactDatapoints, encodeCompactDatapoints } from "./protobuf.js";

// The notes' §5.4 golden bytes: one item, totalCount 1, point (1727263834898000000 ns, 246.56092834472656, 192).
const GOLDEN =
  "0a590a2430303030303030302d303030302d303030302d303030302d30303030303030303030303110011a0474696d651a0576616c75651a06737461747573220a0880d1e583e7a99efc1722091100000020f3d16e40220318c001";

describe("CompactDatapointsDto", () => {
  it("decodes the golden bytes exactly (int64 nanoseconds as bigint)", () => {
    const bytes = Buffer.from(GOLDEN, "hex");
    expect(bytes.length).toBe(91);
    const dto = decodeCompactDatapoints(bytes);
    expect(dto.continuationToken).toBe("");
    expect(dto.data).toHaveLength(1);
    const item = dto.data[0]!;
    expect(item.id).toBe("00000000-0000-0000-0000-000000000001");
    expect(item.totalCount).toBe(1n);
    expect(item.fields).toEqual(["time", "value", "status"]);
    expect(item.values).toEqual([
      { case: "int64", value: 1727263834898000000n },
      { case: "double", value: 246.56092834472656 },
      { case: "uint32", value: 192 },
    ]);
    expect(compactToDatapoints(item)).toEqual([
      { time: "2024-09-25T11:30:34.8980000Z", timeNs: 1727263834898000000n, value: 246.56092834472656, status: 192 },
    ]);
  });

  it("encodes back to the same golden bytes", () => {
    const dto = decodeCompactDatapoints(Buffer.from(GOLDEN, "hex"));
    expect(Buffer.from(encodeCompactDatapoints(dto)).toString("hex")).toBe(GOLDEN);
  });

  it("keeps a time finer than a millisecond exact (no Number round trip)", () => {
    const ns = 1727263834898765432n;
    const bytes = encodeCompactDatapoints({
      data: [
        {
          id: "a",
          totalCount: 1n,
          fields: ["time", "value", "status"],
          values: [
            { case: "int64", value: ns },
            { case: "double", value: 1 },
            { case: "uint32", value: 0 },
          ],
        },
      ],
      continuationToken: "next",
    });
    const dto = decodeCompactDatapoints(bytes);
    expect(dto.continuationToken).toBe("next");
    const [p] = compactToDatapoints(dto.data[0]!);
    expect(p?.timeNs).toBe(ns);
    expect(p?.time).toBe("2024-09-25T11:30:34.898765432Z");
    // a status of 0 is still on the wire (a oneof member once set is always written)
    expect(p?.status).toBe(0);
  });

  it("reads columns by field name, whatever their order and number (aggregates: count as uint64)", () => {
    const item = {
      id: "agg",
      totalCount: 2n,
      fields: ["avg", "time", "count", "max"],
      values: [
        { case: "double" as const, value: 1.5 },
        { case: "int64" as const, value: 1_000_000_000n },
        { case: "uint64" as const, value: 3n },
        { case: "double" as const, value: 2 },
        { case: "double" as const, value: 4.5 },
        { case: "int64" as const, value: 2_000_000_000n },
        { case: "uint64" as const, value: 7n },
        { case: "double" as const, value: 9 },
      ],
    };
    const decoded = decodeCompactDatapoints(encodeCompactDatapoints({ data: [item], continuationToken: "" }));
    expect(compactToAggregates(decoded.data[0]!)).toEqual([
      { time: "1970-01-01T00:00:01.0000000Z", timeNs: 1_000_000_000n, avg: 1.5, count: 3, max: 2 },
      { time: "1970-01-01T00:00:02.0000000Z", timeNs: 2_000_000_000n, avg: 4.5, count: 7, max: 9 },
    ]);
  });

  it("skips unknown fields (a newer schema) and decodes an empty answer as no items", () => {
    expect(decodeCompactDatapoints(new Uint8Array(0))).toEqual({ data: [], continuationToken: "" });
    // field 9 varint 1, then the golden message
    const withUnknown = Buffer.concat([Buffer.from("4801", "hex"), Buffer.from(GOLDEN, "hex")]);
    expect(decodeCompactDatapoints(withUnknown).data[0]?.id).toBe("00000000-0000-0000-0000-000000000001");
  });

  it("refuses truncated bytes and values that are not whole rows", () => {
    expect(() => decodeCompactDatapoints(Buffer.from(GOLDEN, "hex").subarray(0, 40))).toThrow(OmniaProtocolError);
    const item = { id: "x", totalCount: 0n, fields: ["time", "value", "status"], values: [{ case: "int64" as const, value: 1n }] };
    expect(() => compactToDatapoints(item)).toThrow(/not a whole number/);
    const doubleTime = { id: "x", totalCount: 0n, fields: ["time"], values: [{ case: "double" as const, value: 1e300 }] };
    expect(() => compactToDatapoints(doubleTime)).toThrow(OmniaProtocolError);
  });

  it("damaged bytes either decode or fail as OmniaProtocolError, never otherwise (2000 seeded mutations)", () => {
    const golden = Buffer.from(GOLDEN, "hex");
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    let decoded = 0;
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(golden);
      for (let k = 0; k <= rand(4); k++) bytes[rand(bytes.length)] = rand(256);
      const cut = rand(3) === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes;
      try {
        for (const item of decodeCompactDatapoints(cut).data) compactToDatapoints(item);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(OmniaProtocolError);
      }
    }
    expect(decoded).toBeGreaterThan(0);
  });
});

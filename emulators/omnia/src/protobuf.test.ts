import { BinaryReader } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { encodeCompactDatapoints, wantsProtobuf } from "./protobuf.js";

// §5.4 of the protocol notes: one item, one point, 91 bytes, checked against the API's protoset.
const GOLDEN =
  "0a590a2430303030303030302d303030302d303030302d303030302d30303030303030303030303110011a0474696d651a0576616c75651a06737461747573220a0880d1e583e7a99efc1722091100000020f3d16e40220318c001";

describe("CompactDatapointsDto encoder", () => {
  it("writes the golden bytes of the notes", () => {
    const bytes = encodeCompactDatapoints({
      data: [
        {
          id: "00000000-0000-0000-0000-000000000001",
          totalCount: 1n,
          fields: ["time", "value", "status"],
          values: [
            { case: "int64", value: 1727263834898000000n },
            { case: "double", value: 246.56092834472656 },
            { case: "uint32", value: 192 },
          ],
        },
      ],
      continuationToken: null,
    });
    expect(bytes.length).toBe(91);
    expect(Buffer.from(bytes).toString("hex")).toBe(GOLDEN);
  });

  it("writes the continuation token as field 2 and a status of 0 inside its oneof", () => {
    const bytes = encodeCompactDatapoints({
      data: [{ id: "x", totalCount: 0n, fields: ["status"], values: [{ case: "uint32", value: 0 }] }],
      continuationToken: "tok",
    });
    const r = new BinaryReader(bytes);
    const [f1] = r.tag();
    expect(f1).toBe(1);
    const item = new BinaryReader(r.bytes());
    expect(item.tag()[0]).toBe(1);
    expect(item.string()).toBe("x");
    expect(item.tag()[0]).toBe(3); // totalCount 0 is left off
    expect(item.string()).toBe("status");
    expect(item.tag()[0]).toBe(4);
    expect(Buffer.from(item.bytes()).toString("hex")).toBe("1800");
    expect(r.tag()[0]).toBe(2);
    expect(r.string()).toBe("tok");
  });

  it("treats the three protobuf media types as protobuf", () => {
    expect(wantsProtobuf("application/protobuf")).toBe(true);
    expect(wantsProtobuf("application/x-protobuf")).toBe(true);
    expect(wantsProtobuf("application/x-google-protobuf; q=1")).toBe(true);
    expect(wantsProtobuf("application/json")).toBe(false);
    expect(wantsProtobuf(undefined)).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { IdigiPayloadError } from "./errors.js";
import { msgDocuments, parsePayload, splitTopic } from "./payload.js";

// The real 2012 capture (notes §1.8), compact.
const CAPTURE =
  '{"Document":{"Msg":{"timestamp":"2012-04-17T14:14:07.028Z","topic":"1654/DeviceCore/6283/0","operation":"UPDATE","DeviceCore":{"devEffectiveStartDate":"2012-04-16T21:43:00.000Z","dpDeviceType":"unknown","dpRestrictedStatus":0,"dpConnectionStatus":0,"grpId":1654,"id":{"devVersion":0,"devId":6283},"devMac":"00:40:9D:45:87:26","devConnectwareId":"00000000-00000000-00409DFF-FF458726","cstId":1654,"devTerminated":false}}}}';

describe("parsePayload (JSON)", () => {
  it("reads the 2012 capture: single Msg object", () => {
    const events = parsePayload(Buffer.from(CAPTURE), "json");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      topic: "1654/DeviceCore/6283/0",
      operation: "UPDATE",
      timestamp: "2012-04-17T14:14:07.028Z",
      resource: "DeviceCore",
    });
    expect(events[0]!.data["id"]).toEqual({ devVersion: 0, devId: 6283 });
    expect(events[0]!.group).toBeUndefined();
    expect(events[0]!.replay).toBeUndefined();
  });

  it("normalises a Msg array (batched block) to several events", () => {
    const doc = {
      Document: {
        Msg: [
          {
            timestamp: "2024-01-01T00:00:00.000Z",
            topic: "7603/DataPoint/test",
            operation: "INSERTION",
            group: "*",
            DataPoint: { data: 1 },
          },
          {
            timestamp: "2024-01-01T00:00:01.000Z",
            topic: "7603/DataPoint/test",
            operation: "INSERTION",
            replay: "true",
            DataPoint: { data: 2 },
          },
        ],
      },
    };
    const events = parsePayload(JSON.stringify(doc), "json");
    expect(events.map((e) => e.data["data"])).toEqual([1, 2]);
    expect(events[0]!.group).toBe("*");
    expect(events[1]!.replay).toBe(true);
  });

  it("treats an empty or null Document as a keepalive with no events", () => {
    expect(parsePayload('{"Document":{}}', "json")).toEqual([]);
    expect(parsePayload('{"Document":null}', "json")).toEqual([]);
    expect(parsePayload('{"Document":""}', "json")).toEqual([]);
  });

  it("upper-cases the operation and tolerates a BOM", () => {
    const e = parsePayload('\ufeff{"Document":{"Msg":{"timestamp":"t","topic":"1/Job/2","operation":"create","Job":{}}}}', "json");
    expect(e[0]!.operation).toBe("CREATE");
  });

  it("falls back to the topic for the resource when there is no single record key", () => {
    const e = parsePayload('{"Document":{"Msg":{"timestamp":"t","topic":"00000/devices/X","operation":"UPDATE","a":1,"b":2}}}', "json");
    expect(e[0]).toMatchObject({ resource: "devices", data: { a: 1, b: 2 } });
  });

  it.each([
    ["not JSON", "{nope", "bad_json"],
    ["no Document", '{"Doc":{}}', "bad_envelope"],
    ["Msg without topic", '{"Document":{"Msg":{"timestamp":"t","operation":"UPDATE"}}}', "bad_envelope"],
    ["Msg a number", '{"Document":{"Msg":5}}', "bad_envelope"],
  ])("rejects %s with IdigiPayloadError", (_n, text, code) => {
    try {
      parsePayload(text, "json");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IdigiPayloadError);
      expect((err as IdigiPayloadError).code).toBe(code);
    }
  });
});

describe("parsePayload (XML)", () => {
  const one = `<?xml version="1.0" encoding="UTF-8"?><Document><Msg topic="3/DeviceCore/882/7" operation="update" timestamp="2010-12-03T13:34:00.001Z"><DeviceCore><id><devId>882</devId><devVersion>7</devVersion></id><devMac>00:40:9D:00:00:01</devMac></DeviceCore></Msg></Document>`;

  it("reads attributes as envelope fields and the resource element as data (single Msg)", () => {
    const events = parsePayload(one, "xml");
    expect(events).toEqual([
      {
        topic: "3/DeviceCore/882/7",
        operation: "UPDATE",
        timestamp: "2010-12-03T13:34:00.001Z",
        resource: "DeviceCore",
        data: { id: { devId: "882", devVersion: "7" }, devMac: "00:40:9D:00:00:01" },
      },
    ]);
  });

  it("reads several Msgs and replay/group attributes", () => {
    const xml = `<Document><Msg topic="1/DataPoint/a" operation="insertion" timestamp="t1" replay="true" group="*"><DataPoint><data>1</data></DataPoint></Msg><Msg topic="1/DataPoint/b" operation="insertion" timestamp="t2"><DataPoint><data>2</data></DataPoint></Msg></Document>`;
    const events = parsePayload(xml, "xml");
    expect(events.map((e) => [e.topic, e.replay, e.group, e.data["data"]])).toEqual([
      ["1/DataPoint/a", true, "*", "1"],
      ["1/DataPoint/b", undefined, undefined, "2"],
    ]);
  });

  it("accepts a bare <Msg> without <Document> (the event-payload doc page's shape)", () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Msg topic="1/Alarm/5" operation="create" timestamp="t"><Alarm><almName>x</almName></Alarm></Msg>`;
    expect(parsePayload(xml, "xml")[0]).toMatchObject({ resource: "Alarm", operation: "CREATE", data: { almName: "x" } });
  });

  it("treats an empty <Document/> as no events and decodes entities", () => {
    expect(parsePayload("<Document/>", "xml")).toEqual([]);
    const xml = `<Document><Msg topic="1/DataPoint/a" operation="UPDATE" timestamp="t"><DataPoint><description>a &amp; b</description></DataPoint></Msg></Document>`;
    expect(parsePayload(xml, "xml")[0]!.data["description"]).toBe("a & b");
  });

  it("rejects malformed XML and foreign roots with IdigiPayloadError", () => {
    expect(() => parsePayload("<Document><Msg></Document>", "xml")).toThrow(IdigiPayloadError);
    expect(() => parsePayload("<Other/>", "xml")).toThrow(IdigiPayloadError);
  });
});

describe("splitTopic", () => {
  it("splits and URL-decodes key segments", () => {
    expect(splitTopic("00000/alert_status/41826/aggregate-throttle%2F00000000-00000000-000000FF-FF000000")).toEqual({
      customerId: "00000",
      resource: "alert_status",
      key: ["41826", "aggregate-throttle/00000000-00000000-000000FF-FF000000"],
    });
    expect(splitTopic("1210/DeviceCore/7201/0").resource).toBe("DeviceCore");
    expect(splitTopic("1/x/%E0%A4%A").key).toEqual(["%E0%A4%A"]);
  });
});

describe("msgDocuments (the raw payload of each Msg, as the seed's callback received it)", () => {
  it("a block of one Msg is returned byte for byte", () => {
    const json =
      '{"Document":{"Msg":{"timestamp":"2024-01-01T00:00:00.000Z","topic":"1/DataPoint/d/t","operation":"INSERTION","DataPoint":{"data":1.50}}}}';
    expect(msgDocuments(Buffer.from(json), "json", 1)).toEqual([json]);
  });

  it("a JSON block of several Msgs gives one Document per Msg, keys in their order", () => {
    const json =
      '{"Document":{"Msg":[{"topic":"1/DataPoint/a","operation":"INSERTION","timestamp":"t1","DataPoint":{"z":1,"a":2}},' +
      '{"topic":"1/DataPoint/b","operation":"INSERTION","timestamp":"t2","DataPoint":{"data":"x"}}]}}';
    const docs = msgDocuments(json, "json", 2)!;
    expect(docs).toEqual([
      '{"Document":{"Msg":{"topic":"1/DataPoint/a","operation":"INSERTION","timestamp":"t1","DataPoint":{"z":1,"a":2}}}}',
      '{"Document":{"Msg":{"topic":"1/DataPoint/b","operation":"INSERTION","timestamp":"t2","DataPoint":{"data":"x"}}}}',
    ]);
    // Each parses to the event it stands for.
    expect(parsePayload(docs[1]!, "json")).toEqual([parsePayload(json, "json")[1]]);
  });

  it("an XML block of several Msgs gives each Msg's own text inside <Document>, after the prolog", () => {
    const a = '<Msg topic="3/DeviceCore/882/7" operation="update" timestamp="t1"><DeviceCore><devId>882</devId></DeviceCore></Msg>';
    const b = '<Msg topic="3/DataPoint/d/s" operation="insertion" timestamp="t2" replay="true"><DataPoint><data>1</data></DataPoint></Msg>';
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Document>${a}\n${b}</Document>`;
    const docs = msgDocuments(xml, "xml", 2)!;
    expect(docs).toEqual([
      `<?xml version="1.0" encoding="UTF-8"?><Document>${a}</Document>`,
      `<?xml version="1.0" encoding="UTF-8"?><Document>${b}</Document>`,
    ]);
    expect(parsePayload(docs[1]!, "xml")).toEqual([parsePayload(xml, "xml")[1]]);
  });

  it("undefined when the Msgs found disagree with the events parsed", () => {
    expect(msgDocuments("<Document><Msg a='1'/></Document>", "xml", 2)).toBeUndefined();
    expect(msgDocuments('{"Document":{"Msg":[{}]}}', "json", 2)).toBeUndefined();
  });
});

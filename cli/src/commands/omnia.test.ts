import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  type CreateReaderRequest,
  OmniaReaderService,
  type SearchTimeseriesRequest,
  type WriteDataRequest,
} from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { describe, expect, it } from "vitest";
import { EXIT } from "../kit/exit.js";
import { datapointArg, datapointsFrom, registerOmnia, seriesSelector } from "./omnia.js";
import { runVerb } from "./testdata/harness.js";

const ID = "3f2a7c1e-0000-4000-8000-00000000abcd";

interface Seen {
  search?: SearchTimeseriesRequest;
  write?: WriteDataRequest;
  reader?: CreateReaderRequest;
}

function service(seen: Seen) {
  return (router: ConnectRouter) =>
    router.service(OmniaReaderService, {
      searchTimeseries: (req) => {
        seen.search = req;
        return { items: [{ id: ID, name: "ASGB.17IIC1030", facility: "1191", unit: "degC", source: "IMS" }], continuationToken: "next-1" };
      },
      getData: (req) => ({
        data: {
          id: req.id,
          datapoints: [
            { time: timestampFromDate(new Date("2021-02-01T09:54:05.420Z")), value: -0.000286102294921875, status: 192 },
            { time: timestampFromDate(new Date("2021-02-01T09:55:05.420Z")), value: 1.5, status: 0 },
          ],
        },
      }),
      getFirstOrLatest: () => ({}),
      writeData: (req) => {
        seen.write = req;
        return {};
      },
      createReader: (req) => {
        seen.reader = req;
        return { reader: { spec: req.reader, state: "running" } };
      },
    });
}

describe("omnia", () => {
  it("search names the series; -o json carries the continuation token", async () => {
    const seen: Seen = {};
    const r = await runVerb(registerOmnia, service(seen), ["omnia", "search", "ASGB.17*", "--source", "IMS"]);
    expect(seen.search).toMatchObject({ name: "ASGB.17*", source: "IMS" });
    expect(r.stdout).toMatch(new RegExp(`${ID}\\s+ASGB\\.17IIC1030\\s+1191\\s+degC\\s+IMS`));
    expect(r.stdout).toContain("more: --continuation-token next-1");
    const j = JSON.parse((await runVerb(registerOmnia, service({}), ["omnia", "search", "x"], { format: "json" })).stdout);
    expect(j).toMatchObject({ items: [{ id: ID, facility: "1191" }], continuationToken: "next-1" });
  });

  it("search with nothing to search by exits 2", async () => {
    const seen: Seen = {};
    const r = await runVerb(registerOmnia, service(seen), ["omnia", "search"]);
    expect(r.code).toBe(EXIT.usage);
    expect(seen.search).toBeUndefined();
  });

  it("data renders time, value and status", async () => {
    const r = await runVerb(registerOmnia, service({}), ["omnia", "data", ID, "--start", "1h"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+VALUE\s+STATUS$/);
    expect(lines[1]).toMatch(/^2021-02-01T09:54:05\.420Z\s+-0\.000286102294921875\s+192$/);
  });

  it("latest with no datapoint in the window exits 5", async () => {
    expect((await runVerb(registerOmnia, service({}), ["omnia", "latest", ID])).code).toBe(EXIT.notFound);
  });

  it("write: time=value[:status] arguments (status 192 by default), or the client's {datapoints} / {items} files", async () => {
    const seen: Seen = {};
    const r = await runVerb(registerOmnia, service(seen), [
      "omnia",
      "write",
      ID,
      "2026-01-02T03:04:05Z=21.5",
      "2026-01-02T03:05:05Z=22:64",
    ]);
    expect(r.code).toBe(0);
    expect(seen.write?.items[0]?.id).toBe(ID);
    expect(seen.write?.items[0]?.datapoints.map((d) => [timestampDate(d.time!).toISOString(), d.value, d.status])).toEqual([
      ["2026-01-02T03:04:05.000Z", 21.5, 192],
      ["2026-01-02T03:05:05.000Z", 22, 64],
    ]);
    const dir = mkdtempSync(join(tmpdir(), "meridian-omnia-"));
    writeFileSync(
      join(dir, "p.json"),
      JSON.stringify({
        items: [
          { id: "a", datapoints: [{ time: "2026-01-01T00:00:00Z", value: 1 }] },
          { id: "b", datapoints: [{ time: "2026-01-01T00:00:00Z", value: 2, status: 0 }] },
        ],
      }),
    );
    await runVerb(registerOmnia, service(seen), ["omnia", "write", "--file", join(dir, "p.json"), "--async"]);
    expect(seen.write?.items.map((i) => i.id)).toEqual(["a", "b"]);
    expect(seen.write?.async).toBe(true);
  });

  it("write refuses a bad datapoint, naming it (exit 2)", async () => {
    const seen: Seen = {};
    const r = await runVerb(registerOmnia, service(seen), ["omnia", "write", ID, "yesterday=1"]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.error).toContain('datapoint 0: "yesterday" is not a time');
    expect(() => datapointArg("2026-01-01T00:00:00Z=abc", 3)).toThrow('datapoint 3 "2026-01-01T00:00:00Z=abc": the value is not a number');
    expect(() => datapointsFrom(undefined, { datapoints: [{ time: "x", value: 1 }] }, "--file p.json")).toThrow("the series id is missing");
    expect(() => datapointsFrom("a", { datapoints: [{ time: "2026-01-01T00:00:00Z", value: "1" }] }, "--file p.json")).toThrow(
      '--file p.json datapoint 0: "value" must be a number',
    );
    expect(seen.write).toBeUndefined();
  });

  it("readers create: a series id or name@facility per --series", async () => {
    expect(seriesSelector(ID)).toEqual({ selector: { case: "id", value: ID } });
    expect(seriesSelector("ASGB.17*@1191")).toEqual({ selector: { case: "query", value: { name: "ASGB.17*", facility: "1191" } } });
    const seen: Seen = {};
    const r = await runVerb(registerOmnia, service(seen), [
      "omnia",
      "readers",
      "create",
      "plant",
      "-s",
      ID,
      "-s",
      "ASGB.17*@1191",
      "--interval",
      "30",
    ]);
    expect(r.code).toBe(0);
    expect(seen.reader?.reader?.series).toHaveLength(2);
    expect(seen.reader?.reader?.intervalSeconds).toBe(30);
    expect(r.stdout).toMatch(/plant\s+running\s+0\s+30s\s+60s/);
  });
});

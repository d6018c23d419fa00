import { describe, expect, it } from "vitest";
import { acceptedProperties, componentNames, desiredPatchOf, renderProperties, writtenPaths } from "./properties.js";

const none = () => undefined;

describe("renderProperties", () => {
  it("unwraps an ack without a value into $metadata only, and keeps a reported object that is not an ack as it is", () => {
    const out = renderProperties(
      {
        desired: { fanSpeed: 30, $version: 4 },
        reported: { fanSpeed: { ac: 202, av: 4 }, location: { lat: 1, lon: 2 }, $version: 7 },
      },
      none,
    );
    expect(out).toEqual({
      location: { lat: 1, lon: 2 },
      // No write recorded (e.g. set before this API listened): the section's version stands in.
      $metadata: { fanSpeed: { desiredValue: 30, desiredVersion: 4, ackVersion: 4, ackCode: 202 } },
    });
  });

  it("ignores a recorded write newer than the section (the emulator was reset since)", () => {
    const at = new Date("2026-01-01T00:00:00Z");
    const twin = { desired: { p: 1, $version: 2 }, reported: { $version: 1 } };
    expect(renderProperties(twin, () => ({ version: 9, at })).$metadata).toEqual({ p: { desiredValue: 1, desiredVersion: 2 } });
    expect(renderProperties(twin, () => ({ version: 2, at })).$metadata).toEqual({
      p: { desiredValue: 1, desiredVersion: 2, lastUpdateTime: "2026-01-01T00:00:00.000Z" },
    });
  });

  it("nests a component known from either section and leaves __t out", () => {
    const twin = { desired: { c1: { __t: "c", t: 5 }, $version: 3 }, reported: { c2: { __t: "c", x: 1 }, $version: 2 } };
    expect(componentNames(twin)).toEqual(new Set(["c1", "c2"]));
    expect(renderProperties(twin, none)).toEqual({
      c1: { $metadata: { t: { desiredValue: 5, desiredVersion: 3 } } },
      c2: { x: 1 },
    });
  });
});

describe("desiredPatchOf", () => {
  it("marks an object under a known component __t:c and leaves any other object a plain value", () => {
    expect(desiredPatchOf({ c1: { t: 1 }, settings: { a: 1 } }, new Set(["c1"]))).toEqual({
      c1: { __t: "c", t: 1 },
      settings: { a: 1 },
    });
    expect(desiredPatchOf({ t: 2 }, new Set(), "c9")).toEqual({ c9: { __t: "c", t: 2 } });
  });

  it("names the first key that is not a DTDL name, inside a component too", () => {
    expect(() => desiredPatchOf({ c1: { "x y": 1 } }, new Set(["c1"]))).toThrow(/^body\.c1\.x y:/);
    expect(() => desiredPatchOf({ __t: "c" }, new Set())).toThrow(/^body\.__t:/);
    expect(() => desiredPatchOf({ a: 1 }, new Set(), "c9")).not.toThrow();
  });
});

describe("acceptedProperties and writtenPaths", () => {
  it("report every written property with its version, deletions marked", () => {
    const patch = { a: 1, b: null, c1: { __t: "c", t: 2 } };
    expect(acceptedProperties(patch, 5)).toEqual({
      $metadata: { a: { desiredValue: 1, desiredVersion: 5 }, b: { desiredValue: null, desiredVersion: 5 } },
      c1: { $metadata: { t: { desiredValue: 2, desiredVersion: 5 } } },
    });
    expect(writtenPaths(patch)).toEqual([
      { name: "a", deleted: false },
      { name: "b", deleted: true },
      { name: "t", component: "c1", deleted: false },
    ]);
  });
});

import { describe, expect, it } from "vitest";
import { omfVersionOfEdsProduct, omfVersionOfPiSystem } from "./version.js";

describe("OMF version from what the endpoint says", () => {
  it("PI Web API: the release year in ProductTitle wins", () => {
    expect(omfVersionOfPiSystem({ ProductTitle: "PI Web API 2019 SP1", ProductVersion: "1.13.0.6518" })).toBe("1.0");
    expect(omfVersionOfPiSystem({ ProductTitle: "PI Web API 2020", ProductVersion: "1.14" })).toBe("1.1");
    expect(omfVersionOfPiSystem({ ProductTitle: "PI Web API 2021 SP3", ProductVersion: "1.17.0.1" })).toBe("1.2");
    expect(omfVersionOfPiSystem({ producttitle: "PI Web API 2023 SP1" })).toBe("1.2");
  });

  it("PI Web API: ProductVersion when the title names no year", () => {
    expect(omfVersionOfPiSystem({ ProductTitle: "PI Web API", ProductVersion: "1.19.1.1" })).toBe("1.2");
    expect(omfVersionOfPiSystem({ ProductVersion: "1.13.0.6518" })).toBe("1.1");
    expect(omfVersionOfPiSystem({ ProductVersion: "1.12.0" })).toBe("1.0");
  });

  it("PI Web API: a reply that says neither is unknown", () => {
    expect(omfVersionOfPiSystem({ Links: {} })).toBeUndefined();
    expect(omfVersionOfPiSystem("1.19")).toBeUndefined();
    expect(omfVersionOfPiSystem(null)).toBeUndefined();
  });

  it("Edge Data Store: 1.0.x speaks OMF 1.1 at most, later ones 1.2", () => {
    expect(omfVersionOfEdsProduct({ "Product Name": "Edge Data Store", "Product Version": "1.0.2.123" })).toBe("1.1");
    expect(omfVersionOfEdsProduct({ "Product Version": "1.1.1.46 (Meridian OMF emulator)" })).toBe("1.2");
    expect(omfVersionOfEdsProduct({ ProductVersion: "2.0.0" })).toBe("1.2");
    expect(omfVersionOfEdsProduct({ "Product Name": "Edge Data Store" })).toBeUndefined();
  });
});

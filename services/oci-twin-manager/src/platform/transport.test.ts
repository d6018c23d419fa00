import { describe, expect, it } from "vitest";
import { errorBody, fieldOf } from "./transport.js";

describe("fieldOf", () => {
  it.each([
    ["spec.contents[2].schema: unknown schema 'dobule'", "spec.contents[2].schema"],
    ["limit: must be between 1 and 1000", "limit"],
    ["Missing parameter: iotDomainId", "iotDomainId"],
    ["Invalid parameter 'displayName'", "displayName"],
    ['The field "inboundRoutes[3].condition" is not a valid expression', "inboundRoutes[3].condition"],
    ["Referenced 'digitalTwinModelId' does not exist", "digitalTwinModelId"],
    ['spec["@context"]: required (a string or an array)', 'spec["@context"]'],
    ['spec.contents[1]["@type"]: must include one of Telemetry, Property', 'spec.contents[1]["@type"]'],
    ["The request is malformed.", undefined],
    ["Error: something", undefined],
    ["", undefined],
  ])("%j → %j", (message, field) => {
    expect(fieldOf(message)).toBe(field);
  });
});

describe("errorBody", () => {
  it("reads OCI's {code, message}, OAuth's {error, error_description}, and plain text", () => {
    expect(errorBody('{"code":"InvalidParameter","message":"bad"}')).toEqual({ code: "InvalidParameter", message: "bad" });
    expect(errorBody('{"error":"invalid_grant","error_description":"no"}')).toEqual({ code: "invalid_grant", message: "no" });
    expect(errorBody("Bad Gateway")).toEqual({ message: "Bad Gateway" });
    expect(errorBody("")).toEqual({});
  });
});

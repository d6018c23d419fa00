import { isRetryable, MAX_RETRY_AFTER_MS, retryAfterOf, retryHintOf } from "@meridian/retry";
import { describe, expect, it } from "vitest";
import {
  OmfAuthError,
  OmfBadRequestError,
  OmfConflictError,
  OmfError,
  OmfNotFoundError,
  OmfPayloadTooLargeError,
  OmfServerError,
  OmfThrottledError,
} from "./errors.js";
import { classifyResult, parseOmfResponse } from "./response.js";
import {
  CDS_ACCEPTED,
  CDS_CONTAINER_NOT_DEFINED,
  CDS_ERROR_400,
  PI_409_EVENT_KEY,
  PI_413,
  PI_PARSE_ERROR,
  PI_PARTIAL_409,
} from "./testdata/bodies.js";

const parse = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  parseOmfResponse(status, headers, typeof body === "string" ? body : JSON.stringify(body), Date.parse("2026-01-01T00:00:00Z"));

describe("parseOmfResponse — PI Web API per-message report", () => {
  it("parses the notes' Messages/Events/Status shape (golden)", () => {
    const r = parse(409, PI_PARTIAL_409);
    expect(r).toMatchObject({
      ok: false,
      status: 409,
      partial: false,
      operationId: PI_PARTIAL_409.OperationId,
      requestId: PI_PARTIAL_409.OperationId,
    });
    expect(r.messages).toEqual([
      { index: 0, status: 200, severity: "info", message: "status 200" },
      {
        index: 1,
        status: 409,
        severity: "error",
        message: "A type with the supplied ID and version already exists, but it does not match the supplied type.",
        reason: "The type definition differs from the existing type.",
        resolution: "Delete the existing type or use a different type ID.",
        suggestions: ["Delete the existing type or use a different type ID."],
        eventCode: 4004,
        parameters: { TypeId: "FirstDynamicType", TypeVersion: "1.0.0.0" },
      },
    ]);
  });

  it("reports a whole-request failure with index null and the exception info", () => {
    const r = parse(400, PI_PARSE_ERROR);
    expect(r.messages).toHaveLength(1);
    expect(r.messages[0]).toMatchObject({
      index: null,
      status: 400,
      eventCode: 3002,
      exception: { type: "Newtonsoft.Json.JsonReaderException" },
    });
    expect(classifyResult(r)).toBeInstanceOf(OmfBadRequestError);
  });

  it("reads event details under `Event` as well as `EventInfo`, with inner events (unverified: which key PI sends)", () => {
    const r = parse(409, PI_409_EVENT_KEY);
    expect(r.messages[0]).toMatchObject({
      index: 0,
      message: "A container with the supplied ID already exists, but does not match the supplied container.",
      parameters: { ContainerId: "FirstContainer" },
      innerEvents: [{ message: "The supplied container overlaps with a different existing container.", severity: "error" }],
    });
  });

  it("reads camelCase keys too (unverified: PI documents PascalCase only)", () => {
    const r = parse(409, {
      operationId: "x",
      messages: [{ messageIndex: 2, events: [{ eventInfo: { message: "m" }, severity: "Warning" }], status: { code: 409 } }],
    });
    expect(r.messages).toEqual([{ index: 2, status: 409, severity: "warning", message: "m" }]);
    expect(r.operationId).toBe("x");
  });

  it("treats a 2xx whose per-message status failed as partial, classified by the worst message (unverified: no 207 observed; overall code may already be the worst)", () => {
    const r = parse(200, PI_PARTIAL_409);
    expect(r).toMatchObject({ ok: false, partial: true, status: 200 });
    const err = classifyResult(r, "pi-a");
    expect(err).toBeInstanceOf(OmfConflictError);
    expect(err?.message).toContain("[message 1]");
    expect(err?.status).toBe(409);
    expect(err?.result?.status).toBe(200);
    const multi = parse(207, PI_PARTIAL_409);
    expect(multi.partial).toBe(true);
    expect(classifyResult(multi)).toBeInstanceOf(OmfConflictError);
  });

  it("parses PI's 413 `Errors` body (golden)", () => {
    const r = parse(413, PI_413);
    expect(r.messages).toEqual([{ severity: "error", message: "Request content exceeds the maximum allowed length 4194304" }]);
    expect(classifyResult(r)).toBeInstanceOf(OmfPayloadTooLargeError);
  });

  it("ok for 200/201/202/204 with empty or informational bodies", () => {
    for (const s of [200, 201, 202, 204]) expect(parse(s, "").ok).toBe(true);
    expect(
      parse(200, {
        OperationId: "o",
        Messages: [
          { MessageIndex: 0, Events: [{ EventInfo: { Message: "PI Point already exists" }, Severity: "Warning" }], Status: { Code: 200 } },
        ],
      }).ok,
    ).toBe(true);
  });
});

describe("parseOmfResponse — CDS/ADH/EDS", () => {
  it("reads the 202 Operation-Id (golden)", () => {
    expect(parse(202, CDS_ACCEPTED)).toEqual({
      ok: true,
      status: 202,
      partial: false,
      messages: [],
      operationId: CDS_ACCEPTED["Operation-Id"],
      requestId: CDS_ACCEPTED["Operation-Id"],
    });
  });

  it("reads the ErrorResponseBody (golden)", () => {
    const r = parse(400, CDS_ERROR_400);
    expect(r.messages).toEqual([
      {
        severity: "error",
        message: "Redefinition of the type with the same ID is not allowed",
        reason: CDS_ERROR_400.Reason,
        resolution: CDS_ERROR_400.Resolution,
        parameters: { TypeId: "FirstDynamicType" },
      },
    ]);
    expect(r.operationId).toBe(CDS_ERROR_400.OperationId);
  });

  it("treats SDS's 400 redefinition as a conflict (unverified: inferred from fledge's defaults)", () => {
    const err = classifyResult(parse(400, CDS_ERROR_400), "adh");
    expect(err).toBeInstanceOf(OmfConflictError);
    expect(err?.status).toBe(400);
  });

  it("treats SDS's 400 'Container is not defined' and HTTP 404 as not-found (a bad request)", () => {
    const e1 = classifyResult(parse(400, CDS_CONTAINER_NOT_DEFINED));
    expect(e1).toBeInstanceOf(OmfNotFoundError);
    expect(e1).toBeInstanceOf(OmfBadRequestError);
    expect(
      classifyResult(
        parse(404, {
          OperationId: "o",
          Messages: [{ MessageIndex: 0, Events: [{ EventInfo: { Message: "Container not found." } }], Status: { Code: 404 } }],
        }),
      ),
    ).toBeInstanceOf(OmfNotFoundError);
  });

  it("parses nested ChildErrors (not in the notes; tolerated)", () => {
    const r = parse(400, { ...CDS_ERROR_400, ChildErrors: [{ Error: "child", Reason: "r" }] });
    expect(r.messages[0]?.innerEvents).toEqual([{ severity: "error", message: "child", reason: "r" }]);
  });

  it("takes a request id from response headers when the body has none (unverified: header names not documented)", () => {
    expect(parse(500, "", { "x-request-id": "req-1" }).requestId).toBe("req-1");
    expect(parse(500, "boom").messages).toEqual([{ severity: "error", message: "boom" }]);
  });
});

describe("classifyResult", () => {
  const cases: [number, Record<string, string>, new (...a: never[]) => Error][] = [
    [401, {}, OmfAuthError],
    [403, {}, OmfAuthError],
    [409, {}, OmfConflictError],
    [413, {}, OmfPayloadTooLargeError],
    [429, {}, OmfThrottledError],
    [429, { "retry-after": "7" }, OmfThrottledError],
    [503, { "retry-after": "3" }, OmfThrottledError],
    [503, {}, OmfServerError],
    [500, {}, OmfServerError],
    [502, {}, OmfServerError],
    [504, {}, OmfServerError],
    [408, {}, OmfServerError],
    [400, {}, OmfBadRequestError],
    [415, {}, OmfBadRequestError],
    [501, {}, OmfBadRequestError],
  ];
  it.each(cases)("HTTP %i %j → %o", (status, headers, cls) => {
    const err = classifyResult(parse(status, "", headers), "ep");
    expect(err).toBeInstanceOf(cls);
    expect((err as { status?: number }).status).toBe(status);
  });

  it("carries Retry-After (seconds and HTTP-date) and marks only throttling/server errors retryable", () => {
    const t = classifyResult(parse(429, "", { "Retry-After": "7" })) as OmfThrottledError;
    expect(isRetryable(t)).toBe(true);
    expect(retryAfterOf(t)).toBe(7000);
    const d = classifyResult(parse(503, "", { "retry-after": "Thu, 01 Jan 2026 00:00:05 GMT" })) as OmfThrottledError;
    expect(d).toBeInstanceOf(OmfThrottledError);
    expect(retryAfterOf(d)).toBe(5000);
    const s = classifyResult(parse(503, "", {}));
    expect(s).toBeInstanceOf(OmfServerError);
    expect(isRetryable(s)).toBe(true);
    expect(retryAfterOf(s)).toBeUndefined();
    expect(retryAfterOf(classifyResult(parse(500, "", { "retry-after": "3" })))).toBe(3000);
    for (const status of [400, 401, 404, 409, 413, 501]) expect(isRetryable(classifyResult(parse(status, "")))).toBe(false);
  });

  it("cuts an absurd Retry-After to the cap and keeps what the endpoint asked for", () => {
    const r = parse(429, "", { "Retry-After": "999999999" });
    expect(r).toMatchObject({ retryAfterMs: MAX_RETRY_AFTER_MS, retryAfterRequestedMs: 999_999_999_000 });
    const t = classifyResult(r) as OmfThrottledError;
    expect(t.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(t.retryAfterRequestedMs).toBe(999_999_999_000);
    expect(retryHintOf(t)).toEqual({ ms: MAX_RETRY_AFTER_MS, requestedMs: 999_999_999_000, clamped: true });
    const far = classifyResult(parse(503, "", { "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" })) as OmfThrottledError;
    expect(far).toBeInstanceOf(OmfThrottledError);
    expect(far.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(far.retryAfterRequestedMs).toBe(Date.parse("9999-12-31T23:59:59Z") - Date.parse("2026-01-01T00:00:00Z"));
    const server = classifyResult(parse(500, "", { "retry-after": "999999999" })) as OmfServerError;
    expect(retryAfterOf(server)).toBe(MAX_RETRY_AFTER_MS);
    expect(server.retryAfterRequestedMs).toBe(999_999_999_000);
    // Within the cap nothing is cut, and nothing extra is carried.
    expect(parse(429, "", { "Retry-After": "7" }).retryAfterRequestedMs).toBeUndefined();
    expect((classifyResult(parse(429, "", { "Retry-After": "7" })) as OmfThrottledError).retryAfterRequestedMs).toBeUndefined();
  });

  it("every classified error, retryable or not, is an OmfError", () => {
    for (const [status, headers] of [
      [429, {}],
      [503, { "retry-after": "1" }],
      [500, {}],
      [408, {}],
      [401, {}],
      [409, {}],
      [413, {}],
      [404, {}],
      [400, {}],
    ] as const) {
      const err = classifyResult(parse(status, "", headers), "ep");
      expect(err).toBeInstanceOf(OmfError);
      expect(err?.endpoint).toBe("ep");
    }
  });

  it("returns undefined for success and keeps the parsed result on the error", () => {
    expect(classifyResult(parse(202, CDS_ACCEPTED))).toBeUndefined();
    const err = classifyResult(parse(409, PI_PARTIAL_409), "pi-a") as OmfConflictError;
    expect(err.result?.messages[1]?.index).toBe(1);
    expect(err.endpoint).toBe("pi-a");
    expect(err.message).toMatch(/^OMF endpoint pi-a: HTTP 409: \[message 1\] A type with the supplied ID/);
  });
});

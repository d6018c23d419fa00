import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { CliError, EXIT, exitCodeOf } from "./exit.js";
import { describeError } from "./runtime.js";

describe("exit codes", () => {
  it.each([
    [Code.Unavailable, EXIT.unavailable],
    [Code.DeadlineExceeded, EXIT.unavailable],
    [Code.Unauthenticated, EXIT.auth],
    [Code.PermissionDenied, EXIT.auth],
    [Code.NotFound, EXIT.notFound],
    [Code.AlreadyExists, EXIT.conflict],
    [Code.FailedPrecondition, EXIT.conflict],
    [Code.Aborted, EXIT.conflict],
    [Code.InvalidArgument, EXIT.invalid],
    [Code.OutOfRange, EXIT.invalid],
    [Code.ResourceExhausted, EXIT.invalid],
    [Code.Internal, EXIT.error],
    [Code.Unimplemented, EXIT.error],
    [Code.Canceled, EXIT.interrupted],
  ])("maps %s to %i", (code, exit) => {
    expect(exitCodeOf(new ConnectError("x", code))).toBe(exit);
  });

  it("keeps a CliError's own code, and gives any other error 8", () => {
    expect(exitCodeOf(new CliError("bad file", EXIT.usage))).toBe(2);
    expect(exitCodeOf(new CliError("differs"))).toBe(1);
    expect(exitCodeOf(new Error("boom"))).toBe(EXIT.error);
  });

  it("names the gateway URL that could not be reached", () => {
    const refused = new ConnectError(
      "connect ECONNREFUSED 127.0.0.1:1",
      Code.Unavailable,
      undefined,
      undefined,
      Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
    );
    const d = describeError(refused, new URL("http://127.0.0.1:1"));
    expect(d).toEqual({ message: "cannot reach the gateway at http://127.0.0.1:1 (ECONNREFUSED)", exitCode: EXIT.unavailable });
  });

  it("says how to give a credential when there is none, and keeps the gateway's words otherwise", () => {
    expect(describeError(new ConnectError("no credential", Code.Unauthenticated), undefined).message).toMatch(/--api-key/);
    expect(describeError(new ConnectError('route "x" not found', Code.NotFound), undefined)).toEqual({
      message: 'route "x" not found (not_found)',
      exitCode: EXIT.notFound,
    });
  });
});

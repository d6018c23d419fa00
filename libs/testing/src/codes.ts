import { Code, ConnectError } from "@connectrpc/connect";

/** The Connect code and message a call failed with; fails the test when the call succeeds or throws something else. */
export async function codeOf(call: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error("expected the call to fail, it succeeded");
}

/**
 * Asserts that the call fails with `code` and, when `message` is given, with a message it matches (a string: one the
 * message contains); returns the error's message for further checks.
 */
export async function expectCode(call: Promise<unknown>, code: Code, message?: RegExp | string): Promise<string> {
  const got = await codeOf(call);
  if (got.code !== code) throw new Error(`expected code ${Code[code]}, got ${Code[got.code]}: ${got.message}`);
  if (message !== undefined && !(typeof message === "string" ? got.message.includes(message) : message.test(got.message)))
    throw new Error(
      `expected a message ${typeof message === "string" ? "containing" : "matching"} ${String(message)}, got: ${got.message}`,
    );
  return got.message;
}

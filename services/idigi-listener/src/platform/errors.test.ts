import { describe, expect, it } from "vitest";
import { echoText, MAX_ECHO_CHARS } from "./errors.js";

describe("echoText: what of a platform's text may be repeated", () => {
  it.each([
    ["Invalid topic", "Invalid topic"],
    ["  Invalid\ttopic  ", "Invalid topic"],
    ["com.digi.ws.InvalidRequestException: Invalid monTopic\n\tat com.digi.ws.X.y(X.java:12)", "Invalid monTopic"],
    ["java.lang.NullPointerException", ""],
    ["Bad request at com.digi.ws.X.y(X.java:12)", "Bad request"],
    ["failed (handler.py:42) somewhere", "failed"],
    ["Traceback (most recent call last): File x", ""],
    ["red \u001b[31mtext\u001b[0m\u0000 and a \u202e turn", "red [31mtext [0m and a turn"],
    ["first line\nsecond line", "first line"],
  ])("%j → %j", (input, expected) => {
    expect(echoText(input)).toBe(expected);
  });

  it(`is at most ${MAX_ECHO_CHARS} characters, the cut marked`, () => {
    const t = echoText("word ".repeat(1000));
    expect(t.length).toBe(MAX_ECHO_CHARS);
    expect(t.endsWith("…")).toBe(true);
    expect(echoText("x".repeat(50), 10)).toBe(`${"x".repeat(9)}…`);
  });
});

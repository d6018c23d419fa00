import type { Bus } from "@meridian/bus";
import { MAX_RETRY_AFTER_MS } from "@meridian/retry";
import { captureLogger, json, type RecordingServer, startRecordingServer } from "@meridian/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { IdigiNotFoundError, LegacyMonitorApi } from "../platform/index.js";
import { ackOptionWarning, fairShare, SessionManager } from "./manager.js";

describe("SessionManager and the monitor API's retries", () => {
  let s: RecordingServer | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    await s?.close();
  });

  it("logs a Retry-After cut to the cap once, at warn, with what iDigi asked for and what was used", async () => {
    let calls = 0;
    s = await startRecordingServer(() => (++calls === 1 ? json(429, "slow down", { "retry-after": "999999999" }) : json(404, "")));
    const api = new LegacyMonitorApi({ baseUrl: s.url, username: "u", password: "p" });
    const { logger, lines } = captureLogger();
    const sessions = new SessionManager({
      // start() fails at the platform (the monitor is not found) before it touches the bus.
      bus: {} as Bus,
      api,
      logger,
      target: { host: "127.0.0.1", port: 3200, tls: false, verifyCertificate: false },
      credentials: { username: "u", password: "p" },
      maxUnacked: 1,
      memoryBudgetBytes: 1024 * 1024,
      dedupeEvents: 0,
      includeRaw: false,
      instance: "test",
    });
    const retried = new Promise<void>((resolve) => api.onRetry(() => resolve()));
    // Only the retry's wait is faked: the HTTP exchanges run on real I/O.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const starting = sessions.start("42").catch((e: unknown) => e);
    await retried;
    await vi.advanceTimersByTimeAsync(MAX_RETRY_AFTER_MS);
    expect(await starting).toBeInstanceOf(IdigiNotFoundError);
    const clamped = lines.filter((l) => String(l["msg"]).startsWith("iDigi's Retry-After is longer than the cap"));
    expect(clamped).toHaveLength(1);
    expect(clamped[0]).toMatchObject({
      level: 40,
      method: "GET",
      path: "/ws/Monitor/42",
      status: 429,
      retryAfterRequestedMs: 999_999_999_000,
      retryAfterMs: MAX_RETRY_AFTER_MS,
    });
    vi.useRealTimers();
    await sessions.close();
  });
});

describe("ackOptionWarning (the ack option as the platform reads it back)", () => {
  const monitor = (ackOption?: string) => ({ id: "7", topics: ["DataPoint"], raw: {}, ...(ackOption ? { ackOption } : {}) });
  it.each([
    ["explicit", true, undefined],
    ["explicit", false, undefined],
    [undefined, true, undefined], // legacy lists may leave monAckOption out (notes §1.6): the documented field was sent
    [undefined, false, "did not confirm explicit acks"], // v1 documents no ack_option: not confirmed
    ["off", true, "acks are off"],
    ["off", false, "acks are off"],
    ["sometimes", false, 'read back: "sometimes"'],
  ])("ack option %s, documented %s → %s", (ack, documented, warning) => {
    const w = ackOptionWarning(monitor(ack), documented);
    if (warning === undefined) expect(w).toBeUndefined();
    else expect(w).toContain(warning);
  });
});

describe("fairShare (the sessions one of several instances runs)", () => {
  it.each([
    [4, 2, 2],
    [5, 2, 3], // rounded up: the shares cover every session
    [1, 2, 1],
    [0, 2, 0],
    [4, 1, 4], // alone: every session, which is how the sessions of an instance that died are taken over
    [4, 0, 4], // no replica key read yet: counted as alone
    [3, 5, 1],
  ])("%i sessions, %i instances → %i", (sessions, replicas, share) => {
    expect(fairShare(sessions, replicas)).toBe(share);
  });
});

import type { Profile } from "./options.js";

/** What the emulator counts since start or the last reset; `GET /_emulator/counters` and part of the state. */
export interface Counters {
  requests: number;
  omfRequests: number;
  acceptedRequests: number;
  rejectedRequests: number;
  acceptedMessages: number;
  rejectedMessages: number;
  valuesWritten: number;
  bytesReceived: number;
  tokensIssued: number;
  authFailures: number;
  byStatus: Record<string, number>;
  byProfile: Record<Profile, { omfRequests: number; acceptedMessages: number; rejectedMessages: number; valuesWritten: number }>;
  /** Faults fired, by kind. */
  faults: {
    latency: number;
    status: number;
    drop: number;
    hang: number;
    partial: number;
    partialBody: number;
    asyncFailure: number;
    asyncDelay: number;
  };
}

export function newCounters(): Counters {
  const p = () => ({ omfRequests: 0, acceptedMessages: 0, rejectedMessages: 0, valuesWritten: 0 });
  return {
    requests: 0,
    omfRequests: 0,
    acceptedRequests: 0,
    rejectedRequests: 0,
    acceptedMessages: 0,
    rejectedMessages: 0,
    valuesWritten: 0,
    bytesReceived: 0,
    tokensIssued: 0,
    authFailures: 0,
    byStatus: {},
    byProfile: { pi: p(), adh: p(), eds: p() },
    faults: { latency: 0, status: 0, drop: 0, hang: 0, partial: 0, partialBody: 0, asyncFailure: 0, asyncDelay: 0 },
  };
}

import type { OmniaClient } from "../platform/index.js";

/**
 * What the pipelines and the API use of the Omnia client: the service is written against this part of OmniaClient,
 * so that tests can hand it a client of their own making (a fault-injecting one, one on an emulator).
 */
export type OmniaApi = Pick<
  OmniaClient,
  | "getDatapoints"
  | "getAggregates"
  | "getFirstDatapoint"
  | "getLatestDatapoint"
  | "queryDatapoints"
  | "writeMultipleDatapoints"
  | "deleteDatapoints"
  | "searchTimeseries"
  | "getTimeseries"
  | "createTimeseries"
  | "getOrAddTimeseries"
  | "patchTimeseries"
  | "deleteTimeseries"
>;

export type { Datapoint, DatapointsPage, Timeseries, TimeseriesCreate } from "../platform/index.js";

/** A pending device-code sign-in, for GetAuthPrompt. */
export interface AuthPrompt {
  userCode: string;
  verificationUri: string;
  message: string;
  since: Date;
}

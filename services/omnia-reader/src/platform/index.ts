/** The Omnia Timeseries client: its exports come here. */
export const PLATFORM = "omnia";

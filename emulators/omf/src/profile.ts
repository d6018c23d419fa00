/** Which receiver the emulator plays: PI Web API, AVEVA Data Hub or Edge Data Store. */
export type Profile = "pi" | "adh" | "eds";

/**
 * Platform names on the command line, in lower case as people type them, with the enum value of
 * meridian.telemetry.v1.Platform (kept here, not imported, so that registering the commands loads no protobuf code;
 * platform-names.test.ts checks them against the generated enum).
 */
export const PLATFORMS: Readonly<Record<string, number>> = {
  omf: 1,
  "iot-central": 2,
  iotc: 2,
  idigi: 3,
  omnia: 4,
  "oci-iot": 5,
  oci: 5,
  api: 6,
};
export const PLATFORM_NAMES = Object.keys(PLATFORMS);

/** The name people read for a platform's enum value. */
export function platformName(value: number): string {
  const names: Record<number, string> = { 0: "", 1: "omf", 2: "iot-central", 3: "idigi", 4: "omnia", 5: "oci-iot", 6: "api" };
  return names[value] ?? String(value);
}

import { RequestViolations } from "@meridian/service-kit";
import { OCID, TWIN_KEY } from "../pipeline/twins.js";

/** Request validation, all in one place: every problem is reported with its field path (proto names). */

export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_QUERY_ROWS = 500;
export const DEFAULT_QUERY_ROWS = 100;
/** 30 days, manage-dt's --last-minutes at most. */
export const MAX_LAST_MINUTES = 43_200;
export const DEFAULT_LAST_MINUTES = 5;
export const MAX_OFFSET = 1_000_000;
export const MAX_CONTENT_PATHS = 100;
export const MAX_CONTENT_PATH = 512;
export const MAX_DEVICE_SECRET_BYTES = 4096;
export const MAX_ENDPOINT = 1024;
export const MAX_PAYLOAD_BYTES = 256 * 1024;
export const MAX_DISPLAY_NAME = 255;
export const MAX_SPEC_URI = 2048;
export const MAX_PAGE_TOKEN = 4096;

type Ref = { ref: { case: "key" | "instanceId" | undefined; value?: string | undefined } } | undefined;

export class Violations extends RequestViolations {
  twinKey(path: string, value: string): void {
    if (value === "") this.add(path, "is required");
    else if (!TWIN_KEY.test(value)) this.add(path, "must be 1-63 lower-case letters, digits or '-'");
  }
  ocid(path: string, value: string, kind: string, required = true): void {
    if (value === "") {
      if (required) this.add(path, "is required");
    } else if (value.length > 512 || !OCID.test(value)) this.add(path, `"${value.slice(0, 80)}" is not ${kind} OCID`);
  }
  twinRef(path: string, ref: Ref): void {
    if (!ref || ref.ref.case === undefined) this.add(path, "is required (key or instance_id)");
    else if (ref.ref.case === "key") this.twinKey(`${path}.key`, ref.ref.value ?? "");
    else this.ocid(`${path}.instance_id`, ref.ref.value ?? "", "a digital twin instance");
  }
  domain(path: string, value: string): void {
    if (value !== "" && value !== "default") this.ocid(path, value, "an IoT domain");
  }
  maxLength(path: string, value: string, max: number): void {
    if (value.length > max) this.add(path, `longer than ${max} characters`);
  }
  range(path: string, value: number, min: number, max: number, zeroAllowed = true): void {
    if (value === 0 && zeroAllowed) return;
    if (value < min || value > max) this.add(path, `must be ${min} to ${max}${zeroAllowed ? " (or 0 for the default)" : ""}, got ${value}`);
  }
  /** A device endpoint path: 1 to 1024 characters, relative, no "..", no query. */
  endpoint(path: string, value: string): void {
    if (value.length > MAX_ENDPOINT) this.add(path, `longer than ${MAX_ENDPOINT} characters`);
    else if (value.split("/").includes("..") || value.includes("?") || value.includes("#") || value.startsWith("/") || /[\s\\]/.test(value))
      this.add(path, `"${value.slice(0, 80)}" is not a device endpoint path (e.g. iot/v1/telemetry; no "..", no leading /)`);
  }
}

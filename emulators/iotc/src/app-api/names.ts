/** What the application API accepts as a device id and as a DTDL name (component, command, property, telemetry). */
import { badRequest } from "./errors.js";

/** IoT Central device ids: letters, digits and `-._:`, at most 128 characters. */
const DEVICE_ID = /^[A-Za-z0-9\-._:]{1,128}$/;
/** DTDL v2 names: a letter first, then letters, digits and `_`, not ending in `_`, at most 64 characters. */
const DTDL_NAME = /^[A-Za-z](?:[A-Za-z0-9_]{0,62}[A-Za-z0-9])?$/;

export function deviceIdOf(raw: string): string {
  const id = safeDecode(raw);
  if (!DEVICE_ID.test(id)) throw badRequest("deviceId", "must be 1 to 128 letters, digits or -._:");
  return id;
}

/** A path segment that must be a DTDL name; `what` is the parameter's name in the error. */
export function dtdlNameOf(raw: string, what: string): string {
  const name = safeDecode(raw);
  checkDtdlName(name, what);
  return name;
}

export function checkDtdlName(name: string, what: string): void {
  if (!DTDL_NAME.test(name)) {
    throw badRequest(what, `${JSON.stringify(name.slice(0, 80))} is not a DTDL name (a letter, then letters, digits or _, at most 64)`);
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

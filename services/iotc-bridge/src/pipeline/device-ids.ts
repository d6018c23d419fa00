import { platformToken } from "@meridian/bus";
import type { Source } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { normaliseRegistrationId } from "../platform/index.js";
import { RouteOptionError } from "./errors.js";

/** How source devices are named in IoT Central when neither the route nor the application says. */
export const DEFAULT_DEVICE_ID_TEMPLATE = "{connection}-{device}";
export const MAX_TEMPLATE_LENGTH = 256;
const PLACEHOLDERS = new Set(["platform", "connection", "device"]);

/** The template's problem, or undefined when it can be used: only {platform} {connection} {device}, at least one. */
export function templateProblem(template: string): string | undefined {
  if (template.length > MAX_TEMPLATE_LENGTH) return `longer than ${MAX_TEMPLATE_LENGTH} characters`;
  const names = [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1] ?? "");
  const unknown = names.filter((n) => !PLACEHOLDERS.has(n));
  if (unknown.length > 0) return `unknown placeholder {${unknown[0]}}: use {platform}, {connection} and {device}`;
  if (!names.includes("device"))
    return "must contain {device}: without it every source device of the route would be the same IoT Central device";
  return undefined;
}

/** "platform/connection/device": how a source is named in records, logs and dead-letter reasons. */
export function sourceName(source: Pick<Source, "platform" | "connection" | "device">): string {
  return `${platformToken(source.platform)}/${source.connection}/${source.device}`;
}

/**
 * The IoT Central device id a source device becomes: the template's placeholders replaced, then normalised to what DPS
 * accepts (the platform's normaliseRegistrationId: lower case, other characters replaced, at most 128). Different
 * sources may normalise to the same id ("Pump 1" and "pump-1"); the caller detects that (DeviceStore.claim).
 */
export function deviceIdFor(template: string, source: Pick<Source, "platform" | "connection" | "device">): string {
  const problem = templateProblem(template);
  if (problem) throw new RouteOptionError("device_id_template", problem);
  const raw = template.replace(/\{(platform|connection|device)\}/g, (_, name: string) =>
    name === "platform" ? platformToken(source.platform) : name === "connection" ? source.connection : source.device,
  );
  try {
    return normaliseRegistrationId(raw).registrationId;
  } catch (err) {
    throw new RouteOptionError("device_id_template", `"${raw}" leaves no IoT Central device id: ${(err as Error).message}`);
  }
}

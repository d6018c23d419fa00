/**
 * Devices as the application API shows them: the model's device records (every device DPS or the control plane
 * created), with the template the device announced and its status as `enabled`. Only `enabled` and `displayName`
 * can be changed; the rest of a device is the device's or the emulator's own.
 */
import { randomUUID } from "node:crypto";
import type { DeviceRecord, IotcModel } from "../model.js";
import { AppApiError, badRequest, deviceNotFound } from "./errors.js";

/** Devices per page when the caller does not ask for fewer. */
export const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
const MAX_DISPLAY_NAME = 200;
/** Display names kept before those of devices the model no longer holds are dropped. */
const MAX_DISPLAY_NAMES = 10_000;

export interface DeviceView {
  id: string;
  etag: string;
  displayName: string;
  template?: string;
  simulated: boolean;
  provisioned: boolean;
  enabled: boolean;
}

export interface DevicePage {
  value: DeviceView[];
  nextLink?: string;
}

/** ODATA options IoT Central knows that the emulator does not evaluate: refused rather than silently ignored. */
const UNSUPPORTED_QUERY = ["$filter", "$orderby", "$skip", "$select", "$expand", "$count"];

function pageSizeOf(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PAGE_SIZE) throw badRequest(name, `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  return n;
}

export class Devices {
  /**
   * Display names set through the API, for the device record they were set on (a device created again after an
   * emulator reset starts without one); a device without one shows its id, as IoT Central does.
   */
  private readonly displayNames = new Map<string, { name: string; createdAt: Date }>();

  constructor(private readonly model: IotcModel) {}

  view(d: DeviceRecord): DeviceView {
    return {
      id: d.deviceId,
      etag: d.etag,
      displayName: this.displayNameOf(d),
      ...(d.modelId === undefined ? {} : { template: d.modelId }),
      simulated: false,
      provisioned: d.assignedAt !== undefined,
      enabled: d.status === "enabled",
    };
  }

  private displayNameOf(d: DeviceRecord): string {
    const n = this.displayNames.get(d.deviceId);
    return n !== undefined && n.createdAt === d.createdAt ? n.name : d.deviceId;
  }

  require(deviceId: string): DeviceRecord {
    const d = this.model.device(deviceId);
    if (!d) throw deviceNotFound(deviceId);
    return d;
  }

  /**
   * Devices in id order, `maxpagesize` per page; `$top` caps the total. The next page starts after the last id of
   * this one (`$skiptoken`), so devices added meanwhile neither repeat nor shift the pages.
   */
  list(query: URLSearchParams, selfUrl: URL): DevicePage {
    for (const name of UNSUPPORTED_QUERY) {
      if (query.has(name)) throw badRequest(name, "is not supported by the emulator (only $top, maxpagesize and nextLink paging)");
    }
    const top = pageSizeOf(query, "$top");
    const pageSize = Math.min(pageSizeOf(query, "maxpagesize") ?? DEFAULT_PAGE_SIZE, top ?? MAX_PAGE_SIZE);
    const token = query.get("$skiptoken");
    let after: string | undefined;
    if (token !== null) {
      after = Buffer.from(token, "base64url").toString("utf8");
      if (after.length === 0 || Buffer.from(after, "utf8").toString("base64url") !== token) {
        throw badRequest("$skiptoken", "is not a token this API issued");
      }
    }
    const ids = this.model
      .list()
      .map((d) => d.deviceId)
      .sort();
    const start = after === undefined ? 0 : ids.findIndex((id) => id > after);
    const slice = start < 0 ? [] : ids.slice(start, start + pageSize);
    const value = slice.map((id) => this.view(this.model.device(id)!));
    const remaining = top === undefined ? undefined : top - value.length;
    const more = start >= 0 && start + pageSize < ids.length && (remaining === undefined || remaining > 0);
    if (!more) return { value };
    const next = new URL(selfUrl);
    next.searchParams.set("$skiptoken", Buffer.from(slice.at(-1)!, "utf8").toString("base64url"));
    next.searchParams.set("maxpagesize", String(pageSize));
    if (remaining !== undefined) next.searchParams.set("$top", String(remaining));
    return { value, nextLink: next.toString() };
  }

  /**
   * PATCH /devices/{id}. Fields that are the device's own (`id`, `provisioned`, `template`, `simulated`) may be sent
   * back unchanged, as a client that PATCHes what it got does; changing them is refused naming the field.
   */
  update(deviceId: string, body: unknown, ifMatch: string | undefined): DeviceView {
    const d = this.require(deviceId);
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("body", "must be a JSON object");
    const patch = body as Record<string, unknown>;
    const current = this.view(d);
    const etag = patch.etag ?? ifMatch;
    if (etag !== undefined && etag !== "*" && etag !== d.etag) {
      throw new AppApiError(412, "PreconditionFailed", `etag ${JSON.stringify(etag)} is not the device's current etag`);
    }
    let enabled: boolean | undefined;
    let displayName: string | undefined;
    for (const [k, v] of Object.entries(patch)) {
      switch (k) {
        case "etag":
          break;
        case "enabled":
          if (typeof v !== "boolean") throw badRequest("body.enabled", "must be true or false");
          enabled = v;
          break;
        case "displayName":
          if (typeof v !== "string" || v.length === 0 || v.length > MAX_DISPLAY_NAME) {
            throw badRequest("body.displayName", `must be a string of 1 to ${MAX_DISPLAY_NAME} characters`);
          }
          displayName = v;
          break;
        case "id":
        case "provisioned":
        case "template":
        case "simulated":
          if (v !== current[k]) throw badRequest(`body.${k}`, `cannot be changed in the emulator (it is ${JSON.stringify(current[k])})`);
          break;
        case "organizations":
          if (!Array.isArray(v) || v.length > 0) throw badRequest("body.organizations", "organizations are not emulated");
          break;
        default:
          throw badRequest(`body.${k}`, "is not a device field (enabled, displayName)");
      }
    }
    if (displayName !== undefined && displayName !== current.displayName) {
      this.displayNames.set(deviceId, { name: displayName, createdAt: d.createdAt });
      if (this.displayNames.size > MAX_DISPLAY_NAMES) {
        for (const id of this.displayNames.keys()) if (this.model.device(id) === undefined) this.displayNames.delete(id);
      }
      d.etag = Buffer.from(`"${randomUUID()}"`).toString("base64");
      d.updatedAt = new Date();
    }
    // Disabling drops the device's hub connection; DPS and the hub refuse it until it is enabled again.
    if (enabled !== undefined && enabled !== current.enabled) this.model.setStatus(deviceId, enabled ? "enabled" : "disabled");
    return this.view(d);
  }
}

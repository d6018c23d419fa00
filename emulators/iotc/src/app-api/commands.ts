/**
 * Commands (protocol notes 3.1): a command is the direct method `command`, or `component*command` for a component's.
 * An offline-capable command ("Queue if offline" in a real device template) is asked for with `?queueIfOffline=true`,
 * since the emulator has no templates: when the device cannot take the method it goes out as a C2D message whose
 * application property `method-name` carries the name, and the answer is 202.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { IotcModel, MethodResult } from "../model.js";
import { isJsonObject } from "../twin.js";
import { AppApiError, badRequest } from "./errors.js";

/** IoT Central's bounds on a command request (DeviceCommand, api-version 2022-07-31). */
export const RESPONSE_TIMEOUT = { min: 5, max: 30, default: 30 } as const;
export const CONNECTION_TIMEOUT = { min: 0, max: 30, default: 0 } as const;
/** How often a command waiting for its device (connectionTimeout) tries again. */
const CONNECTION_RETRY_MS = 250;
/** Commands waiting for their device at once; more are refused 429, as IoT Central throttles. */
export const MAX_COMMANDS_IN_FLIGHT = 1000;
/** Command executions remembered for the history (the latest per device and command), oldest forgotten first. */
const MAX_HISTORY = 10_000;

/** The property that names an offline command's method in its C2D message (protocol notes 3.1). */
export const METHOD_NAME_PROPERTY = "method-name";

export interface DeviceCommand {
  id: string;
  request?: unknown;
  response?: unknown;
  responseCode?: number;
  responseTimeout: number;
  connectionTimeout: number;
}

export interface CommandRequest {
  request?: unknown;
  responseTimeout: number;
  connectionTimeout: number;
}

const FIELDS = new Set(["request", "responseTimeout", "connectionTimeout"]);

function bounded(body: Record<string, unknown>, field: string, bounds: { min: number; max: number; default: number }): number {
  const v = body[field];
  if (v === undefined) return bounds.default;
  if (typeof v !== "number" || !Number.isInteger(v) || v < bounds.min || v > bounds.max) {
    throw badRequest(`body.${field}`, `must be an integer number of seconds from ${bounds.min} to ${bounds.max}`);
  }
  return v;
}

/** The POST body: `{request?, responseTimeout?, connectionTimeout?}`; anything else is named and refused. */
export function commandRequestOf(body: unknown): CommandRequest {
  if (!isJsonObject(body)) throw badRequest("body", "must be a JSON object {request, responseTimeout, connectionTimeout}");
  for (const k of Object.keys(body)) {
    if (!FIELDS.has(k)) throw badRequest(`body.${k}`, "is not a field of a command request (request, responseTimeout, connectionTimeout)");
  }
  return {
    ...(body.request === undefined ? {} : { request: body.request }),
    responseTimeout: bounded(body, "responseTimeout", RESPONSE_TIMEOUT),
    connectionTimeout: bounded(body, "connectionTimeout", CONNECTION_TIMEOUT),
  };
}

const isNotOnline = (r: MethodResult): boolean =>
  r.status === 404 && isJsonObject(r.payload) && (r.payload as { errorCode?: unknown }).errorCode === 404103;
const isTimeout = (r: MethodResult): boolean =>
  r.status === 504 && isJsonObject(r.payload) && (r.payload as { errorCode?: unknown }).errorCode === 504101;

export type CommandOutcome = { status: 201 | 202; body: DeviceCommand };

export class Commands {
  private readonly history = new Map<string, DeviceCommand>();
  private inFlight = 0;

  constructor(private readonly model: IotcModel) {}

  /**
   * Runs `methodName` on the device. Waits up to connectionTimeout for a device that is not taking methods yet, then
   * up to responseTimeout for its answer. Resolves 201 with the device's own status and payload, or 202 when queued;
   * rejects with 404 (device not connected) or 504 (no answer in time).
   */
  async run(deviceId: string, methodName: string, req: CommandRequest, queueIfOffline: boolean): Promise<CommandOutcome> {
    if (this.inFlight >= MAX_COMMANDS_IN_FLIGHT) {
      throw new AppApiError(429, "TooManyRequests", `${MAX_COMMANDS_IN_FLIGHT} commands are already waiting for devices`, {
        "retry-after": "1",
      });
    }
    this.inFlight++;
    try {
      return await this.execute(deviceId, methodName, req, queueIfOffline);
    } finally {
      this.inFlight--;
    }
  }

  private async execute(deviceId: string, methodName: string, req: CommandRequest, queueIfOffline: boolean): Promise<CommandOutcome> {
    const id = randomUUID();
    const base: DeviceCommand = {
      id,
      ...(req.request === undefined ? {} : { request: req.request }),
      responseTimeout: req.responseTimeout,
      connectionTimeout: req.connectionTimeout,
    };
    const deadline = Date.now() + req.connectionTimeout * 1000;
    for (;;) {
      const result = await this.model.invokeMethod(deviceId, methodName, req.request ?? null, req.responseTimeout);
      if (isNotOnline(result)) {
        if (queueIfOffline) {
          this.model.sendC2D(deviceId, Buffer.from(JSON.stringify(req.request ?? null)), { [METHOD_NAME_PROPERTY]: methodName });
          this.remember(deviceId, methodName, base);
          return { status: 202, body: base };
        }
        const left = deadline - Date.now();
        if (left > 0) {
          await sleep(Math.min(CONNECTION_RETRY_MS, left));
          continue;
        }
        throw new AppApiError(
          404,
          "NotFound",
          `device ${deviceId} is not connected: command ${methodName} could not be sent` +
            (req.connectionTimeout > 0 ? ` (waited ${req.connectionTimeout} s)` : ""),
        );
      }
      if (isTimeout(result)) {
        throw new AppApiError(
          504,
          "GatewayTimeout",
          `device ${deviceId} did not answer command ${methodName} within ${req.responseTimeout} s`,
        );
      }
      const done: DeviceCommand = { ...base, response: result.payload, responseCode: result.status };
      this.remember(deviceId, methodName, done);
      return { status: 201, body: done };
    }
  }

  /** GET .../commands/{name}: the latest execution, as IoT Central's history lists it. */
  latest(deviceId: string, methodName: string): DeviceCommand[] {
    const c = this.history.get(`${deviceId}\n${methodName}`);
    return c ? [c] : [];
  }

  private remember(deviceId: string, methodName: string, c: DeviceCommand): void {
    const key = `${deviceId}\n${methodName}`;
    this.history.delete(key);
    this.history.set(key, c);
    if (this.history.size > MAX_HISTORY) this.history.delete(this.history.keys().next().value!);
  }
}

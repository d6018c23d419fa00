/**
 * The `/_emulator` admin surface (emulator kit): state, faults, reset, the CA, and the control-plane calls a test or
 * an operator makes over HTTP instead of in process (desired updates, methods, C2D, device status, enrollments).
 */
import { BadRequestError, createAdminSurface, FaultConfigError } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import type { Provisioning } from "./dps.js";
import type { IotcEmulator } from "./emulator.js";
import { type Faults, FaultConfigError as IotcFaultConfigError, parseFaultConfig } from "./faults.js";
import { DeviceLimitError, InvalidRequestError } from "./model.js";
import { isJsonObject, TwinPatchError } from "./twin.js";

const DEVICE = "([a-z0-9][a-z0-9\\-._:%]{0,383})";

function str(body: Record<string, unknown>, field: string, optional = false): string | undefined {
  const v = body[field];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "string" || v.length === 0) throw new BadRequestError(field, `${field} must be a non-empty string`);
  return v;
}

/** Emulator errors that are the caller's fault become 400s naming what is wrong. */
function asBadRequest<T>(field: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof InvalidRequestError || err instanceof TwinPatchError || err instanceof DeviceLimitError)
      throw new BadRequestError(field, err.message);
    throw err;
  }
}

export function createAdmin(emulator: () => IotcEmulator, faults: Faults, provisioning: Provisioning, caPem: string, log: Logger) {
  const id = (params: string[]) => decodeURIComponent(params[0]!);
  return createAdminSurface<Record<string, unknown>>({
    state: (query) => {
      const e = emulator();
      const deviceId = query.get("deviceId") ?? undefined;
      return {
        mqttHost: e.mqttHost,
        httpsUrl: e.httpsUrl,
        idScope: e.idScope,
        hubHostName: e.hubHostName,
        devices: e.devices(),
        telemetryCount: e.telemetry(deviceId).length,
        faults: faults.list(),
      };
    },
    reset: () => {
      emulator().model.reset();
      provisioning.reset();
      faults.clear();
      return { reset: true };
    },
    faults: {
      parse: (body) => {
        try {
          parseFaultConfig(body);
        } catch (err) {
          if (err instanceof IotcFaultConfigError) throw new FaultConfigError("fault", err.message);
          throw err;
        }
        return body;
      },
      add: (f) => {
        faults.set(f);
        return { faults: faults.list() };
      },
      list: () => ({ faults: faults.list() }),
      clear: () => {
        faults.clear();
        return { faults: {} };
      },
    },
    caPem: () => caPem,
    logger: log,
    routes: [
      {
        method: "GET",
        path: "telemetry",
        handle: (r) =>
          emulator()
            .telemetry(r.query.get("deviceId") ?? undefined)
            .map((m) => ({ ...m, body: m.body.toString("base64") })),
      },
      { method: "GET", path: new RegExp(`^devices/${DEVICE}/twin$`), handle: (r) => emulator().twin(id(r.params)) },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/desired$`),
        handle: (r) => ({ version: asBadRequest("body", () => emulator().updateDesired(id(r.params), r.json())) }),
      },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/methods$`),
        handle: (r) => {
          const body = r.json();
          const name = str(body, "methodName")!;
          const timeoutSeconds = body.timeoutSeconds;
          if (timeoutSeconds !== undefined && typeof timeoutSeconds !== "number") {
            throw new BadRequestError("timeoutSeconds", "timeoutSeconds must be a number");
          }
          return asBadRequest("body", () =>
            emulator().invokeMethod(id(r.params), name, body.payload, timeoutSeconds === undefined ? {} : { timeoutSeconds }),
          );
        },
      },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/c2d$`),
        handle: (r) => {
          const body = r.json();
          const text = str(body, "body")!;
          const props = body.properties ?? {};
          if (!isJsonObject(props) || Object.values(props).some((v) => typeof v !== "string")) {
            throw new BadRequestError("properties", "properties must be an object of strings");
          }
          asBadRequest("body", () => emulator().sendC2D(id(r.params), text, props as Record<string, string>));
          return { sent: true };
        },
      },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/status$`),
        handle: (r) => {
          const status = str(r.json(), "status");
          if (status !== "enabled" && status !== "disabled") throw new BadRequestError("status", "status must be enabled or disabled");
          emulator().setDeviceStatus(id(r.params), status);
          return { status };
        },
      },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/disconnect$`),
        handle: (r) => {
          emulator().disconnect(id(r.params));
          return { disconnected: true };
        },
      },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/expire-token$`),
        handle: (r) => ({ expired: emulator().expireToken(id(r.params)) }),
      },
      {
        method: "PUT",
        path: new RegExp(`^enrollments/${DEVICE}$`),
        handle: (r) => {
          const body = r.json();
          const deviceKey = str(body, "deviceKey", true);
          if (deviceKey === undefined && body.x509 !== true) {
            throw new BadRequestError("body", "an enrollment needs deviceKey (base64) or x509: true");
          }
          emulator().enrollDevice(id(r.params), deviceKey === undefined ? { x509: true } : { deviceKey });
          return { enrolled: true };
        },
      },
      {
        method: "POST",
        path: new RegExp(`^devices/${DEVICE}/certificate$`),
        handle: (r) => emulator().issueDeviceCertificate(id(r.params)),
      },
    ],
  });
}

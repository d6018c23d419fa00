import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Application,
  ApplicationSchema,
  ConnectionState,
  type Device,
  DeviceSchema,
  type Twin as TwinMsg,
  TwinSchema,
  WritablePropertyAck,
} from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import type { DeviceStatus } from "../pipeline/devices.js";
import { type ApplicationRecord, type ApplicationSettings, DEFAULT_PROVISIONING_HOST, type DeviceRecord } from "../pipeline/store.js";
import type { DeviceConnectionState, Twin } from "../platform/types.js";

/** The proto application as settings (its credential is read separately, and never returned). */
export function applicationSettings(a: Application): ApplicationSettings {
  return {
    id: a.id,
    displayName: a.displayName,
    idScope: a.idScope,
    provisioningHost: a.provisioningHost || DEFAULT_PROVISIONING_HOST,
    ...(a.gatewayHost ? { gatewayHost: a.gatewayHost } : {}),
    ...(a.modelId ? { modelId: a.modelId } : {}),
    ...(a.deviceIdTemplate ? { deviceIdTemplate: a.deviceIdTemplate } : {}),
    writablePropertyAck: a.writablePropertyAck === WritablePropertyAck.COMPLETED ? "completed" : "accepted",
    ...(a.idleDisconnectSeconds !== undefined ? { idleDisconnectSeconds: a.idleDisconnectSeconds } : {}),
  };
}

/** What is returned of an application: everything but its secrets; credential_kind says one is held. */
export function applicationToProto(r: ApplicationRecord): Application {
  return create(ApplicationSchema, {
    id: r.id,
    displayName: r.displayName,
    idScope: r.idScope,
    provisioningHost: r.provisioningHost,
    gatewayHost: r.gatewayHost ?? "",
    credentialKind: r.credential?.kind ?? "",
    modelId: r.modelId ?? "",
    deviceIdTemplate: r.deviceIdTemplate ?? "",
    writablePropertyAck: r.writablePropertyAck === "completed" ? WritablePropertyAck.COMPLETED : WritablePropertyAck.ACCEPTED,
    ...(r.idleDisconnectSeconds !== undefined ? { idleDisconnectSeconds: r.idleDisconnectSeconds } : {}),
  });
}

const STATES: Record<DeviceConnectionState, ConnectionState> = {
  disconnected: ConnectionState.DISCONNECTED,
  connecting: ConnectionState.CONNECTING,
  connected: ConnectionState.CONNECTED,
  failed: ConnectionState.FAILED,
};

export function deviceToProto(app: ApplicationRecord, r: DeviceRecord | undefined, deviceId: string, s: DeviceStatus | undefined): Device {
  const reg = r?.registration;
  return create(DeviceSchema, {
    applicationId: app.id,
    deviceId,
    assignedHub: reg?.assignedHub ?? "",
    modelId: r?.modelId || reg?.modelId || app.modelId || "",
    credentialKind: r?.credential?.kind ?? app.credential?.kind ?? "",
    state: STATES[s?.state ?? "disconnected"],
    lastError: s?.lastError ?? "",
    ...(reg ? { registeredTime: timestampFromDate(new Date(reg.registeredAt)) } : {}),
    ...(s?.lastActivity ? { lastActivityTime: timestampFromDate(s.lastActivity) } : {}),
    messagesSent: BigInt(s?.messagesSent ?? 0),
    source: r?.source ?? "",
  });
}

export function twinToProto(t: Twin): TwinMsg {
  return create(TwinSchema, {
    desired: t.desired as JsonObject,
    reported: t.reported as JsonObject,
  });
}

import { randomUUID } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type Application,
  type EnrollmentGroup,
  type IotcBridgeService,
  WritablePropertyAck,
} from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import type { Applications } from "../pipeline/applications.js";
import type { DeviceManager } from "../pipeline/devices.js";
import { DeviceNotFoundError } from "../pipeline/errors.js";
import type { GroupCredential, OwnCredential } from "../pipeline/store.js";
import { applicationSettings, applicationToProto, deviceToProto, twinToProto } from "./convert.js";
import { MAX_DISPLAY_NAME, MAX_MESSAGE_ID, MAX_PAGE_SIZE, MAX_PATCH_BYTES, MAX_TELEMETRY_BYTES, Violations } from "./validation.js";

export interface IotcBridgeDeps {
  applications: Applications;
  devices: DeviceManager;
  /** WatchCommands, RespondCommand and WatchProperties (api/commands.ts). */
  commands: Pick<ServiceImpl<typeof IotcBridgeService>, "watchCommands" | "respondCommand" | "watchProperties">;
}

/** Checks an application as CreateApplication and the applications file give it; `path` prefixes the field names. */
export function validateApplication(a: Application | undefined, v: Violations, path = "application."): void {
  if (!a) {
    v.add(path.replace(/\.$/, ""), "is required");
    return;
  }
  v.applicationId(`${path}id`, a.id);
  v.maxLength(`${path}display_name`, a.displayName, MAX_DISPLAY_NAME);
  v.idScope(`${path}id_scope`, a.idScope);
  v.host(`${path}provisioning_host`, a.provisioningHost);
  v.host(`${path}gateway_host`, a.gatewayHost);
  v.modelId(`${path}model_id`, a.modelId);
  v.template(`${path}device_id_template`, a.deviceIdTemplate);
  v.range(`${path}idle_disconnect_seconds`, a.idleDisconnectSeconds, 60, 86_400);
  if (a.credentialKind !== "") v.add(`${path}credential_kind`, "is output only");
  if (a.enrollmentGroup) validateEnrollmentGroup(a.enrollmentGroup, v, `${path}enrollment_group`);
  if (!Object.values(WritablePropertyAck).includes(a.writablePropertyAck))
    v.add(`${path}writable_property_ack`, `unknown value ${a.writablePropertyAck}`);
}

function validateEnrollmentGroup(g: EnrollmentGroup, v: Violations, path: string): void {
  if (g.credential.case === "groupKey") v.sasKey(`${path}.group_key`, g.credential.value);
  else if (g.credential.case === "x509") v.x509(`${path}.x509`, g.credential.value.certificateChainPem, g.credential.value.privateKeyPem);
  else v.add(path, "set group_key or x509");
}

export function groupCredential(g: EnrollmentGroup | undefined): GroupCredential | undefined {
  if (g?.credential.case === "groupKey") return { kind: "group_key", groupKey: g.credential.value };
  if (g?.credential.case === "x509")
    return { kind: "x509", certificateChainPem: g.credential.value.certificateChainPem, privateKeyPem: g.credential.value.privateKeyPem };
  return undefined;
}

function pageToken(deviceId: string): string {
  return Buffer.from(deviceId, "utf8").toString("base64url");
}

/** meridian.iotc.v1.IotcBridgeService: applications, devices, telemetry and reported properties as a device. */
export function iotcBridgeService({ applications, devices, commands }: IotcBridgeDeps): ServiceImpl<typeof IotcBridgeService> {
  return {
    async createApplication(req) {
      const v = new Violations();
      validateApplication(req.application, v);
      v.throwIfAny();
      const { record } = await applications.put(
        applicationSettings(req.application!),
        groupCredential(req.application!.enrollmentGroup),
        "api",
      );
      return { application: applicationToProto(record) };
    },
    async listApplications() {
      return { applications: (await applications.list()).map(applicationToProto) };
    },
    async getApplication(req) {
      const v = new Violations();
      v.applicationId("id", req.id);
      v.throwIfAny();
      return { application: applicationToProto(await applications.get(req.id)) };
    },
    async deleteApplication(req) {
      const v = new Violations();
      v.applicationId("id", req.id);
      v.throwIfAny();
      await applications.delete(req.id);
      return {};
    },

    async registerDevice(req) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      v.deviceId("device_id", req.deviceId);
      v.modelId("model_id", req.modelId);
      if (req.credential.case === "deviceKey") v.sasKey("device_key", req.credential.value);
      if (req.credential.case === "x509") v.x509("x509", req.credential.value.certificateChainPem, req.credential.value.privateKeyPem);
      v.throwIfAny();
      const app = await applications.get(req.applicationId);
      const credential: OwnCredential | undefined =
        req.credential.case === "deviceKey"
          ? { kind: "device_key", deviceKey: req.credential.value }
          : req.credential.case === "x509"
            ? {
                kind: "x509",
                certificateChainPem: req.credential.value.certificateChainPem,
                privateKeyPem: req.credential.value.privateKeyPem,
              }
            : undefined;
      await devices.open(app.id, req.deviceId, { credential, modelId: req.modelId || undefined, force: req.force });
      const record = await applications.store.getDevice(app.id, req.deviceId);
      return { device: deviceToProto(app, record, req.deviceId, devices.status(app.id, req.deviceId)) };
    },
    async listDevices(req) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      v.range("page_size", req.pageSize, 1, MAX_PAGE_SIZE);
      let after = "";
      if (req.pageToken !== "") {
        after = Buffer.from(req.pageToken, "base64url").toString("utf8");
        if (after === "" || pageToken(after) !== req.pageToken) v.add("page_token", "is not a token ListDevices gave");
      }
      v.throwIfAny();
      const app = await applications.get(req.applicationId);
      const size = req.pageSize ?? 100;
      const all = (await applications.store.listDevices(app.id)).filter((r) => after === "" || r.deviceId > after);
      const page = all.slice(0, size);
      return {
        devices: page.map((r) => deviceToProto(app, r, r.deviceId, devices.status(app.id, r.deviceId))),
        nextPageToken: all.length > size ? pageToken(page[page.length - 1]!.deviceId) : "",
      };
    },
    async getDevice(req) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      v.deviceId("device_id", req.deviceId);
      v.throwIfAny();
      const app = await applications.get(req.applicationId);
      const record = await applications.store.getDevice(app.id, req.deviceId);
      const status = devices.status(app.id, req.deviceId);
      if (!record && !status) throw new DeviceNotFoundError(app.id, req.deviceId);
      const twin = await devices.twin(app.id, req.deviceId);
      return { device: deviceToProto(app, record, req.deviceId, status), ...(twin ? { twin: twinToProto(twin) } : {}) };
    },
    async deleteDevice(req) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      v.deviceId("device_id", req.deviceId);
      v.throwIfAny();
      const app = await applications.get(req.applicationId);
      const known = devices.status(app.id, req.deviceId) !== undefined;
      await devices.forget(app.id, req.deviceId);
      if (!(await applications.store.deleteDevice(app.id, req.deviceId)) && !known) throw new DeviceNotFoundError(app.id, req.deviceId);
      return {};
    },

    async sendTelemetry(req) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      v.deviceId("device_id", req.deviceId);
      const payload = v.jsonObject("payload", req.payload, MAX_TELEMETRY_BYTES);
      v.component("component", req.component);
      v.properties("properties", req.properties);
      v.time("observed_time", req.observedTime);
      v.maxLength("message_id", req.messageId, MAX_MESSAGE_ID);
      v.throwIfAny();
      const app = await applications.get(req.applicationId);
      const messageId = req.messageId || randomUUID();
      await devices.sendTelemetry(app.id, req.deviceId, payload!, {
        messageId,
        creationTime: req.observedTime ? timestampDate(req.observedTime) : new Date(),
        ...(req.component ? { component: req.component } : {}),
        ...(Object.keys(req.properties).length > 0 ? { properties: req.properties } : {}),
      });
      return { messageId };
    },
    async updateReportedProperties(req) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      v.deviceId("device_id", req.deviceId);
      const patch = v.jsonObject("patch", req.patch, MAX_PATCH_BYTES);
      v.component("component", req.component);
      v.throwIfAny();
      const app = await applications.get(req.applicationId);
      const version = await devices.updateReportedProperties(app.id, req.deviceId, patch!, req.component || undefined);
      return { version: BigInt(version ?? 0) };
    },

    ...commands,
  };
}

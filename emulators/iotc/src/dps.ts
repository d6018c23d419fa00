/**
 * The Device Provisioning Service (protocol notes 1.2-1.8), shared by the MQTT and HTTPS surfaces: who may register,
 * register -> 202 "assigning" (N times) -> 200 "assigned" with the full registrationState, and the answers a device
 * gets when it is disabled, failed or throttled. Bodies are always JSON: the Node SDK parses every answer.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Faults } from "./faults.js";
import { type AttestationKind, DeviceLimitError, type DeviceRecord, type IotcModel } from "./model.js";
import { checkSasToken, type SasCheck, type SasToken } from "./sas.js";
import { isJsonObject, type JsonObject } from "./twin.js";

/** What DPS allows in a registration id (lower-case letters, digits and `-._:`), and its length. */
const REGISTRATION_ID = /^[a-z0-9][a-z0-9\-._:]{0,127}$/;
/** Operations remembered for polling; the oldest are forgotten first. */
const MAX_OPERATIONS = 10_000;
/** The custom payload a device may send with its registration. */
export const MAX_REGISTRATION_PAYLOAD_BYTES = 4 * 1024;

/** How a device proved itself at the transport: a SAS token, or a client certificate checked in the TLS handshake. */
export type DpsCredential = { kind: "sas"; token: SasToken } | { kind: "x509"; authorized: boolean; commonName?: string; error?: string };

export interface DpsAnswer {
  status: number;
  body: JsonObject;
  /** Sent as `retry-after` (topic parameter or header). */
  retryAfterSeconds?: number;
}

export interface ProvisioningOptions {
  idScope: string;
  hubHostName: string;
  assigningPolls: number;
  retryAfterSeconds: number;
}

interface Operation {
  operationId: string;
  registrationId: string;
  attestation: AttestationKind;
  pollsLeft: number;
  result?: DpsAnswer;
}

export function isValidRegistrationId(id: string): boolean {
  return REGISTRATION_ID.test(id);
}

export function dpsError(status: number, subCode: number, message: string): JsonObject {
  return {
    errorCode: status * 1000 + subCode,
    trackingId: randomUUID(),
    message,
    timestampUtc: new Date().toISOString(),
  };
}

export class Provisioning {
  private readonly operations = new Map<string, Operation>();

  constructor(
    private readonly model: IotcModel,
    private readonly options: ProvisioningOptions,
    private readonly faults: Faults,
  ) {}

  /** Whether `credential` lets its holder register `registrationId` in `idScope`. */
  authenticate(idScope: string, registrationId: string, credential: DpsCredential): SasCheck & { attestation?: AttestationKind } {
    if (idScope !== this.options.idScope) return { ok: false, reason: `unknown id scope ${idScope}` };
    if (!isValidRegistrationId(registrationId)) return { ok: false, reason: "registration id is not valid" };
    const enrollment = this.model.enrollment(registrationId);
    if (credential.kind === "x509") {
      if (enrollment && "deviceKey" in enrollment) return { ok: false, reason: "enrolled with a symmetric key" };
      if (!credential.authorized) return { ok: false, reason: `client certificate not trusted: ${credential.error ?? "none"}` };
      if (credential.commonName !== registrationId) return { ok: false, reason: "certificate CN is not the registration id" };
      return { ok: true, attestation: "x509" };
    }
    const key = this.model.deviceKey(registrationId);
    if (key === undefined) return { ok: false, reason: "enrolled with X.509" };
    const check = checkSasToken(
      credential.token,
      key,
      `${this.options.idScope}/registrations/${registrationId}`,
      Date.now(),
      "registration",
    );
    return check.ok ? { ok: true, attestation: "symmetricKey" } : check;
  }

  /** A register request from an authenticated device; `body` is the request body as received. */
  register(registrationId: string, attestation: AttestationKind, body: Buffer): DpsAnswer {
    let device: DeviceRecord;
    try {
      device = this.model.ensureDevice(registrationId);
    } catch (err) {
      if (!(err instanceof DeviceLimitError)) throw err;
      return { status: 403, body: dpsError(403, 6, err.message) };
    }
    device.registrations += 1;
    const throttle = this.faults.takeDpsThrottle();
    if (throttle !== undefined) {
      return { status: 429, body: dpsError(429, 1, "registration throttled (fault injected)"), retryAfterSeconds: throttle };
    }
    let request: unknown;
    try {
      request = body.length === 0 || body.toString().trim() === "" ? {} : JSON.parse(body.toString("utf8"));
    } catch {
      return { status: 400, body: dpsError(400, 4, "request body is not JSON") };
    }
    if (!isJsonObject(request)) return { status: 400, body: dpsError(400, 4, "request body must be a JSON object") };
    if (request.registrationId !== undefined && request.registrationId !== registrationId) {
      return { status: 400, body: dpsError(400, 4, "registrationId in the body differs from the one authenticated") };
    }
    if (request.payload !== undefined) {
      if (!isJsonObject(request.payload)) return { status: 400, body: dpsError(400, 4, "payload must be a JSON object") };
      const size = Buffer.byteLength(JSON.stringify(request.payload));
      if (size > MAX_REGISTRATION_PAYLOAD_BYTES) {
        return { status: 400, body: dpsError(400, 4, `payload is ${size} bytes, over ${MAX_REGISTRATION_PAYLOAD_BYTES}`) };
      }
      const modelId = modelIdOf(request.payload);
      if (modelId !== undefined) device.modelId = modelId;
    }
    const operationId = `5.${randomBytes(8).toString("hex")}.${randomUUID()}`;
    const op: Operation = { operationId, registrationId, attestation, pollsLeft: this.options.assigningPolls };
    this.remember(op);
    if (device.status === "disabled") {
      op.result = this.outcome(op, "disabled");
      return op.result;
    }
    const failed = this.faults.takeDpsFailed();
    if (failed) {
      op.result = this.outcome(op, "failed", failed);
      return op.result;
    }
    return this.advance(op);
  }

  /** A poll of `operationId` by the device that registered it. */
  operationStatus(registrationId: string, operationId: string): DpsAnswer {
    const throttle = this.faults.takeDpsThrottle();
    if (throttle !== undefined) {
      return { status: 429, body: dpsError(429, 1, "registration throttled (fault injected)"), retryAfterSeconds: throttle };
    }
    const op = this.operations.get(operationId);
    if (!op || op.registrationId !== registrationId) {
      return { status: 404, body: dpsError(404, 2, `no operation ${operationId} for ${registrationId}`) };
    }
    return op.result ?? this.advance(op);
  }

  private advance(op: Operation): DpsAnswer {
    if (op.pollsLeft > 0) {
      op.pollsLeft -= 1;
      return {
        status: 202,
        body: { operationId: op.operationId, status: "assigning" },
        retryAfterSeconds: this.options.retryAfterSeconds,
      };
    }
    const device = this.model.device(op.registrationId);
    op.result = device?.status === "disabled" ? this.outcome(op, "disabled") : this.outcome(op, "assigned");
    return op.result;
  }

  private outcome(
    op: Operation,
    status: "assigned" | "disabled" | "failed",
    error?: { errorCode: number; errorMessage: string },
  ): DpsAnswer {
    const device =
      status === "assigned" ? this.model.assign(op.registrationId, op.attestation) : this.model.ensureDevice(op.registrationId);
    const state: JsonObject = {
      registrationId: op.registrationId,
      createdDateTimeUtc: device.createdAt.toISOString(),
      status,
      lastUpdatedDateTimeUtc: device.updatedAt.toISOString(),
      etag: device.etag,
    };
    if (status === "assigned") {
      state.assignedHub = this.options.hubHostName;
      state.deviceId = op.registrationId;
      state.substatus = "initialAssignment";
      state[op.attestation] = {};
    }
    if (error) {
      state.errorCode = error.errorCode;
      state.errorMessage = error.errorMessage;
    }
    return { status: 200, body: { operationId: op.operationId, status, registrationState: state } };
  }

  private remember(op: Operation): void {
    this.operations.set(op.operationId, op);
    if (this.operations.size > MAX_OPERATIONS) {
      const oldest = this.operations.keys().next().value;
      if (oldest !== undefined) this.operations.delete(oldest);
    }
  }

  reset(): void {
    this.operations.clear();
  }
}

/** The model id in a registration payload, in any of the three generations IoT Central has seen (notes 1.8). */
export function modelIdOf(payload: JsonObject): string | undefined {
  if (typeof payload.modelId === "string") return payload.modelId;
  if (typeof payload.iotcModelId === "string") return payload.iotcModelId;
  const interfaces = payload["__iot:interfaces"];
  if (isJsonObject(interfaces) && typeof interfaces.CapabilityModelId === "string") return interfaces.CapabilityModelId;
  return undefined;
}

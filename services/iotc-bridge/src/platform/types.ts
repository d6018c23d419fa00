/**
 * The IoT Central device client's surface: what the pipeline and the API use. The implementation (client.ts) is built
 * on the official Azure IoT device SDK; nothing here knows of the bus or Connect.
 */

/** Where an application's devices register: DPS, and optionally a gateway their hub connections go through. */
export interface ProvisioningEndpoint {
  /** The DPS ID scope (0ne...). */
  idScope: string;
  /** DPS host[:port], e.g. global.azure-devices-provisioning.net. */
  provisioningHost: string;
  /** host[:port] device connections go to instead of the assigned hub's name (IoT Edge gateway, an emulator). */
  gatewayHost?: string;
}

/** How a device proves who it is to DPS. */
export type DeviceCredential =
  /** An individual enrollment's SAS key (base64). */
  | { kind: "device_key"; deviceKey: string }
  /** An enrollment group's SAS key (base64): the device key is HMAC-SHA256(groupKey, registrationId). */
  | { kind: "group_key"; groupKey: string }
  /** An X.509 certificate whose subject CN is the registration id (PEM chain, leaf first) and its key. */
  | { kind: "x509"; certificateChainPem: string; privateKeyPem: string };

/**
 * What DPS assigned: the credential cache entry (the seed's `CredentialsCache`). With it a device connects to its hub
 * without registering again. `deviceKey` is the derived key for a group, so the group key itself is never needed again.
 */
export interface DeviceRegistration {
  registrationId: string;
  deviceId: string;
  assignedHub: string;
  /** The credential the hub connection uses. */
  credential: { kind: "sas"; deviceKey: string } | { kind: "x509"; certificateChainPem: string; privateKeyPem: string };
  modelId?: string;
  /** ISO 8601. */
  registeredAt: string;
}

/** Where registrations are kept between runs (the seed's `Storage` hook). */
export interface RegistrationStore {
  get(registrationId: string): Promise<DeviceRegistration | undefined>;
  put(registration: DeviceRegistration): Promise<void>;
  delete(registrationId: string): Promise<void>;
}

export type DeviceConnectionState = "disconnected" | "connecting" | "connected" | "failed";

export interface TelemetryOptions {
  /** The model component ($.sub); default component when unset. */
  component?: string;
  /** Application properties of the message. */
  properties?: Record<string, string>;
  /** $.mid; a new UUID when unset. */
  messageId?: string;
  /** iothub-creation-time-utc. */
  creationTime?: Date;
}

export interface Twin {
  desired: Record<string, unknown>;
  reported: Record<string, unknown>;
}

/** A writable property change (a desired-property patch member), per property and component. */
export interface WritablePropertyChange {
  component?: string;
  name: string;
  value: unknown;
  /** The desired $version it came with: the acknowledgement's `av`. */
  version: number;
}

/** IoT Central's writable-property acknowledgement: `{ value, ac, av, ad }`. */
export interface WritablePropertyAck {
  /** 200 done, 202 in progress, 4xx/5xx refused or failed. */
  ac: number;
  ad?: string;
  /** The value now in effect; the desired value when unset. */
  value?: unknown;
}

/** A command (direct method) waiting for its response. */
export interface DirectMethodRequest {
  requestId: string;
  component?: string;
  name: string;
  payload: unknown;
  /** When IoT Hub stops waiting (the service's timeout, IoT Central's 30 s). */
  deadline: Date;
  respond(status: number, payload?: unknown): Promise<void>;
}

/** An offline command: a cloud-to-device message with a `method-name` property. Completed once the handler resolves. */
export interface OfflineCommand {
  messageId?: string;
  component?: string;
  name: string;
  payload: unknown;
  properties: Record<string, string>;
}

export interface DeviceHandlers {
  /**
   * Resolve with the ack to send. A rejection with a retryable error (`retryable: true`) leaves the change pending and
   * offers it again after a backoff; any other rejection sends ac 500 with the error's message.
   */
  writableProperty?(change: WritablePropertyChange): Promise<WritablePropertyAck>;
  command?(request: DirectMethodRequest): void;
  /** The message is completed (PUBACK) only once this resolves; a rejection leaves it to be delivered again. */
  offlineCommand?(command: OfflineCommand): Promise<void>;
  state?(state: DeviceConnectionState, error?: Error): void;
}

/** One IoT Central device: registered through DPS (or from the store), connected to its hub. */
export interface IotcDevice {
  readonly registrationId: string;
  readonly state: DeviceConnectionState;
  readonly registration: DeviceRegistration | undefined;
  /** Registers (unless the store has it, or `force`), connects, reads the twin and acknowledges pending writable properties. */
  open(options?: { force?: boolean; signal?: AbortSignal }): Promise<void>;
  close(): Promise<void>;
  /** Resolves once IoT Hub acknowledged the message (PUBACK). */
  sendTelemetry(payload: Record<string, unknown>, options?: TelemetryOptions): Promise<void>;
  /** Resolves with the reported properties' new $version. */
  updateReportedProperties(patch: Record<string, unknown>, component?: string): Promise<number | undefined>;
  getTwin(): Promise<Twin>;
}

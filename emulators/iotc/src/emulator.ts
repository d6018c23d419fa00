/** What startIotcEmulator returns: the in-process control plane other packages' tests are written against. */

import type { CertificateAndKey } from "@meridian/emulator-kit";
import type { FaultConfig } from "./faults.js";
import type { DeviceStatus, EnrollmentAttestation, IotcModel, MethodResult } from "./model.js";

export interface IotcEmulator {
  /** "127.0.0.1:<port>": what the DPS host and GatewayHostName are set to. */
  mqttHost: string;
  /** "https://127.0.0.1:<port>". */
  httpsUrl: string;
  /** Trust anchor of both listeners. */
  caPem: string;
  idScope: string;
  hubHostName: string;
  groupKey: string;
  apiToken: string;
  /** The X.509 enrollment group's signing CA: tests issue device certificates with it. */
  x509Ca: CertificateAndKey;
  /** The model behind both surfaces, for a surface added on top (the application REST API). */
  model: IotcModel;
  issueDeviceCertificate(registrationId: string): CertificateAndKey;
  /** An individual enrollment (its own key, or X.509 with the enrollment CA). */
  enrollDevice(registrationId: string, attestation: EnrollmentAttestation): void;
  /** Disabled: DPS answers status "disabled", the hub refuses CONNECT (rc 5) and drops a live connection. */
  setDeviceStatus(deviceId: string, status: DeviceStatus): void;
  devices(): Array<{
    deviceId: string;
    modelId?: string;
    status: string;
    connected: boolean;
    registrations: number;
    connects: number;
    /** ISO time of the `se` of the last SAS token the hub accepted from the device. */
    tokenExpiresAt?: string;
    /** Hub connections closed because their SAS token expired (at `se`, or by expireToken). */
    tokenExpiries: number;
  }>;
  telemetry(deviceId?: string): ReturnType<IotcModel["telemetry"]>;
  /** Both sections, with $version. */
  twin(deviceId: string): { desired: Record<string, unknown>; reported: Record<string, unknown> };
  /** Returns the new desired $version; a connection subscribed to desired updates gets the patch. */
  updateDesired(deviceId: string, patch: Record<string, unknown>): number;
  /**
   * Resolves with the device's status and payload, or {status: 404, payload: {errorCode: 404103}} when the device has
   * no connection subscribed to methods, or {status: 504, payload: {errorCode: 504101}} after the timeout (default
   * 30 s, 5..300). Rejects only for a bad request (InvalidRequestError).
   */
  invokeMethod(deviceId: string, name: string, payload?: unknown, options?: { timeoutSeconds?: number }): Promise<MethodResult>;
  /** QoS 1 on devices/{id}/messages/devicebound; an offline clean=0 session gets it on reconnect. */
  sendC2D(deviceId: string, body: string | Buffer, properties?: Record<string, string>): void;
  /** Drops the device's connection (a network drop: no DISCONNECT). */
  disconnect(deviceId: string): void;
  /**
   * The device's current SAS token expires now: the hub closes the connection as it does when `se` passes (counted in
   * `tokenExpiries`) and refuses that token from then on (CONNACK 5), so only a new token connects again. False when
   * the device has no connection authenticated with a token (offline, or X.509).
   */
  expireToken(deviceId: string): boolean;
  /** Merges into the armed faults; throws FaultConfigError naming a bad field. */
  setFault(fault: FaultConfig): void;
  clearFaults(): void;
  stop(): Promise<void>;
}

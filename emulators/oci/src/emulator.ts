import type { HttpFaultConfig } from "@meridian/emulator-kit";
import type { DataAccess } from "./data.js";
import type { FaultTarget, OciFaultConfig } from "./faults.js";
import type { IngestResult } from "./ingest.js";

export interface EmulatedDomain {
  id: string;
  groupId: string;
  compartmentId: string;
  region: string;
  /** As the control plane reports them (what a client replaces with the emulator's URLs). */
  deviceHost: string;
  dataHost: string;
  identityHost: string;
  domainShortId: string;
  groupShortId: string;
}

export interface EmulatorApiKey {
  tenancy: string;
  user: string;
  fingerprint: string;
  privateKeyPem: string;
  /** `<tenancy>/<user>/<fingerprint>`. */
  keyId: string;
}

export interface OciEmulator {
  /** Control plane origin without `/20250531` (the SDK's `client.endpoint` appends it). */
  controlUrl: string;
  /** Origin replacing `https://<dataHost>`: ORDS is under `<dataUrl>/ords/<domainShortId>/20250531`. */
  dataUrl: string;
  /** Origin replacing `https://<identity domain host>`: the token endpoint is `<identityUrl>/oauth2/v1/token`. */
  identityUrl: string;
  /** Origin replacing `https://<deviceHost>`: devices POST to `<deviceUrl>/<endpoint>`. */
  deviceUrl: string;
  /** Plain-HTTP admin-only listener when `adminPort` was given (`/_emulator` is on every listener as well). */
  adminUrl?: string;
  /** CA of the listeners' certificate; undefined with `tls: false`. */
  caPem?: string;
  apiKey: EmulatorApiKey;
  domain: EmulatedDomain;
  dataAccess: DataAccess;
  /** `/{groupShortId}/iot/{domainShortId}`: the OAuth scope of the data API. */
  scope: string;
  addVaultSecret(authId: string, plaintext: string): void;
  /** A message as the device with this external key (no credential check), through the same pipeline as ingest. */
  ingest(externalKey: string, payload: unknown, options?: { endpoint?: string; contentType?: string }): IngestResult;
  /** Registers another API key; returns its keyId. */
  registerApiKey(tenancy: string, user: string, publicKeyPem: string): string;
  /** A data-API token for `scope` (default the domain's) valid `seconds` (default the token lifetime; negative = expired). */
  issueToken(scope?: string, seconds?: number): string;
  setTokenLifetime(seconds: number): number;
  /** Moves the emulator's clock (signature dates, token expiry, row times) by this many ms. */
  setClockOffset(offsetMs: number): number;
  setFault(config: OciFaultConfig): Record<FaultTarget, HttpFaultConfig>;
  clearFaults(): void;
  state(): Record<string, unknown>;
  /** Forgets resources, data, tokens, retry tokens and faults; the domain, API keys and vault secrets stay. */
  reset(): void;
  stop(): Promise<void>;
}

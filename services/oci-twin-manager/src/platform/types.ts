/**
 * The surface of the OCI IoT Platform client: what the pipeline and the API use. Names are OCI's own (digital twin
 * model / adapter / instance, IoT domain, ORDS data sets). The control plane goes through the official SDK (oci-iot's
 * IotClient with an oci-common authentication provider); the ORDS data API and the device endpoint are plain HTTPS.
 * Every method throws only OciError subclasses (errors.ts).
 */

export type LifecycleState = "ACTIVE" | "DELETED" | (string & {});

/** JSON as OCI carries it (DTDL specs, envelopes, routes, content, ORDS rows). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface DigitalTwinModel {
  id: string;
  iotDomainId: string;
  specUri: string;
  displayName: string;
  description?: string;
  lifecycleState: LifecycleState;
  freeformTags?: Record<string, string>;
  timeCreated: Date;
  timeUpdated?: Date;
}

export interface DigitalTwinAdapter {
  id: string;
  iotDomainId: string;
  digitalTwinModelId: string;
  digitalTwinModelSpecUri: string;
  displayName: string;
  description?: string;
  /** Only from getAdapter (lists omit it, as OCI's summaries do). */
  inboundEnvelope?: JsonObject;
  inboundRoutes?: JsonObject[];
  lifecycleState: LifecycleState;
  freeformTags?: Record<string, string>;
  timeCreated: Date;
  timeUpdated?: Date;
}

export interface DigitalTwinInstance {
  id: string;
  iotDomainId: string;
  displayName: string;
  description?: string;
  externalKey?: string;
  authId?: string;
  connectivityType?: string;
  digitalTwinModelId?: string;
  digitalTwinModelSpecUri?: string;
  digitalTwinAdapterId?: string;
  lifecycleState: LifecycleState;
  freeformTags?: Record<string, string>;
  timeCreated: Date;
  timeUpdated?: Date;
}

/** An IoT domain as getIotDomain + getIotDomainGroup describe it, with what the data API and devices need. */
export interface IotDomain {
  id: string;
  iotDomainGroupId: string;
  displayName: string;
  lifecycleState: LifecycleState;
  /** `<domainShortId>.device.iot.<region>.oci.oraclecloud.com` */
  deviceHost?: string;
  /** The identity-domain host ORDS trusts (set by configure-ords-data-access); absent: data access not configured. */
  dbAllowedIdentityDomainHost?: string;
  /** From the domain group: `<groupShortId>.data.iot.<region>.oci.oraclecloud.com`. */
  dataHost?: string;
  /** deviceHost's first label. */
  domainShortId?: string;
  /** dataHost's first label. */
  groupShortId?: string;
}

export interface Page<T> {
  items: T[];
  /** OCI's opc-next-page; absent on the last page. */
  nextPage?: string;
}

export interface ListOptions {
  displayName?: string;
  lifecycleState?: LifecycleState;
  /** 1 to 1000. */
  limit?: number;
  page?: string;
}

export interface CreateOptions {
  /** Sent as opc-retry-token: the same token with the same body gives the resource created first. */
  retryToken?: string;
  freeformTags?: Record<string, string>;
}

export interface CreateModelDetails {
  iotDomainId: string;
  /** DTDL interface; its "@id" is the spec URI. */
  spec: JsonObject;
  displayName?: string;
  description?: string;
}

export interface CreateAdapterDetails {
  iotDomainId: string;
  /** One of the two. */
  digitalTwinModelId?: string;
  digitalTwinModelSpecUri?: string;
  displayName?: string;
  description?: string;
  inboundEnvelope?: JsonObject;
  inboundRoutes?: JsonObject[];
}

export interface CreateInstanceDetails {
  iotDomainId: string;
  displayName: string;
  description?: string;
  externalKey?: string;
  authId?: string;
  digitalTwinAdapterId?: string;
  connectivityType?: string;
}

/** The control plane (API 20250531) through the SDK's IotClient. */
export interface DigitalTwinsClient {
  getIotDomain(iotDomainId: string): Promise<IotDomain>;

  createModel(details: CreateModelDetails, options?: CreateOptions): Promise<DigitalTwinModel>;
  getModel(id: string): Promise<DigitalTwinModel>;
  getModelSpec(id: string): Promise<JsonObject>;
  listModels(iotDomainId: string, options?: ListOptions & { specUriStartsWith?: string }): Promise<Page<DigitalTwinModel>>;
  deleteModel(id: string, options?: { ifMatch?: string }): Promise<void>;

  createAdapter(details: CreateAdapterDetails, options?: CreateOptions): Promise<DigitalTwinAdapter>;
  getAdapter(id: string): Promise<DigitalTwinAdapter>;
  listAdapters(iotDomainId: string, options?: ListOptions & { digitalTwinModelId?: string }): Promise<Page<DigitalTwinAdapter>>;
  deleteAdapter(id: string, options?: { ifMatch?: string }): Promise<void>;

  createInstance(details: CreateInstanceDetails, options?: CreateOptions): Promise<DigitalTwinInstance>;
  getInstance(id: string): Promise<DigitalTwinInstance>;
  listInstances(
    iotDomainId: string,
    options?: ListOptions & { digitalTwinAdapterId?: string; digitalTwinModelId?: string },
  ): Promise<Page<DigitalTwinInstance>>;
  updateInstance(
    id: string,
    details: Partial<Omit<CreateInstanceDetails, "iotDomainId">>,
    options?: { ifMatch?: string },
  ): Promise<DigitalTwinInstance>;
  deleteInstance(id: string, options?: { ifMatch?: string }): Promise<void>;
  /** The latest value of each model content; OciNotFoundError for an instance without a model. */
  getInstanceContent(id: string, options?: { includeMetadata?: boolean }): Promise<JsonObject>;

  /** Polls get until the resource is in `state` (DELETED also when it is gone); OciTimeoutError after `timeoutMs`. */
  waitFor(kind: "model" | "adapter" | "instance", id: string, state: LifecycleState, timeoutMs?: number): Promise<void>;
  /** Closes the connection pool (optional for fakes). */
  close?(): Promise<void>;
}

export type DataSet = "rawData" | "historizedData" | "rejectedData" | "snapshotData" | "rawCommandData";

/** ORDS's filter object (`q`): field equality, $eq $ne $gt $gte $lt $lte $in $like, $and / $or, {"$date": iso}. */
export type OrdsFilter = JsonObject;

export interface DataQuery {
  /** Built into `q` with $and; rows are this twin's. */
  digitalTwinInstanceId?: string;
  /** Extra conditions, ANDed. */
  filter?: OrdsFilter[];
  /** `$orderby` at the top level of q, e.g. { id: "asc" }. */
  orderBy?: Record<string, "asc" | "desc">;
  /** 1 to 500 (ORDS default 25). */
  limit?: number;
  offset?: number;
}

/** One ORDS page: the envelope read for the caller. Rows keep ORDS's snake_case fields. */
export interface DataPage {
  items: JsonObject[];
  hasMore: boolean;
  limit: number;
  offset: number;
  count: number;
}

/** The ORDS data API of one IoT domain, with the identity-domain token (scope /<groupShortId>/iot/<domainShortId>). */
export interface DataApiClient {
  query(dataSet: DataSet, query: DataQuery, signal?: AbortSignal): Promise<DataPage>;
  /** One row with its content (rawData/{id}, rejectedData/{id}, rawCommandData/{id}, historizedData/{id}). */
  get(dataSet: Exclude<DataSet, "snapshotData">, id: number, signal?: AbortSignal): Promise<JsonObject>;
  /** Closes the connection pool (optional for fakes). */
  close?(): Promise<void>;
}

export interface DeviceCredentials {
  externalKey: string;
  /** The plaintext of the vault secret the instance's authId names. */
  secret: string;
}

/** The IoT domain's device host over HTTPS, as a device posts (Basic externalKey:secret). */
export interface DeviceEndpointClient {
  /** POST https://<deviceHost>/<endpoint>; resolves once OCI accepted it (2xx). */
  post(credentials: DeviceCredentials, endpoint: string, payload: JsonObject, signal?: AbortSignal): Promise<void>;
  /** Closes the connection pool (optional for fakes). */
  close?(): Promise<void>;
}

/** How the client signs control-plane requests: the auth kinds manage-dt and the OCI CLI offer, and OKE's. */
export type OciAuth =
  /** ~/.oci/config (or `configFile`) and a profile: user, fingerprint, key_file, tenancy, region, pass_phrase. */
  | { kind: "api_key"; configFile?: string; profile?: string }
  /** The same values given directly (the key as PEM); what a Kubernetes Secret mounts. */
  | {
      kind: "api_key_inline";
      tenancy: string;
      user: string;
      fingerprint: string;
      privateKeyPem: string;
      passphrase?: string;
      region?: string;
    }
  /** A compute instance's identity, from the instance metadata service. */
  | { kind: "instance_principal" }
  /** OCI_RESOURCE_PRINCIPAL_* environment (functions, OKE pods with a resource principal). */
  | { kind: "resource_principal" }
  /** OKE workload identity (the pod's service account token). */
  | { kind: "workload_identity" }
  /** A session token (`oci session authenticate`): security_token_file and key_file of the profile. */
  | { kind: "security_token"; configFile?: string; profile?: string };

/** Where the three OCI surfaces are; the overrides exist for an emulator or a proxy. */
export interface OciClientOptions {
  auth: OciAuth;
  /** e.g. eu-frankfurt-1; else the profile's / principal's region. */
  region?: string;
  /** Control-plane base URL without the API version (the SDK appends /20250531). */
  endpoint?: string;
  /** Replace https://<dataHost>, https://<deviceHost>, https://<dbAllowedIdentityDomainHost> (short ids still come from the hosts). */
  dataUrl?: string;
  deviceUrl?: string;
  identityUrl?: string;
  /** PEM of a CA trusted beside the system's, for all of them (an emulator, a TLS proxy). */
  caPem?: string;
  /** Per request (one attempt); 1 s to 5 min; default 30 s. */
  timeoutMs?: number;
  /**
   * The bounds of the SDK's retry of control-plane calls (409 IncorrectState, 429, 5xx, network failures):
   * attempts in all (1 to 10, default 4), the longest wait between two (default 8 s, Retry-After followed up to it),
   * and no new attempt after `maxTotalMs` since the first (default 30 s).
   */
  retry?: { maxAttempts?: number; maxDelayMs?: number; maxTotalMs?: number };
}

/** The identity-domain confidential application and user manage-dt's `identity` section names. */
export interface DataAccessCredentials {
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
}

import { sleep } from "@meridian/retry";
import * as common from "oci-common";
import * as iot from "oci-iot";
import { type AuthSource, createAuthSource } from "./auth.js";
import {
  DEFAULT_LIST_ALL_MAX_ITEMS,
  DEFAULT_WAIT_TIMEOUT_MS,
  MAX_LIST_LIMIT,
  MAX_RESPONSE_BYTES,
  type ResolvedOptions,
  resolveOptions,
  WAIT_POLL_MS,
} from "./config.js";
import { OciError, OciInvalidArgumentError, OciNotFoundError, OciTimeoutError, OciUnavailableError } from "./errors.js";
import { boundedRetryConfiguration, type CallContext, UndiciHttpClient, withCallContext } from "./sdk-http.js";
import { createAgent, errorForStatus } from "./transport.js";
import type {
  CreateAdapterDetails,
  CreateInstanceDetails,
  CreateModelDetails,
  CreateOptions,
  DigitalTwinAdapter,
  DigitalTwinInstance,
  DigitalTwinModel,
  DigitalTwinsClient,
  IotDomain,
  JsonObject,
  LifecycleState,
  ListOptions,
  OciClientOptions,
  Page,
} from "./types.js";

/** OCI's opc-retry-token: at most 64 characters (the SDK's own tokens are 32 hex digits). */
const RETRY_TOKEN = /^[A-Za-z0-9._:-]{1,64}$/;

function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(String(value));
}

function optionalDate(value: unknown): Date | undefined {
  return value === undefined || value === null ? undefined : date(value);
}

/** Drops undefined members, so that results compare and print as OCI sent them. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

type SdkModel = iot.models.DigitalTwinModel | iot.models.DigitalTwinModelSummary;
type SdkAdapter = iot.models.DigitalTwinAdapter | iot.models.DigitalTwinAdapterSummary;
type SdkInstance = iot.models.DigitalTwinInstance | iot.models.DigitalTwinInstanceSummary;

export function toModel(m: SdkModel): DigitalTwinModel {
  return defined({
    id: m.id,
    iotDomainId: m.iotDomainId,
    specUri: m.specUri,
    displayName: m.displayName,
    description: m.description,
    lifecycleState: m.lifecycleState,
    freeformTags: m.freeformTags,
    timeCreated: date(m.timeCreated),
    timeUpdated: optionalDate(m.timeUpdated),
  });
}

export function toAdapter(a: SdkAdapter): DigitalTwinAdapter {
  const full = a as iot.models.DigitalTwinAdapter;
  return defined({
    id: a.id,
    iotDomainId: a.iotDomainId,
    digitalTwinModelId: a.digitalTwinModelId,
    digitalTwinModelSpecUri: a.digitalTwinModelSpecUri,
    displayName: a.displayName,
    description: a.description,
    inboundEnvelope: full.inboundEnvelope as unknown as JsonObject | undefined,
    inboundRoutes: full.inboundRoutes as unknown as JsonObject[] | undefined,
    lifecycleState: a.lifecycleState,
    freeformTags: a.freeformTags,
    timeCreated: date(a.timeCreated),
    timeUpdated: optionalDate(a.timeUpdated),
  });
}

export function toInstance(i: SdkInstance): DigitalTwinInstance {
  return defined({
    id: i.id,
    iotDomainId: i.iotDomainId,
    displayName: i.displayName,
    description: i.description,
    externalKey: i.externalKey,
    authId: i.authId,
    connectivityType: i.connectivityType,
    digitalTwinModelId: i.digitalTwinModelId,
    digitalTwinModelSpecUri: i.digitalTwinModelSpecUri,
    digitalTwinAdapterId: i.digitalTwinAdapterId,
    lifecycleState: i.lifecycleState,
    freeformTags: i.freeformTags,
    timeCreated: date(i.timeCreated),
    timeUpdated: optionalDate(i.timeUpdated),
  });
}

/** The first DNS label of a host (`abc.device.iot...` → `abc`), as manage-dt derives the short ids. */
export function shortIdOf(host: string | undefined): string | undefined {
  const label = host?.split(".")[0];
  return label ? label : undefined;
}

/** The OCI SDK's OciError, recognised by shape (a second copy of oci-common would fail instanceof). */
function isSdkError(err: unknown): err is common.OciError {
  return (
    err instanceof common.OciError ||
    (typeof err === "object" && err !== null && typeof (err as { statusCode?: unknown }).statusCode === "number" && "serviceCode" in err)
  );
}

/**
 * An SDK failure as one of errors.ts's classes. `ctx` holds what the SDK dropped: Retry-After and the network code.
 * Messages name the operation and the resource, OCI's code and message, and opc-request-id; never a header value.
 */
export function errorFromSdk(err: unknown, ctx: CallContext | undefined, op: string, resource: string): OciError {
  if (err instanceof OciError) return err;
  const what = resource ? `${op} ${resource}` : op;
  if (isSdkError(err)) {
    const code = err.serviceCode && err.serviceCode !== "None" ? err.serviceCode : undefined;
    return errorForStatus(
      err.statusCode,
      { ...(code === undefined ? {} : { code }), message: err.message },
      { resource, what },
      {
        ...(err.opcRequestId ? { requestId: err.opcRequestId } : {}),
        ...(ctx?.retryAfterMs === undefined ? {} : { retryAfterMs: ctx.retryAfterMs }),
      },
    );
  }
  // The SDK's retrier throws a plain {code, message} for what failed before an answer (our TransportError's code).
  const code = typeof (err as { code?: unknown })?.code === "string" ? (err as { code: string }).code : ctx?.networkCode;
  if (code === "ResponseTooLarge" || code === "UnsupportedBody") {
    return new OciError(`${what}: ${(err as { message?: string }).message ?? code}`, { code, cause: err });
  }
  if (code !== undefined || ctx?.networkCode !== undefined) {
    const attempts = ctx && ctx.attempts > 1 ? ` after ${ctx.attempts} attempts` : "";
    const said = ctx?.timedOut ? "no answer in time" : (code ?? ctx?.networkCode);
    return new OciUnavailableError(`${what}: ${said}${attempts}`, { code: code ?? ctx?.networkCode ?? "NetworkError", cause: err });
  }
  const message = err instanceof Error ? err.message : typeof err === "string" ? err : "unknown failure";
  return new OciError(`${what}: ${message}`, { cause: err });
}

/**
 * The SDK builds the query string without encoding values (oci-common 2.139.1 joins `key=value` as given), so a
 * display name with a space, `&` or `+`, a DTMI's `;`, or a page token's `=` would reach OCI altered or split. They
 * are encoded here; OCI decodes them.
 */
function q(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : encodeURIComponent(value);
}

function checkId(field: string, id: string): void {
  if (typeof id !== "string" || id.length === 0 || id.length > 255 || /[\s/?#]/.test(id)) {
    throw new OciInvalidArgumentError(field, `not an OCID: ${JSON.stringify(id)}`);
  }
}

/** What every list of models, adapters and instances asks, checked: the domain, display name, state and paging. */
function listRequest(iotDomainId: string, options: ListOptions | undefined) {
  checkId("iotDomainId", iotDomainId);
  const limit = options?.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)) {
    throw new OciInvalidArgumentError("limit", `must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${limit})`);
  }
  return {
    iotDomainId: q(iotDomainId)!,
    displayName: q(options?.displayName),
    lifecycleState: options?.lifecycleState as iot.models.LifecycleState | undefined,
    limit,
    page: q(options?.page),
  };
}

function retryHeaders(options: CreateOptions | undefined): { opcRetryToken?: string } {
  const token = options?.retryToken;
  if (token === undefined) return {};
  if (!RETRY_TOKEN.test(token)) throw new OciInvalidArgumentError("retryToken", "1 to 64 characters of A-Z a-z 0-9 . _ : -");
  return { opcRetryToken: token };
}

function tags(options: CreateOptions | undefined): { freeformTags?: Record<string, string> } {
  return options?.freeformTags ? { freeformTags: options.freeformTags } : {};
}

/**
 * Every page of a list, e.g. `listAll((page) => client.listInstances(domainId, { page }))`. Stops with OciError code
 * TooManyItems past `maxItems` (default 10 000), and with code PagingLoop when OCI hands the same page token twice.
 */
export async function listAll<T>(list: (page: string | undefined) => Promise<Page<T>>, options: { maxItems?: number } = {}): Promise<T[]> {
  const maxItems = options.maxItems ?? DEFAULT_LIST_ALL_MAX_ITEMS;
  const items: T[] = [];
  const seen = new Set<string>();
  let page: string | undefined;
  for (;;) {
    const result = await list(page);
    items.push(...result.items);
    if (items.length > maxItems) throw new OciError(`list: more than ${maxItems} items`, { code: "TooManyItems" });
    if (!result.nextPage) return items;
    if (seen.has(result.nextPage)) throw new OciError("list: OCI returned the same page token twice", { code: "PagingLoop" });
    seen.add(result.nextPage);
    page = result.nextPage;
  }
}

/**
 * The control plane through oci-iot's IotClient: the SDK signs, serialises and retries (bounded, see config.ts);
 * requests go over undici (sdk-http.ts) for the CA, the timeout and the byte cap. The SDK's circuit breaker is off:
 * one breaker per client would turn a burst of 5xx for some twins into EOPENBREAKER for every call for 30 s at a
 * time, and the callers (API, pipelines) already back off per operation with @meridian/retry.
 */
export function createDigitalTwinsClient(options: OciClientOptions): DigitalTwinsClient {
  const resolved = resolveOptions(options);
  const source = createAuthSource(options.auth);
  const agent = createAgent(options.caPem);
  let ready = source.provider instanceof Promise ? undefined : buildIotClient(source.provider, source, options, resolved, agent);
  // Instance principals: the provider comes from the metadata service; the first call waits for it, and a call after
  // a failure asks again.
  let nextProvider = source.provider instanceof Promise ? source.provider : undefined;
  nextProvider?.catch(() => {});
  let pending: Promise<iot.IotClient> | undefined;
  const getClient = (): iot.IotClient | Promise<iot.IotClient> => {
    if (ready) return ready;
    pending ??= (async () => {
      const provider = await (nextProvider ?? createAuthSource(options.auth).provider);
      ready = buildIotClient(provider, source, options, resolved, agent);
      return ready;
    })().finally(() => {
      nextProvider = undefined;
      pending = undefined;
    });
    return pending;
  };

  async function call<T>(op: string, resource: string, fn: (c: iot.IotClient) => Promise<T>): Promise<T> {
    const c = await getClient();
    return withCallContext(
      () => fn(c),
      (err, ctx) => {
        throw errorFromSdk(err, ctx, op, resource);
      },
    );
  }

  const getModel = async (id: string) => {
    checkId("id", id);
    const r = await call("getDigitalTwinModel", id, (c) => c.getDigitalTwinModel({ digitalTwinModelId: id }));
    return toModel(r.digitalTwinModel);
  };
  const getAdapter = async (id: string) => {
    checkId("id", id);
    const r = await call("getDigitalTwinAdapter", id, (c) => c.getDigitalTwinAdapter({ digitalTwinAdapterId: id }));
    return toAdapter(r.digitalTwinAdapter);
  };
  const getInstance = async (id: string) => {
    checkId("id", id);
    const r = await call("getDigitalTwinInstance", id, (c) => c.getDigitalTwinInstance({ digitalTwinInstanceId: id }));
    return toInstance(r.digitalTwinInstance);
  };

  return {
    async getIotDomain(iotDomainId) {
      checkId("iotDomainId", iotDomainId);
      const d = (await call("getIotDomain", iotDomainId, (c) => c.getIotDomain({ iotDomainId }))).iotDomain;
      const g = (await call("getIotDomainGroup", d.iotDomainGroupId, (c) => c.getIotDomainGroup({ iotDomainGroupId: d.iotDomainGroupId })))
        .iotDomainGroup;
      return defined<IotDomain>({
        id: d.id,
        iotDomainGroupId: d.iotDomainGroupId,
        displayName: d.displayName,
        lifecycleState: d.lifecycleState,
        deviceHost: d.deviceHost || undefined,
        dbAllowedIdentityDomainHost: d.dbAllowedIdentityDomainHost || undefined,
        dataHost: g.dataHost || undefined,
        domainShortId: shortIdOf(d.deviceHost),
        groupShortId: shortIdOf(g.dataHost),
      });
    },

    async createModel(details: CreateModelDetails, createOptions?: CreateOptions) {
      checkId("iotDomainId", details.iotDomainId);
      if (typeof details.spec !== "object" || details.spec === null || Array.isArray(details.spec)) {
        throw new OciInvalidArgumentError("spec", "must be a DTDL interface (a JSON object)");
      }
      const r = await call("createDigitalTwinModel", details.iotDomainId, (c) =>
        c.createDigitalTwinModel({
          createDigitalTwinModelDetails: defined({
            iotDomainId: details.iotDomainId,
            spec: details.spec,
            displayName: details.displayName,
            description: details.description,
            ...tags(createOptions),
          }),
          ...retryHeaders(createOptions),
        }),
      );
      return toModel(r.digitalTwinModel);
    },
    getModel,
    async getModelSpec(id) {
      checkId("id", id);
      const r = await call("getDigitalTwinModelSpec", id, (c) => c.getDigitalTwinModelSpec({ digitalTwinModelId: id }));
      return r.value as JsonObject;
    },
    async listModels(iotDomainId, listOptions) {
      const request = listRequest(iotDomainId, listOptions);
      const r = await call("listDigitalTwinModels", iotDomainId, (c) =>
        c.listDigitalTwinModels(defined({ ...request, specUriStartsWith: q(listOptions?.specUriStartsWith) })),
      );
      return page(r.digitalTwinModelCollection.items.map(toModel), r.opcNextPage);
    },
    async deleteModel(id, deleteOptions) {
      checkId("id", id);
      await call("deleteDigitalTwinModel", id, (c) =>
        c.deleteDigitalTwinModel(defined({ digitalTwinModelId: id, ifMatch: deleteOptions?.ifMatch })),
      );
    },

    async createAdapter(details: CreateAdapterDetails, createOptions?: CreateOptions) {
      checkId("iotDomainId", details.iotDomainId);
      if (!details.digitalTwinModelId && !details.digitalTwinModelSpecUri) {
        throw new OciInvalidArgumentError("digitalTwinModelId", "one of digitalTwinModelId or digitalTwinModelSpecUri is required");
      }
      const r = await call("createDigitalTwinAdapter", details.iotDomainId, (c) =>
        c.createDigitalTwinAdapter({
          createDigitalTwinAdapterDetails: defined({
            iotDomainId: details.iotDomainId,
            digitalTwinModelId: details.digitalTwinModelId,
            digitalTwinModelSpecUri: details.digitalTwinModelSpecUri,
            displayName: details.displayName,
            description: details.description,
            inboundEnvelope: details.inboundEnvelope as unknown as iot.models.DigitalTwinAdapterInboundEnvelope | undefined,
            inboundRoutes: details.inboundRoutes as unknown as iot.models.DigitalTwinAdapterInboundRoute[] | undefined,
            ...tags(createOptions),
          }),
          ...retryHeaders(createOptions),
        }),
      );
      return toAdapter(r.digitalTwinAdapter);
    },
    getAdapter,
    async listAdapters(iotDomainId, listOptions) {
      const request = listRequest(iotDomainId, listOptions);
      const r = await call("listDigitalTwinAdapters", iotDomainId, (c) =>
        c.listDigitalTwinAdapters(defined({ ...request, digitalTwinModelId: q(listOptions?.digitalTwinModelId) })),
      );
      return page(r.digitalTwinAdapterCollection.items.map(toAdapter), r.opcNextPage);
    },
    async deleteAdapter(id, deleteOptions) {
      checkId("id", id);
      await call("deleteDigitalTwinAdapter", id, (c) =>
        c.deleteDigitalTwinAdapter(defined({ digitalTwinAdapterId: id, ifMatch: deleteOptions?.ifMatch })),
      );
    },

    async createInstance(details: CreateInstanceDetails, createOptions?: CreateOptions) {
      checkId("iotDomainId", details.iotDomainId);
      const r = await call("createDigitalTwinInstance", details.iotDomainId, (c) =>
        c.createDigitalTwinInstance({
          createDigitalTwinInstanceDetails: defined({
            iotDomainId: details.iotDomainId,
            displayName: details.displayName,
            description: details.description,
            externalKey: details.externalKey,
            authId: details.authId,
            digitalTwinAdapterId: details.digitalTwinAdapterId,
            connectivityType: details.connectivityType as iot.models.DigitalTwinInstanceConnectivityType | undefined,
            ...tags(createOptions),
          }),
          ...retryHeaders(createOptions),
        }),
      );
      return toInstance(r.digitalTwinInstance);
    },
    getInstance,
    async listInstances(iotDomainId, listOptions) {
      const request = listRequest(iotDomainId, listOptions);
      const r = await call("listDigitalTwinInstances", iotDomainId, (c) =>
        c.listDigitalTwinInstances(defined({ ...request, digitalTwinModelId: q(listOptions?.digitalTwinModelId) })),
      );
      let items = r.digitalTwinInstanceCollection.items.map(toInstance);
      // OCI has no adapter filter on instances; it is applied to the page (a page may then hold fewer than `limit`).
      const adapterId = listOptions?.digitalTwinAdapterId;
      if (adapterId) items = items.filter((i) => i.digitalTwinAdapterId === adapterId);
      return page(items, r.opcNextPage);
    },
    async updateInstance(id, details, updateOptions) {
      checkId("id", id);
      const r = await call("updateDigitalTwinInstance", id, (c) =>
        c.updateDigitalTwinInstance(
          defined({
            digitalTwinInstanceId: id,
            updateDigitalTwinInstanceDetails: defined({
              displayName: details.displayName,
              description: details.description,
              externalKey: details.externalKey,
              authId: details.authId,
              digitalTwinAdapterId: details.digitalTwinAdapterId,
            }),
            ifMatch: updateOptions?.ifMatch,
          }),
        ),
      );
      return toInstance(r.digitalTwinInstance);
    },
    async deleteInstance(id, deleteOptions) {
      checkId("id", id);
      await call("deleteDigitalTwinInstance", id, (c) =>
        c.deleteDigitalTwinInstance(defined({ digitalTwinInstanceId: id, ifMatch: deleteOptions?.ifMatch })),
      );
    },
    async getInstanceContent(id, contentOptions) {
      checkId("id", id);
      const r = await call("getDigitalTwinInstanceContent", id, (c) =>
        c.getDigitalTwinInstanceContent(defined({ digitalTwinInstanceId: id, shouldIncludeMetadata: contentOptions?.includeMetadata })),
      );
      return (r.value ?? {}) as JsonObject;
    },

    async waitFor(kind, id, state: LifecycleState, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) {
      const get = kind === "model" ? getModel : kind === "adapter" ? getAdapter : getInstance;
      const deadline = Date.now() + timeoutMs;
      let last = "unknown";
      for (;;) {
        try {
          const resource = await get(id);
          if (resource.lifecycleState === state) return;
          last = resource.lifecycleState;
        } catch (err) {
          if (err instanceof OciNotFoundError && state === "DELETED") return;
          if (!(err instanceof OciError) || !err.retryable) throw err;
          last = `${err.name}: ${err.message}`;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new OciTimeoutError(`${kind} ${id} is not ${state} after ${timeoutMs} ms (last seen: ${last})`);
        await sleep(Math.min(WAIT_POLL_MS, left));
      }
    },

    async close() {
      await agent.close();
    },
  };
}

function page<T>(items: T[], nextPage: string | undefined): Page<T> {
  return nextPage ? { items, nextPage } : { items };
}

function buildIotClient(
  provider: common.AuthenticationDetailsProvider,
  source: AuthSource,
  options: OciClientOptions,
  resolved: ResolvedOptions,
  agent: ReturnType<typeof createAgent>,
): iot.IotClient {
  const client = new iot.IotClient(
    // Our HttpClient signs with the provider (the SDK takes one or the other).
    { httpClient: new UndiciHttpClient(provider, agent, resolved.timeoutMs, MAX_RESPONSE_BYTES) },
    {
      retryConfiguration: boundedRetryConfiguration(resolved.maxAttempts, resolved.maxRetryDelayMs, resolved.maxRetryTotalMs),
      circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
    },
  );
  const providerRegion = common.isRegionProvider(provider) ? provider.getRegion() : undefined;
  if (options.region) client.regionId = options.region;
  else if (providerRegion) client.region = providerRegion;
  else if (source.region) client.regionId = source.region;
  if (resolved.endpoint) client.endpoint = resolved.endpoint;
  if (!client.endpoint) {
    throw new OciInvalidArgumentError("region", "no region: set it in the options, or in the profile (region=...) or principal");
  }
  return client;
}

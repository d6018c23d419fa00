/**
 * The control plane's operations on digital twin models, adapters and instances, and the domain and domain group
 * reads (§1). Pure over the store: each returns the answer or throws an OciHttpError.
 */

import type { Clock } from "./clock.js";
import { AdapterError, DtdlError, defaultAdapter, validateAdapter, validateDtdl } from "./dtdl.js";
import { conflict, invalidParameter, missingParameter, notFound, OciHttpError } from "./errors.js";
import { base32Id, type OcidFactory } from "./ids.js";
import { toIsoMicros } from "./ords-filter.js";
import {
  type Adapter,
  type BaseResource,
  type ConnectivityType,
  etagOf,
  type Instance,
  type LifecycleState,
  type Model,
  type OciStore,
  type Tags,
} from "./store.js";

export interface OpRequest {
  params: string[];
  query: Map<string, string>;
  /** The body as a JSON object; throws 400 CannotParseRequest otherwise. */
  body(): Record<string, unknown>;
  ifMatch?: string;
}

export interface OpResult {
  status: number;
  body?: unknown;
  etag?: string;
  nextPage?: string;
}

export interface TwinsContext {
  store: OciStore;
  clock: Clock;
  ocids: OcidFactory;
}

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const CONNECTIVITY: readonly ConnectivityType[] = ["DIRECT", "INDIRECT", "GATEWAY", "NONE"];

// ---- field checks ------------------------------------------------------------------------------------------------

function optString(body: Record<string, unknown>, field: string, max = 255): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalidParameter(`${field} must be a string.`);
  if (v.length > max) throw invalidParameter(`${field} must be at most ${max} characters.`);
  return v;
}

function reqString(body: Record<string, unknown>, field: string, max = 255): string {
  const v = optString(body, field, max);
  if (v === undefined || v === "") throw missingParameter(field);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function tags(body: Record<string, unknown>, current?: Tags): Tags {
  const freeform = body.freeformTags ?? current?.freeformTags ?? {};
  if (!isObject(freeform) || Object.values(freeform).some((v) => typeof v !== "string"))
    throw invalidParameter("freeformTags must be an object of strings.");
  const defined = body.definedTags ?? current?.definedTags ?? {};
  if (!isObject(defined) || Object.values(defined).some((v) => !isObject(v)))
    throw invalidParameter("definedTags must be an object of objects.");
  return {
    freeformTags: freeform as Record<string, string>,
    definedTags: defined as Tags["definedTags"],
    systemTags: current?.systemTags ?? {},
  };
}

function domainOf(ctx: TwinsContext, body: Record<string, unknown>): string {
  const id = reqString(body, "iotDomainId");
  if (id !== ctx.store.domain.id) throw notFound("IoT domain");
  return id;
}

function checkIfMatch(r: BaseResource, ifMatch: string | undefined): void {
  if (ifMatch === undefined || ifMatch === "*") return;
  if (ifMatch !== etagOf(r)) throw new OciHttpError(412, "NoEtagMatch", "The if-match value does not match the resource's etag.");
}

function common(r: BaseResource) {
  return {
    id: r.id,
    iotDomainId: r.iotDomainId,
    displayName: r.displayName,
    ...(r.description !== undefined ? { description: r.description } : {}),
    lifecycleState: r.lifecycleState,
    freeformTags: r.freeformTags,
    definedTags: r.definedTags,
    systemTags: r.systemTags,
    timeCreated: r.timeCreated,
    ...(r.timeUpdated !== undefined ? { timeUpdated: r.timeUpdated } : {}),
  };
}

export const modelView = (m: Model) => ({ ...common(m), specUri: m.specUri });

export function adapterView(a: Adapter, summary = false) {
  return {
    ...common(a),
    digitalTwinModelId: a.digitalTwinModelId,
    digitalTwinModelSpecUri: a.digitalTwinModelSpecUri,
    ...(summary ? {} : { inboundEnvelope: a.inboundEnvelope, inboundRoutes: a.inboundRoutes }),
  };
}

export function instanceView(i: Instance) {
  const { seq: _seq, version: _version, ...rest } = i;
  return rest;
}

function touch(ctx: TwinsContext, r: BaseResource): void {
  r.version++;
  r.timeUpdated = ctx.clock.iso();
}

function newBase(ctx: TwinsContext, type: string, iotDomainId: string, body: Record<string, unknown>, displayName: string): BaseResource {
  const now = ctx.clock.iso();
  return {
    id: ctx.ocids.next(type),
    iotDomainId,
    displayName,
    description: optString(body, "description", 400),
    lifecycleState: "ACTIVE",
    ...tags(body),
    timeCreated: now,
    timeUpdated: now,
    seq: ++ctx.store.seq,
    version: 1,
  };
}

function existing<R extends BaseResource>(map: Map<string, R>, id: string, what: string): R {
  const r = map.get(id);
  if (!r) throw notFound(what);
  return r;
}

function mustBeActive(r: BaseResource, what: string): void {
  // [I] Changing a DELETED resource: a permanent 409 Conflict (IncorrectState would make the SDK retry for minutes).
  if (r.lifecycleState !== "ACTIVE") throw conflict(`The ${what} ${r.id} is DELETED.`);
}

/** The resource an update or a delete names: it exists and its etag matches If-Match; for an update, it is ACTIVE too. */
function toChange<R extends BaseResource>(map: Map<string, R>, req: OpRequest, what: string, update: boolean): R {
  const r = existing(map, req.params[0]!, what);
  checkIfMatch(r, req.ifMatch);
  if (update) mustBeActive(r, what);
  return r;
}

/** What every update may change (tags, displayName, description), read from the body before anything is changed. */
function commonUpdate(body: Record<string, unknown>, r: BaseResource): Partial<BaseResource> {
  const displayName = optString(body, "displayName");
  const description = optString(body, "description", 400);
  return {
    ...tags(body, r),
    ...(displayName !== undefined ? { displayName } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}

/**
 * A delete: DELETED already is 204 again; a resource still used by an ACTIVE one (`usedBy`: which ones use it, and what
 * they are) is a 409 naming the first; otherwise it becomes DELETED.
 */
function markDeleted(ctx: TwinsContext, r: BaseResource, what: string, usedBy: Array<[string, Iterable<BaseResource>]> = []): OpResult {
  if (r.lifecycleState === "DELETED") return { status: 204 };
  for (const [userKind, users] of usedBy)
    for (const u of users)
      if (u.lifecycleState === "ACTIVE") throw conflict(`The ${what} ${r.id} is used by the ACTIVE ${userKind} ${u.id}.`);
  r.lifecycleState = "DELETED";
  touch(ctx, r);
  return { status: 204 };
}

// ---- lists -------------------------------------------------------------------------------------------------------

function listPage<R extends BaseResource>(
  ctx: TwinsContext,
  req: OpRequest,
  all: Iterable<R>,
  filters: Record<string, (r: R, v: string) => boolean>,
) {
  const q = req.query;
  const domain = q.get("iotDomainId");
  if (!domain) throw missingParameter("iotDomainId");
  if (domain !== ctx.store.domain.id) throw notFound("IoT domain");
  const state = q.get("lifecycleState");
  if (state !== undefined && state !== "ACTIVE" && state !== "DELETED") throw invalidParameter("lifecycleState must be ACTIVE or DELETED.");
  const sortBy = q.get("sortBy") ?? "timeCreated";
  if (sortBy !== "timeCreated" && sortBy !== "displayName") throw invalidParameter("sortBy must be timeCreated or displayName.");
  const sortOrder = q.get("sortOrder") ?? (sortBy === "timeCreated" ? "DESC" : "ASC");
  if (sortOrder !== "ASC" && sortOrder !== "DESC") throw invalidParameter("sortOrder must be ASC or DESC.");
  const limitText = q.get("limit");
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1) throw invalidParameter("limit must be a whole number of at least 1.");
    limit = Math.min(limit, MAX_LIMIT);
  }
  const offset = decodePage(q.get("page"));

  const rows = [...all].filter((r) => {
    if (r.iotDomainId !== domain) return false;
    // [I] Without lifecycleState a list shows DELETED resources too (why every sample lookup asks for ACTIVE).
    if (state && r.lifecycleState !== (state as LifecycleState)) return false;
    if (q.has("id") && r.id !== q.get("id")) return false;
    if (q.has("displayName") && r.displayName !== q.get("displayName")) return false;
    for (const [name, test] of Object.entries(filters)) {
      const v = q.get(name);
      if (v !== undefined && !test(r, v)) return false;
    }
    return true;
  });
  const dir = sortOrder === "ASC" ? 1 : -1;
  rows.sort((a, b) => {
    const c = sortBy === "displayName" ? a.displayName.localeCompare(b.displayName) : a.timeCreated.localeCompare(b.timeCreated);
    return (c !== 0 ? c : a.seq - b.seq) * dir;
  });
  const page = rows.slice(offset, offset + limit);
  const more = offset + limit < rows.length;
  return { page, nextPage: more ? encodePage(offset + limit) : undefined };
}

function encodePage(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString("base64url");
}

function decodePage(page: string | undefined): number {
  if (page === undefined) return 0;
  try {
    const o = (JSON.parse(Buffer.from(page, "base64url").toString("utf8")) as { o?: unknown }).o;
    if (typeof o === "number" && Number.isInteger(o) && o >= 0) return o;
  } catch {
    // answered below
  }
  throw invalidParameter("page is not a page token this service issued.");
}

// ---- models ------------------------------------------------------------------------------------------------------

function activeModelBySpecUri(store: OciStore, specUri: string): Model | undefined {
  for (const m of store.models.values()) if (m.lifecycleState === "ACTIVE" && m.specUri === specUri) return m;
  return undefined;
}

export function createModel(ctx: TwinsContext, req: OpRequest): OpResult {
  const body = req.body();
  const iotDomainId = domainOf(ctx, body);
  if (body.spec === undefined || body.spec === null) throw missingParameter("spec");
  if (!isObject(body.spec)) throw invalidParameter("spec must be a DTDL interface object.");
  let dtdl: ReturnType<typeof validateDtdl>;
  try {
    dtdl = validateDtdl(body.spec);
  } catch (err) {
    if (err instanceof DtdlError) throw invalidParameter(err.message.includes(err.path) ? err.message : `${err.path}: ${err.message}`);
    throw err;
  }
  if (activeModelBySpecUri(ctx.store, dtdl.specUri))
    throw conflict(`An ACTIVE digital twin model with specUri ${dtdl.specUri} already exists.`);
  const displayName = optString(body, "displayName") ?? dtdl.displayName ?? dtdl.specUri;
  const base = newBase(ctx, "iotdigitaltwinmodel", iotDomainId, body, displayName);
  if (base.description === undefined && dtdl.description !== undefined) base.description = dtdl.description;
  const model: Model = { ...base, specUri: dtdl.specUri, spec: body.spec, contents: dtdl.contents };
  ctx.store.models.set(model.id, model);
  return { status: 200, body: modelView(model), etag: etagOf(model) };
}

export function getModel(ctx: TwinsContext, req: OpRequest): OpResult {
  const m = existing(ctx.store.models, req.params[0]!, "digital twin model");
  return { status: 200, body: modelView(m), etag: etagOf(m) };
}

export function getModelSpec(ctx: TwinsContext, req: OpRequest): OpResult {
  const m = existing(ctx.store.models, req.params[0]!, "digital twin model");
  return { status: 200, body: m.spec, etag: etagOf(m) };
}

export function listModels(ctx: TwinsContext, req: OpRequest): OpResult {
  const { page, nextPage } = listPage(ctx, req, ctx.store.models.values(), {
    specUriStartsWith: (m, v) => m.specUri.startsWith(v),
  });
  return { status: 200, body: { items: page.map(modelView) }, nextPage };
}

export function updateModel(ctx: TwinsContext, req: OpRequest): OpResult {
  const m = toChange(ctx.store.models, req, "digital twin model", true);
  Object.assign(m, commonUpdate(req.body(), m));
  touch(ctx, m);
  return { status: 200, body: modelView(m), etag: etagOf(m) };
}

export function deleteModel(ctx: TwinsContext, req: OpRequest): OpResult {
  const m = toChange(ctx.store.models, req, "digital twin model", false);
  return markDeleted(ctx, m, "digital twin model", [
    ["digital twin adapter", [...ctx.store.adapters.values()].filter((a) => a.digitalTwinModelId === m.id)],
    ["digital twin instance", [...ctx.store.instances.values()].filter((i) => i.digitalTwinModelId === m.id)],
  ]);
}

// ---- adapters ----------------------------------------------------------------------------------------------------

const relatedNotFound = (what: string) =>
  new OciHttpError(400, "RelatedResourceNotAuthorizedOrNotFound", `Authorization failed or the related ${what} was not found.`);

/** The ACTIVE model named by id and/or specUri (both given must agree). */
function resolveModel(ctx: TwinsContext, id: string | undefined, specUri: string | undefined): Model {
  let model: Model | undefined;
  if (id !== undefined) {
    model = ctx.store.models.get(id);
    if (model?.lifecycleState !== "ACTIVE") throw relatedNotFound(`digital twin model ${id}`);
    if (specUri !== undefined && specUri !== model.specUri)
      throw invalidParameter(`digitalTwinModelSpecUri ${specUri} is not the specUri of digitalTwinModelId ${id}.`);
    return model;
  }
  if (specUri === undefined) throw invalidParameter("One of digitalTwinModelId or digitalTwinModelSpecUri is required.");
  model = activeModelBySpecUri(ctx.store, specUri);
  if (!model) throw relatedNotFound(`digital twin model with specUri ${specUri}`);
  return model;
}

function checkAdapter(envelope: unknown, routes: unknown, model: Model): void {
  try {
    validateAdapter(envelope, routes, model.contents);
  } catch (err) {
    if (err instanceof AdapterError) throw invalidParameter(err.message.includes(err.field) ? err.message : `${err.field}: ${err.message}`);
    throw err;
  }
}

export function createAdapter(ctx: TwinsContext, req: OpRequest): OpResult {
  const body = req.body();
  const iotDomainId = domainOf(ctx, body);
  const model = resolveModel(ctx, optString(body, "digitalTwinModelId"), optString(body, "digitalTwinModelSpecUri"));
  const defaults = body.inboundEnvelope == null || body.inboundRoutes == null ? defaultAdapter(model.contents) : undefined;
  const inboundEnvelope = body.inboundEnvelope ?? defaults!.inboundEnvelope;
  const inboundRoutes = body.inboundRoutes ?? defaults!.inboundRoutes;
  checkAdapter(inboundEnvelope, inboundRoutes, model);
  const seq = ctx.store.seq + 1;
  const displayName = optString(body, "displayName") ?? `digitalTwinAdapter${seq}`;
  const adapter: Adapter = {
    ...newBase(ctx, "iotdigitaltwinadapter", iotDomainId, body, displayName),
    digitalTwinModelId: model.id,
    digitalTwinModelSpecUri: model.specUri,
    inboundEnvelope,
    inboundRoutes: inboundRoutes as unknown[],
  };
  ctx.store.adapters.set(adapter.id, adapter);
  return { status: 200, body: adapterView(adapter), etag: etagOf(adapter) };
}

export function getAdapter(ctx: TwinsContext, req: OpRequest): OpResult {
  const a = existing(ctx.store.adapters, req.params[0]!, "digital twin adapter");
  return { status: 200, body: adapterView(a), etag: etagOf(a) };
}

export function listAdapters(ctx: TwinsContext, req: OpRequest): OpResult {
  const { page, nextPage } = listPage(ctx, req, ctx.store.adapters.values(), {
    digitalTwinModelId: (a, v) => a.digitalTwinModelId === v,
    digitalTwinModelSpecUri: (a, v) => a.digitalTwinModelSpecUri === v,
  });
  return { status: 200, body: { items: page.map((a) => adapterView(a, true)) }, nextPage };
}

export function updateAdapter(ctx: TwinsContext, req: OpRequest): OpResult {
  const a = toChange(ctx.store.adapters, req, "digital twin adapter", true);
  const body = req.body();
  const model = ctx.store.models.get(a.digitalTwinModelId)!;
  const inboundEnvelope = body.inboundEnvelope ?? a.inboundEnvelope;
  const inboundRoutes = body.inboundRoutes ?? a.inboundRoutes;
  checkAdapter(inboundEnvelope, inboundRoutes, model);
  Object.assign(a, commonUpdate(body, a), { inboundEnvelope, inboundRoutes });
  touch(ctx, a);
  return { status: 200, body: adapterView(a), etag: etagOf(a) };
}

export function deleteAdapter(ctx: TwinsContext, req: OpRequest): OpResult {
  const a = toChange(ctx.store.adapters, req, "digital twin adapter", false);
  return markDeleted(ctx, a, "digital twin adapter", [
    ["digital twin instance", [...ctx.store.instances.values()].filter((i) => i.digitalTwinAdapterId === a.id)],
  ]);
}

// ---- instances ---------------------------------------------------------------------------------------------------

function checkExternalKeyFree(store: OciStore, externalKey: string, self?: string): void {
  const other = store.activeInstanceByExternalKey(externalKey);
  if (other && other.id !== self) throw conflict(`An ACTIVE digital twin instance with externalKey ${externalKey} already exists.`);
}

/** The adapter and model references an instance body asks for, resolved and checked. */
function instanceLinks(ctx: TwinsContext, body: Record<string, unknown>, current?: Instance) {
  const adapterId =
    optString(body, "digitalTwinAdapterId") ?? (body.digitalTwinAdapterId === null ? undefined : current?.digitalTwinAdapterId);
  let modelId = optString(body, "digitalTwinModelId");
  let specUri = optString(body, "digitalTwinModelSpecUri");
  if (adapterId !== undefined) {
    const adapter = ctx.store.adapters.get(adapterId);
    if (adapter?.lifecycleState !== "ACTIVE") throw relatedNotFound(`digital twin adapter ${adapterId}`);
    if (modelId !== undefined && modelId !== adapter.digitalTwinModelId)
      throw invalidParameter(`digitalTwinModelId ${modelId} is not the model of digitalTwinAdapterId ${adapterId}.`);
    if (specUri !== undefined && specUri !== adapter.digitalTwinModelSpecUri)
      throw invalidParameter(`digitalTwinModelSpecUri ${specUri} is not the model of digitalTwinAdapterId ${adapterId}.`);
    return {
      digitalTwinAdapterId: adapterId,
      digitalTwinModelId: adapter.digitalTwinModelId,
      digitalTwinModelSpecUri: adapter.digitalTwinModelSpecUri,
    };
  }
  if (modelId === undefined && specUri === undefined && current) {
    modelId = current.digitalTwinModelId;
    specUri = current.digitalTwinModelSpecUri;
  }
  if (modelId === undefined && specUri === undefined) return {};
  const model = resolveModel(ctx, modelId, specUri);
  return { digitalTwinModelId: model.id, digitalTwinModelSpecUri: model.specUri };
}

function gatewaysOf(body: Record<string, unknown>): string[] | undefined {
  const g = body.gateways;
  if (g === undefined || g === null) return undefined;
  if (!Array.isArray(g) || g.some((x) => typeof x !== "string")) throw invalidParameter("gateways must be an array of instance OCIDs.");
  return g as string[];
}

export function createInstance(ctx: TwinsContext, req: OpRequest): OpResult {
  const body = req.body();
  const iotDomainId = domainOf(ctx, body);
  const connectivityType = (optString(body, "connectivityType") ?? "DIRECT") as ConnectivityType;
  if (!CONNECTIVITY.includes(connectivityType)) throw invalidParameter(`connectivityType must be one of ${CONNECTIVITY.join(", ")}.`);
  const seq = ctx.store.seq + 1;
  const externalKey = optString(body, "externalKey") ?? base32Id(`${ctx.store.domain.id}/externalKey/${seq}/${ctx.clock.nowMs()}`, 26);
  if (externalKey === "") throw invalidParameter("externalKey must not be empty.");
  checkExternalKeyFree(ctx.store, externalKey);
  const links = instanceLinks(ctx, body);
  const authId = optString(body, "authId");
  const gateways = gatewaysOf(body);
  const instance: Instance = {
    ...newBase(ctx, "iotdigitaltwininstance", iotDomainId, body, optString(body, "displayName") ?? externalKey),
    connectivityType,
    ...(authId !== undefined ? { authId } : {}),
    externalKey,
    ...links,
    ...(gateways ? { gateways } : {}),
  };
  ctx.store.instances.set(instance.id, instance);
  return { status: 200, body: instanceView(instance), etag: etagOf(instance) };
}

export function getInstance(ctx: TwinsContext, req: OpRequest): OpResult {
  const i = existing(ctx.store.instances, req.params[0]!, "digital twin instance");
  return { status: 200, body: instanceView(i), etag: etagOf(i) };
}

export function listInstances(ctx: TwinsContext, req: OpRequest): OpResult {
  const { page, nextPage } = listPage(ctx, req, ctx.store.instances.values(), {
    digitalTwinModelId: (i, v) => i.digitalTwinModelId === v,
    digitalTwinModelSpecUri: (i, v) => i.digitalTwinModelSpecUri === v,
    connectivityType: (i, v) => i.connectivityType === v,
  });
  return { status: 200, body: { items: page.map(instanceView) }, nextPage };
}

export function updateInstance(ctx: TwinsContext, req: OpRequest): OpResult {
  const i = toChange(ctx.store.instances, req, "digital twin instance", true);
  const body = req.body();
  const externalKey = optString(body, "externalKey");
  if (externalKey !== undefined) checkExternalKeyFree(ctx.store, externalKey, i.id);
  const links = instanceLinks(ctx, body, i);
  const gateways = gatewaysOf(body);
  const common = commonUpdate(body, i);
  const authId = optString(body, "authId");
  Object.assign(i, common);
  delete i.digitalTwinAdapterId;
  delete i.digitalTwinModelId;
  delete i.digitalTwinModelSpecUri;
  Object.assign(i, links);
  if (externalKey !== undefined) i.externalKey = externalKey;
  if (authId !== undefined) i.authId = authId;
  if (gateways !== undefined) i.gateways = gateways;
  touch(ctx, i);
  return { status: 200, body: instanceView(i), etag: etagOf(i) };
}

export function deleteInstance(ctx: TwinsContext, req: OpRequest): OpResult {
  return markDeleted(ctx, toChange(ctx.store.instances, req, "digital twin instance", false), "digital twin instance");
}

export function getInstanceContent(ctx: TwinsContext, req: OpRequest): OpResult {
  const i = existing(ctx.store.instances, req.params[0]!, "digital twin instance");
  if (!i.digitalTwinModelId) throw notFound("digital twin instance content (the instance has no model)");
  const withMetadata = req.query.get("shouldIncludeMetadata") === "true";
  const content: Record<string, unknown> = {};
  const metadata: Record<string, unknown> = {};
  for (const [path, v] of ctx.store.snapshot.get(i.id) ?? []) {
    content[path] = v.value;
    metadata[path] = { timeObserved: toIsoMicros(v.time_observed) };
  }
  // [I] The metadata shape is not documented: a `$metadata` object with each content's time observed.
  if (withMetadata) content.$metadata = metadata;
  return { status: 200, body: content, etag: etagOf(i) };
}

// ---- domain and domain group -------------------------------------------------------------------------------------

export function domainView(ctx: TwinsContext) {
  const d = ctx.store.domain;
  return {
    id: d.id,
    iotDomainGroupId: d.groupId,
    compartmentId: d.compartmentId,
    displayName: "meridian-emulated-domain",
    description: "IoT domain of the Meridian OCI emulator",
    deviceHost: d.deviceHost,
    dbAllowListedIdentityGroupNames: [],
    dbAllowedIdentityDomainHost: d.identityHost,
    dataRetentionPeriodsInDays: { rawData: 16, rejectedData: 16, historizedData: 30, rawCommandData: 16 },
    lifecycleState: "ACTIVE",
    freeformTags: {},
    definedTags: {},
    systemTags: {},
    timeCreated: d.timeCreated,
    timeUpdated: d.timeCreated,
  };
}

export function domainGroupView(ctx: TwinsContext) {
  const d = ctx.store.domain;
  return {
    id: d.groupId,
    compartmentId: d.compartmentId,
    type: "STANDARD",
    displayName: "meridian-emulated-domain-group",
    description: "IoT domain group of the Meridian OCI emulator",
    dataHost: d.dataHost,
    dbAllowListedVcnIds: [],
    dbConnectionString: `${d.dataHost}:1522/${d.groupShortId}_iot`,
    dbTokenScope: `urn:oracle:db::id::${d.compartmentId}`,
    lifecycleState: "ACTIVE",
    freeformTags: {},
    definedTags: {},
    systemTags: {},
    timeCreated: d.timeCreated,
    timeUpdated: d.timeCreated,
  };
}

export function getDomain(ctx: TwinsContext, req: OpRequest): OpResult {
  if (req.params[0] !== ctx.store.domain.id) throw notFound("IoT domain");
  return { status: 200, body: domainView(ctx), etag: "1" };
}

export function getDomainGroup(ctx: TwinsContext, req: OpRequest): OpResult {
  if (req.params[0] !== ctx.store.domain.groupId) throw notFound("IoT domain group");
  return { status: 200, body: domainGroupView(ctx), etag: "1" };
}

export function listDomains(ctx: TwinsContext, req: OpRequest): OpResult {
  const c = req.query.get("compartmentId");
  if (!c) throw missingParameter("compartmentId");
  const items = c === ctx.store.domain.compartmentId ? [domainView(ctx)] : [];
  return { status: 200, body: { items } };
}

export function listDomainGroups(ctx: TwinsContext, req: OpRequest): OpResult {
  const c = req.query.get("compartmentId");
  if (!c) throw missingParameter("compartmentId");
  const items = c === ctx.store.domain.compartmentId ? [domainGroupView(ctx)] : [];
  return { status: 200, body: { items } };
}

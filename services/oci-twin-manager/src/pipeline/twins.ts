import { createHash } from "node:crypto";
import type { Logger } from "@meridian/service-kit";
import { OciConflictError, OciNotFoundError } from "../platform/errors.js";
import type {
  DataPage,
  DataSet,
  DigitalTwinAdapter,
  DigitalTwinInstance,
  DigitalTwinModel,
  DigitalTwinsClient,
  JsonObject,
  LifecycleState,
} from "../platform/types.js";
import type { OciDomains } from "./domains.js";
import { DeviceSecretError, type StoredSource, type StoredTwin, type TwinKindName, type TwinStore } from "./store.js";

/** The freeform tag every OCI resource Meridian creates carries: the twin key it was made for. */
export const TWIN_TAG = "meridian-twin";

export const TWIN_KEY = /^[a-z0-9-]{1,63}$/;
/** DTDL v3 digital twin model identifier. */
export const DTMI =
  /^dtmi:[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?(?::[A-Za-z_](?:[A-Za-z0-9_]*[A-Za-z0-9])?)*;[1-9][0-9]{0,8}(?:\.[0-9]{1,6})?$/;
/** DTDL v3 content name. */
const DTDL_NAME = /^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$/;
export const OCID = /^ocid1\.[a-z0-9]+\.[A-Za-z0-9._:-]{1,400}$/;
const CONTENT_TYPES = new Set(["Telemetry", "Property", "Command", "Relationship", "Component"]);

export const LIMITS = {
  displayName: 255,
  description: 1024,
  externalKey: 255,
  deviceSecret: 4096,
  specBytes: 1024 * 1024,
  contents: 10_000,
  routes: 128,
  adapterBytes: 1024 * 1024,
} as const;

/** A twin as CreateTwin and OCI_TWINS_FILE describe it (TwinSpec, in the pipeline's words). */
export interface TwinDescription {
  key: string;
  /** As given: "" means OCI_IOT_DOMAIN_ID. */
  iotDomainId: string;
  displayName: string;
  description?: string | undefined;
  externalKey?: string | undefined;
  authId?: string | undefined;
  model?: { specUri: string; displayName?: string | undefined; description?: string | undefined; spec: JsonObject } | undefined;
  adapter?:
    | {
        displayName?: string | undefined;
        description?: string | undefined;
        inboundEnvelope?: JsonObject | undefined;
        inboundRoutes: JsonObject[];
      }
    | undefined;
  deviceSecret?: string | undefined;
  source?: StoredSource | undefined;
}

export interface Problem {
  path: string;
  reason: string;
}

// ---- errors (mapped at the API edge by api/errors.ts)

export class TwinNotFoundError extends Error {
  constructor(readonly ref: string) {
    super(`twin ${ref} is not one Meridian manages`);
    this.name = "TwinNotFoundError";
  }
}

/** The key is taken by a twin of another description, or the model's spec URI by another spec. */
export class TwinExistsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TwinExistsError";
  }
}

export class TooManyTwinsError extends Error {
  constructor(max: number) {
    super(`Meridian manages ${max} twins already (OCI_MAX_TWINS): delete one first`);
    this.name = "TooManyTwinsError";
  }
}

/** A description that cannot be created; every problem names its field (proto names, `twin.` prefix left to the caller). */
export class TwinSpecError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${p.path}: ${p.reason}`).join("; "));
    this.name = "TwinSpecError";
  }
}

// ---- validation (before any OCI call)

const kindOf = (v: unknown) => (Array.isArray(v) ? "a list" : v === null ? "null" : typeof v === "object" ? "an object" : typeof v);

function types(v: unknown): string[] {
  return typeof v === "string" ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** The DTDL interface's basic shape: "@type" Interface, a DTDL context, contents with unique names. Returns the content names. */
export function modelProblems(spec: JsonObject, path: string, out: Problem[]): Set<string> {
  const names = new Set<string>();
  const bytes = Buffer.byteLength(JSON.stringify(spec));
  if (bytes > LIMITS.specBytes) {
    out.push({ path, reason: `is ${bytes} bytes as JSON, over the ${LIMITS.specBytes}-byte limit` });
    return names;
  }
  if (!types(spec["@type"]).includes("Interface"))
    out.push({ path: `${path}.@type`, reason: `must be "Interface" (a DTDL v3 interface), got ${JSON.stringify(spec["@type"] ?? null)}` });
  const context = types(spec["@context"]);
  if (!context.some((c) => c.startsWith("dtmi:dtdl:context;")))
    out.push({ path: `${path}.@context`, reason: 'must name the DTDL context, e.g. "dtmi:dtdl:context;3"' });
  const contents = spec["contents"];
  if (contents === undefined) return names;
  if (!Array.isArray(contents)) {
    out.push({ path: `${path}.contents`, reason: `must be a list, got ${kindOf(contents)}` });
    return names;
  }
  if (contents.length > LIMITS.contents) out.push({ path: `${path}.contents`, reason: `at most ${LIMITS.contents} contents` });
  const first = new Map<string, number>();
  contents.forEach((c, i) => {
    const at = `${path}.contents[${i}]`;
    if (c === null || typeof c !== "object" || Array.isArray(c)) {
      out.push({ path: at, reason: `must be an object, got ${kindOf(c)}` });
      return;
    }
    const t = types(c["@type"]);
    if (!t.some((x) => CONTENT_TYPES.has(x)))
      out.push({
        path: `${at}.@type`,
        reason: `must include one of ${[...CONTENT_TYPES].join(", ")}, got ${JSON.stringify(c["@type"] ?? null)}`,
      });
    const name = c["name"];
    if (typeof name !== "string" || !DTDL_NAME.test(name) || name.length > 512) {
      out.push({
        path: `${at}.name`,
        reason: `must be a DTDL name (letters, digits, '_', starting with a letter), got ${JSON.stringify(name ?? null)}`,
      });
      return;
    }
    const prior = first.get(name);
    if (prior !== undefined) out.push({ path: `${at}.name`, reason: `"${name}" is also the name of contents[${prior}]` });
    else first.set(name, i);
    if ((t.includes("Telemetry") || t.includes("Property")) && c["schema"] === undefined)
      out.push({ path: `${at}.schema`, reason: `${t.includes("Telemetry") ? "a Telemetry" : "a Property"} needs a schema` });
    names.add(name);
  });
  return names;
}

/** The model content a payload mapping's target path names: "$.a.b" → "a", "$['a']" → "a". */
export function targetContent(target: string): string | undefined {
  const m = /^\$(?:\.([A-Za-z0-9_]+)|\[['"]([^'"]+)['"]\])/.exec(target.trim());
  return m ? (m[1] ?? m[2]) : undefined;
}

function adapterProblems(a: NonNullable<TwinDescription["adapter"]>, contents: Set<string> | undefined, out: Problem[]): void {
  const env = a.inboundEnvelope;
  if (env) {
    if (typeof env["referenceEndpoint"] !== "string" || env["referenceEndpoint"] === "")
      out.push({
        path: "adapter.inbound_envelope.referenceEndpoint",
        reason: "is required (the endpoint devices post to, e.g. iot/v1/telemetry)",
      });
    const mapping = env["envelopeMapping"];
    if (mapping !== undefined && (mapping === null || typeof mapping !== "object" || Array.isArray(mapping)))
      out.push({ path: "adapter.inbound_envelope.envelopeMapping", reason: `must be an object, got ${kindOf(mapping)}` });
  }
  if (a.inboundRoutes.length > LIMITS.routes)
    out.push({ path: "adapter.inbound_routes", reason: `at most ${LIMITS.routes} routes (OCI's limit), got ${a.inboundRoutes.length}` });
  const bytes = Buffer.byteLength(JSON.stringify([env ?? null, a.inboundRoutes]));
  if (bytes > LIMITS.adapterBytes)
    out.push({ path: "adapter", reason: `envelope and routes are ${bytes} bytes as JSON, over ${LIMITS.adapterBytes}` });
  a.inboundRoutes.forEach((r, i) => {
    const at = `adapter.inbound_routes[${i}]`;
    if (typeof r["condition"] !== "string" || r["condition"] === "")
      out.push({ path: `${at}.condition`, reason: 'is required ("*" matches every payload)' });
    const pm = r["payloadMapping"];
    if (pm === undefined) return;
    if (pm === null || typeof pm !== "object" || Array.isArray(pm)) {
      out.push({ path: `${at}.payloadMapping`, reason: `must be an object (model content path → expression), got ${kindOf(pm)}` });
      return;
    }
    for (const [target, expr] of Object.entries(pm)) {
      const where = `${at}.payloadMapping[${JSON.stringify(target)}]`;
      if (typeof expr !== "string") out.push({ path: where, reason: "must be an expression (a string)" });
      const content = targetContent(target);
      if (!content) out.push({ path: where, reason: 'the target must be a model content path ("$.<content>")' });
      else if (contents && !contents.has(content))
        out.push({
          path: where,
          reason: `route ${i} maps content "${content}", which the model does not have (its contents: ${[...contents].join(", ") || "none"})`,
        });
    }
  });
}

/** Every problem of a description, with proto field paths relative to the TwinSpec. */
export function twinProblems(d: TwinDescription): Problem[] {
  const out: Problem[] = [];
  if (d.key === "") out.push({ path: "key", reason: "is required" });
  else if (!TWIN_KEY.test(d.key)) out.push({ path: "key", reason: "must be 1-63 lower-case letters, digits or '-'" });
  if (d.iotDomainId !== "" && d.iotDomainId !== "default" && !OCID.test(d.iotDomainId))
    out.push({ path: "iot_domain_id", reason: `"${d.iotDomainId.slice(0, 80)}" is not an IoT domain OCID` });
  if (d.displayName === "") out.push({ path: "display_name", reason: "is required" });
  else if (d.displayName.length > LIMITS.displayName)
    out.push({ path: "display_name", reason: `longer than ${LIMITS.displayName} characters` });
  if ((d.description ?? "").length > LIMITS.description)
    out.push({ path: "description", reason: `longer than ${LIMITS.description} characters` });
  if ((d.externalKey ?? "").length > LIMITS.externalKey)
    out.push({ path: "external_key", reason: `longer than ${LIMITS.externalKey} characters` });
  if (d.authId && !OCID.test(d.authId)) out.push({ path: "auth_id", reason: "must be the OCID of a vault secret or certificate" });
  if (d.deviceSecret !== undefined && Buffer.byteLength(d.deviceSecret) > LIMITS.deviceSecret)
    out.push({ path: "device_secret", reason: `over ${LIMITS.deviceSecret} bytes` });
  if (d.deviceSecret && !d.externalKey && !d.authId)
    out.push({ path: "device_secret", reason: "needs external_key or auth_id: the secret is the device's on the device endpoint" });
  let contents: Set<string> | undefined;
  if (d.model) {
    const m = d.model;
    if (m.specUri === "") out.push({ path: "model.spec_uri", reason: "is required" });
    else if (!DTMI.test(m.specUri) || m.specUri.length > 2048)
      out.push({ path: "model.spec_uri", reason: `"${m.specUri.slice(0, 100)}" is not a DTMI (dtmi:<path>;<version>)` });
    if ((m.displayName ?? "").length > LIMITS.displayName)
      out.push({ path: "model.display_name", reason: `longer than ${LIMITS.displayName} characters` });
    if ((m.description ?? "").length > LIMITS.description)
      out.push({ path: "model.description", reason: `longer than ${LIMITS.description} characters` });
    contents = modelProblems(m.spec, "model.spec", out);
  }
  if (d.adapter) {
    if (!d.model) out.push({ path: "adapter", reason: "needs a model (an unstructured twin has no adapter)" });
    if ((d.adapter.displayName ?? "").length > LIMITS.displayName)
      out.push({ path: "adapter.display_name", reason: `longer than ${LIMITS.displayName} characters` });
    if ((d.adapter.description ?? "").length > LIMITS.description)
      out.push({ path: "adapter.description", reason: `longer than ${LIMITS.description} characters` });
    adapterProblems(d.adapter, contents, out);
  }
  if (d.source?.pollIntervalMs !== undefined && (d.source.pollIntervalMs < 200 || d.source.pollIntervalMs > 3_600_000))
    out.push({ path: "source.poll_interval_ms", reason: `must be 0 or 200 to 3600000, got ${d.source.pollIntervalMs}` });
  return out;
}

export function kindOfDescription(d: TwinDescription): TwinKindName {
  if (!d.model) return "unstructured";
  return d.adapter && (d.adapter.inboundEnvelope || d.adapter.inboundRoutes.length > 0) ? "custom-adapter" : "default-adapter";
}

// ---- hashing: what makes two descriptions the same twin

/** JSON with object keys sorted, so that equal values give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** The parts of a description that make the OCI resources, each hashed: the stored hash, and what names a difference. */
function describedParts(d: TwinDescription, domainId: string): Record<string, string> {
  return {
    iot_domain_id: domainId,
    display_name: d.displayName,
    description: d.description ?? "",
    external_key: d.externalKey ?? "",
    auth_id: d.authId ?? "",
    model: d.model ? canonicalJson({ ...d.model, spec: { ...d.model.spec, "@id": d.model.specUri } }) : "",
    adapter: d.adapter ? canonicalJson(d.adapter) : "",
  };
}

function specHashOf(parts: Record<string, string>): string {
  return `sha256:${sha(canonicalJson(Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, sha(v)]))))}`;
}

// ---- what Get/List show

export interface TwinState {
  twin: StoredTwin;
  instance?: DigitalTwinInstance | undefined;
  adapter?: DigitalTwinAdapter | undefined;
  model?: DigitalTwinModel | undefined;
  error?: string | undefined;
}

export type TwinRef = { key: string } | { instanceId: string };

export interface DeleteResult {
  deletedIds: string[];
  kept: Record<string, string>;
}

export interface TwinManagerOptions {
  store: TwinStore;
  domains: OciDomains;
  twins: DigitalTwinsClient;
  logger: Logger;
  maxTwins: number;
  /** How long a delete waits for OCI to report DELETED. */
  deleteWaitMs?: number;
}

/** Query of one data set (QueryTwinData in the pipeline's words). */
export interface TwinDataQuery {
  dataSet: DataSet;
  lastMinutes?: number | undefined;
  startTime?: Date | undefined;
  endTime?: Date | undefined;
  contentPaths?: string[] | undefined;
  includeContent?: boolean | undefined;
  limit: number;
  offset: number;
  ascending: boolean;
}

/** The time field of each data set, as manage-dt filters and ORDS names it. */
export const TIME_FIELD: Record<DataSet, string> = {
  rawData: "time_received",
  rejectedData: "time_received",
  historizedData: "time_observed",
  snapshotData: "time_observed",
  rawCommandData: "time_created",
};

const MAX_GENERATIONS = 4;

/**
 * manage-dt's create, query and delete for twins Meridian names by key. Idempotent per key: the KV record first; then
 * OCI's resources tagged meridian-twin=<key> (what a create interrupted before KV made), and retry tokens derived from
 * (domain, key, step, description), so that a repeat never makes a second resource.
 */
export class TwinManager {
  readonly store: TwinStore;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly o: TwinManagerOptions) {
    this.store = o.store;
  }

  /** One create or delete per key at a time (in this process): a second waits for the first and sees what it made. */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prior = this.locks.get(key) ?? Promise.resolve();
    const next = prior.catch(() => undefined).then(fn);
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }

  async resolve(ref: TwinRef): Promise<StoredTwin> {
    const t = "key" in ref ? await this.store.get(ref.key) : await this.store.byInstanceId(ref.instanceId);
    if (!t) throw new TwinNotFoundError("key" in ref ? `"${ref.key}"` : `with instance ${ref.instanceId}`);
    return t;
  }

  async create(d: TwinDescription): Promise<{ twin: StoredTwin; created: boolean }> {
    const problems = twinProblems(d);
    if (problems.length > 0) throw new TwinSpecError(problems);
    const domainId = this.o.domains.resolve(d.iotDomainId);
    // Refused before anything is made in OCI: the secret could not be kept.
    if (d.deviceSecret && !this.store.keyring)
      throw new DeviceSecretError(`twin ${d.key}: a device secret needs OCI_CREDENTIALS_KEY, which is not set (nothing is kept unsealed)`);
    return this.locked(d.key, () => this.createLocked(d, domainId));
  }

  private async createLocked(d: TwinDescription, domainId: string): Promise<{ twin: StoredTwin; created: boolean }> {
    const parts = describedParts(d, domainId);
    const specHash = specHashOf(parts);
    let generation = 0;
    const existing = await this.store.get(d.key);
    if (existing) {
      if (existing.specHash !== specHash) throw new TwinExistsError(await this.difference(existing, d, parts));
      if (await this.instanceGone(existing)) {
        // Deleted in OCI behind Meridian's back: made again (new retry tokens, or OCI would answer with the deleted one).
        this.o.logger.warn({ twin: d.key, instanceId: existing.instanceId }, "twin's instance no longer exists in OCI; creating it again");
        generation = 1;
      } else {
        const updated = this.withExtras(existing, d);
        if (updated !== existing) await this.store.put(updated);
        return { twin: updated, created: false };
      }
    } else if ((await this.store.list()).length >= this.o.maxTwins) throw new TooManyTwinsError(this.o.maxTwins);

    const tags = { [TWIN_TAG]: d.key };
    const token = (step: string, g: number) => sha(`${domainId}\0${d.key}\0${step}\0${specHash}\0${g}`).slice(0, 48);
    const kind = kindOfDescription(d);
    let model: DigitalTwinModel | undefined;
    let modelReused = false;
    let adapter: DigitalTwinAdapter | undefined;
    if (d.model) {
      const found = await this.existingModel(domainId, d);
      model = found?.model;
      modelReused = found?.reused ?? false;
      if (!model) {
        const spec = { ...d.model.spec, "@id": d.model.specUri };
        model = await this.createFresh("model", generation, (g) =>
          this.o.twins.createModel(
            {
              iotDomainId: domainId,
              spec,
              displayName: d.model!.displayName || d.model!.specUri,
              ...(d.model!.description ? { description: d.model!.description } : {}),
            },
            { retryToken: token("model", g), freeformTags: tags },
          ),
        );
        this.o.logger.info({ twin: d.key, modelId: model.id, specUri: d.model.specUri }, "digital twin model created");
      }
      adapter = await this.tagged("adapter", d.key, () =>
        this.o.twins.listAdapters(domainId, { digitalTwinModelId: model!.id, lifecycleState: "ACTIVE", limit: 1000 }),
      );
      if (!adapter) {
        const a = d.adapter;
        adapter = await this.createFresh("adapter", generation, (g) =>
          this.o.twins.createAdapter(
            {
              iotDomainId: domainId,
              digitalTwinModelId: model!.id,
              displayName: a?.displayName || `${d.key}-adapter`,
              description: a?.description || `Default Adapter for ${d.model!.specUri}`,
              ...(a?.inboundEnvelope ? { inboundEnvelope: a.inboundEnvelope } : {}),
              ...(a && a.inboundRoutes.length > 0 ? { inboundRoutes: a.inboundRoutes } : {}),
            },
            { retryToken: token("adapter", g), freeformTags: tags },
          ),
        );
        this.o.logger.info({ twin: d.key, adapterId: adapter.id, kind }, "digital twin adapter created");
      }
    }
    let instance = await this.tagged("instance", d.key, () =>
      this.o.twins.listInstances(domainId, { displayName: d.displayName, lifecycleState: "ACTIVE", limit: 1000 }),
    );
    if (!instance) {
      const description =
        d.description ||
        (kind === "unstructured"
          ? `${d.displayName} - Unstructured Telemetry`
          : `${d.displayName} - Structured Telemetry with ${kind === "custom-adapter" ? "custom" : "default"} Adapter`);
      instance = await this.createFresh("instance", generation, (g) =>
        this.o.twins.createInstance(
          {
            iotDomainId: domainId,
            displayName: d.displayName,
            description,
            ...(d.externalKey ? { externalKey: d.externalKey } : {}),
            ...(d.authId ? { authId: d.authId } : {}),
            ...(adapter ? { digitalTwinAdapterId: adapter.id } : {}),
          },
          { retryToken: token("instance", g), freeformTags: tags },
        ),
      );
      this.o.logger.info({ twin: d.key, instanceId: instance.id, kind }, "digital twin instance created");
    }
    const stored: StoredTwin = {
      key: d.key,
      iotDomainId: domainId,
      kind,
      instanceId: instance.id,
      ...(adapter ? { adapterId: adapter.id } : {}),
      ...(model ? { modelId: model.id } : {}),
      ...(instance.externalKey || d.externalKey ? { externalKey: instance.externalKey || d.externalKey } : {}),
      specHash,
      createTime: new Date().toISOString(),
      ...(modelReused ? { modelReused: true } : {}),
    };
    const twin = this.withExtras(stored, d);
    await this.store.put(twin);
    return { twin, created: true };
  }

  /** The stored twin with the description's source and device secret (the same object when nothing changes). */
  private withExtras(t: StoredTwin, d: TwinDescription): StoredTwin {
    let out = t;
    if (canonicalJson(d.source ?? null) !== canonicalJson(t.source ?? null)) {
      const { source: _, ...rest } = out;
      out = d.source ? { ...rest, source: d.source } : rest;
    }
    if (d.deviceSecret !== undefined) out = this.withSecret(out, d.deviceSecret);
    return out;
  }

  /** The twin with this device secret sealed ("" clears it); the same object when it already holds it. */
  withSecret(t: StoredTwin, secret: string): StoredTwin {
    if (secret === "") {
      if (!t.deviceSecret) return t;
      const { deviceSecret: _, ...rest } = t;
      return rest;
    }
    try {
      if (this.store.deviceCredentials(t)?.secret === secret) return t;
    } catch (err) {
      if (!(err instanceof DeviceSecretError)) throw err;
    }
    return { ...t, deviceSecret: this.store.seal(t, secret) };
  }

  /** Names what differs between the stored twin and a description with the same key. */
  private async difference(t: StoredTwin, d: TwinDescription, parts: Record<string, string>): Promise<string> {
    const differs: string[] = [];
    if (t.iotDomainId !== parts["iot_domain_id"]) differs.push(`iot_domain_id (${t.iotDomainId})`);
    try {
      const inst = await this.o.twins.getInstance(t.instanceId);
      if (inst.displayName !== d.displayName) differs.push(`display_name ("${inst.displayName}")`);
      if ((d.externalKey ?? "") !== "" && inst.externalKey !== d.externalKey) differs.push(`external_key ("${inst.externalKey ?? ""}")`);
      if ((d.authId ?? "") !== (inst.authId ?? "")) differs.push("auth_id");
      if (d.description && inst.description !== d.description) differs.push("description");
      if (!!d.model !== !!t.modelId) differs.push(t.modelId ? "model (the twin has one)" : "model (the twin has none)");
      else if (d.model && t.modelId) {
        const m = await this.o.twins.getModel(t.modelId);
        if (m.specUri !== d.model.specUri) differs.push(`model.spec_uri ("${m.specUri}")`);
        else differs.push("model or adapter");
      } else if (kindOfDescription(d) !== t.kind) differs.push(`adapter (the twin has a ${t.kind} one)`);
    } catch {
      // What OCI holds could not be read: the hash alone says it differs.
    }
    return `twin "${t.key}" exists with another description${differs.length > 0 ? `: ${[...new Set(differs)].join(", ")} differ` : ""} (delete it first, or use another key)`;
  }

  private async instanceGone(t: StoredTwin): Promise<boolean> {
    try {
      return (await this.o.twins.getInstance(t.instanceId)).lifecycleState === "DELETED";
    } catch (err) {
      if (err instanceof OciNotFoundError) return true;
      throw err;
    }
  }

  /**
   * The ACTIVE model with the description's spec URI, when there is one: Meridian's (tagged) or not, it is used only
   * when its spec is the description's; another spec under the same URI is TwinExistsError naming the model.
   */
  private async existingModel(domainId: string, d: TwinDescription): Promise<{ model: DigitalTwinModel; reused: boolean } | undefined> {
    const m = d.model!;
    const page = await this.o.twins.listModels(domainId, { specUriStartsWith: m.specUri, lifecycleState: "ACTIVE", limit: 1000 });
    const model = page.items.find((x) => x.specUri === m.specUri && (x.lifecycleState === "ACTIVE" || x.lifecycleState === undefined));
    if (!model) return undefined;
    const spec = await this.o.twins.getModelSpec(model.id);
    const wanted = { ...m.spec, "@id": m.specUri };
    if (canonicalJson(spec) !== canonicalJson(wanted))
      throw new TwinExistsError(
        `model ${model.id} ("${model.displayName}") already has spec URI ${m.specUri} in the domain with another spec: give the model a new version (;N) or delete that model`,
      );
    const tag = model.freeformTags?.[TWIN_TAG];
    return { model, reused: tag === undefined };
  }

  /** The ACTIVE resource tagged for this twin among a listing, when a create before crashed after OCI made it. */
  private async tagged<T extends { freeformTags?: Record<string, string> | undefined; lifecycleState: LifecycleState }>(
    _what: string,
    key: string,
    list: () => Promise<{ items: T[] }>,
  ): Promise<T | undefined> {
    return (await list()).items.find((x) => x.freeformTags?.[TWIN_TAG] === key && x.lifecycleState === "ACTIVE");
  }

  /**
   * Creates with the generation's retry token. OCI answers a repeated token with what it made first, which may be deleted
   * since (a twin deleted and created again): then the next generation's token is used.
   */
  private async createFresh<T extends { id: string; lifecycleState: LifecycleState }>(
    what: "model" | "adapter" | "instance",
    from: number,
    create: (generation: number) => Promise<T>,
  ): Promise<T> {
    for (let g = from; g < from + MAX_GENERATIONS; g++) {
      const made = await create(g);
      if (made.lifecycleState === "DELETED") continue;
      const now = await this.current(what, made.id);
      if (now && now.lifecycleState !== "DELETED") return made;
    }
    throw new OciConflictError(`OCI keeps answering the ${what} create with a deleted ${what}; try again later`);
  }

  private async current(what: "model" | "adapter" | "instance", id: string): Promise<{ lifecycleState: LifecycleState } | undefined> {
    try {
      if (what === "model") return await this.o.twins.getModel(id);
      if (what === "adapter") return await this.o.twins.getAdapter(id);
      return await this.o.twins.getInstance(id);
    } catch (err) {
      if (err instanceof OciNotFoundError) return undefined;
      throw err;
    }
  }

  /** The twin with its OCI resources as they are now; what cannot be read is in `error` (an instance gone: DELETED). */
  async state(t: StoredTwin): Promise<TwinState> {
    const out: TwinState = { twin: t };
    const errors: string[] = [];
    const read = async <R>(what: string, id: string | undefined, get: (id: string) => Promise<R>): Promise<R | undefined> => {
      if (!id) return undefined;
      try {
        return await get(id);
      } catch (err) {
        errors.push(err instanceof OciNotFoundError ? `${what} ${id} no longer exists in OCI` : `${what} ${id}: ${(err as Error).message}`);
        return undefined;
      }
    };
    const [instance, adapter, model] = await Promise.all([
      read("instance", t.instanceId, (id) => this.o.twins.getInstance(id)),
      read("adapter", t.adapterId, (id) => this.o.twins.getAdapter(id)),
      read("model", t.modelId, (id) => this.o.twins.getModel(id)),
    ]);
    out.instance = instance;
    out.adapter = adapter;
    out.model = model;
    if (instance?.lifecycleState === "DELETED") errors.unshift(`instance ${t.instanceId} was deleted in OCI`);
    if (errors.length > 0) out.error = errors.join("; ");
    return out;
  }

  async list(iotDomainId?: string): Promise<StoredTwin[]> {
    const all = await this.store.list();
    return all.filter((t) => !iotDomainId || t.iotDomainId === iotDomainId).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * manage-dt's delete by OCID: the instance, then the adapter, then the model, each waited for until DELETED. An
   * adapter or model another Meridian twin uses is kept unless `force`; one an ACTIVE resource outside Meridian uses,
   * or a model Meridian did not create, is always kept.
   */
  async delete(ref: TwinRef, force: boolean): Promise<DeleteResult> {
    const first = await this.resolve(ref);
    return this.locked(first.key, async () => {
      const t = await this.resolve({ key: first.key });
      const result: DeleteResult = { deletedIds: [], kept: {} };
      const others = (await this.store.list()).filter((x) => x.key !== t.key);
      await this.deleteOne("instance", t.instanceId, result);
      if (t.adapterId) {
        const users = others.filter((x) => x.adapterId === t.adapterId).map((x) => x.key);
        const foreign = await this.foreignUsers("adapter", t.adapterId, t, others);
        if (foreign) result.kept[t.adapterId] = foreign;
        else if (users.length > 0 && !force) result.kept[t.adapterId] = `in use by twin ${users.join(", ")} (force deletes it anyway)`;
        else await this.deleteOne("adapter", t.adapterId, result);
      }
      if (t.modelId) {
        const users = others.filter((x) => x.modelId === t.modelId).map((x) => x.key);
        if (t.modelReused) result.kept[t.modelId] = "the model existed before this twin (not created by Meridian)";
        else if (t.adapterId && result.kept[t.adapterId]) result.kept[t.modelId] = `in use by adapter ${t.adapterId}, which is kept`;
        else {
          const foreign = await this.foreignUsers("model", t.modelId, t, others);
          if (foreign) result.kept[t.modelId] = foreign;
          else if (users.length > 0 && !force) result.kept[t.modelId] = `in use by twin ${users.join(", ")} (force deletes it anyway)`;
          else await this.deleteOne("model", t.modelId, result);
        }
      }
      await this.store.delete(t.key);
      this.o.logger.info({ twin: t.key, deleted: result.deletedIds, kept: result.kept }, "twin deleted");
      return result;
    });
  }

  /** Why an adapter or model must stay for an ACTIVE resource no Meridian twin accounts for; undefined when none. */
  private async foreignUsers(what: "adapter" | "model", id: string, t: StoredTwin, others: StoredTwin[]): Promise<string | undefined> {
    if (what === "adapter") {
      const page = await this.o.twins.listInstances(t.iotDomainId, { digitalTwinAdapterId: id, lifecycleState: "ACTIVE", limit: 1000 });
      const known = new Set([t.instanceId, ...others.map((x) => x.instanceId)]);
      const foreign = page.items.filter((x) => x.lifecycleState === "ACTIVE" && !known.has(x.id));
      return foreign.length > 0 ? `in use by instance ${foreign.map((x) => x.id).join(", ")}, which Meridian does not manage` : undefined;
    }
    const page = await this.o.twins.listAdapters(t.iotDomainId, { digitalTwinModelId: id, lifecycleState: "ACTIVE", limit: 1000 });
    const known = new Set([t.adapterId, ...others.map((x) => x.adapterId)].filter(Boolean));
    const foreign = page.items.filter((x) => x.lifecycleState === "ACTIVE" && !known.has(x.id));
    return foreign.length > 0 ? `in use by adapter ${foreign.map((x) => x.id).join(", ")}, which Meridian does not manage` : undefined;
  }

  private async deleteOne(what: "model" | "adapter" | "instance", id: string, result: DeleteResult): Promise<void> {
    try {
      if (what === "instance") await this.o.twins.deleteInstance(id);
      else if (what === "adapter") await this.o.twins.deleteAdapter(id);
      else await this.o.twins.deleteModel(id);
    } catch (err) {
      // Gone already (deleted in OCI, or by a delete interrupted before KV): what was asked for is done.
      if (!(err instanceof OciNotFoundError)) {
        if (err instanceof OciConflictError && what !== "instance") {
          result.kept[id] = `OCI refused to delete the ${what}: ${err.message}`;
          return;
        }
        throw err;
      }
    }
    await this.o.twins.waitFor(what, id, "DELETED", this.o.deleteWaitMs ?? 60_000);
    result.deletedIds.push(id);
  }

  async setSource(ref: TwinRef, source: StoredSource | undefined): Promise<StoredTwin> {
    const t = await this.resolve(ref);
    return this.locked(t.key, async () => {
      const cur = await this.resolve({ key: t.key });
      const { source: _, ...rest } = cur;
      const on = source && (source.historized || source.raw || source.rejected);
      const next: StoredTwin = on ? { ...rest, source } : rest;
      await this.store.put(next);
      return next;
    });
  }

  async setDeviceSecret(ref: TwinRef, secret: string): Promise<StoredTwin> {
    const t = await this.resolve(ref);
    return this.locked(t.key, async () => {
      const cur = await this.resolve({ key: t.key });
      const next = this.withSecret(cur, secret);
      if (next !== cur) await this.store.put(next);
      return next;
    });
  }

  async content(ref: TwinRef, includeMetadata: boolean): Promise<JsonObject> {
    const t = await this.resolve(ref);
    return this.o.twins.getInstanceContent(t.instanceId, { includeMetadata });
  }

  /** manage-dt's query of one data set: this twin's rows of the last minutes (or a time range), newest first unless asked. */
  async queryData(ref: TwinRef, q: TwinDataQuery, signal?: AbortSignal): Promise<DataPage> {
    const t = await this.resolve(ref);
    const data = await this.o.domains.dataApi(t.iotDomainId);
    const field = TIME_FIELD[q.dataSet];
    const filter: JsonObject[] = [];
    // Snapshot rows are the latest value of each path, however old: only a time asked for filters them.
    if (q.dataSet !== "snapshotData" || q.lastMinutes || q.startTime) {
      const from = q.startTime ?? new Date(Date.now() - (q.lastMinutes || 5) * 60_000);
      filter.push({ [field]: { $gte: { $date: from.toISOString() } } });
    }
    if (q.endTime) filter.push({ [field]: { $lt: { $date: q.endTime.toISOString() } } });
    if (q.contentPaths && q.contentPaths.length > 0) filter.push({ content_path: { $in: q.contentPaths } });
    // Snapshot rows have no id; raw commands are ordered by creation, as manage-dt does.
    const order = q.dataSet === "snapshotData" || q.dataSet === "rawCommandData" ? field : "id";
    const page = await data.query(
      q.dataSet,
      { digitalTwinInstanceId: t.instanceId, filter, orderBy: { [order]: q.ascending ? "asc" : "desc" }, limit: q.limit, offset: q.offset },
      signal,
    );
    if (q.includeContent && q.dataSet !== "snapshotData" && q.dataSet !== "historizedData") {
      const ds = q.dataSet;
      page.items = await Promise.all(
        page.items.map(async (row) => (typeof row["id"] === "number" ? { ...row, ...(await data.get(ds, row["id"], signal)) } : row)),
      );
    }
    return page;
  }

  /** Posts a payload to the twin's device endpoint as its device; DeviceSecretError when Meridian holds no secret for it. */
  async sendData(ref: TwinRef, endpoint: string, payload: JsonObject, signal?: AbortSignal): Promise<void> {
    const t = await this.resolve(ref);
    const credentials = this.store.deviceCredentials(t);
    if (!credentials)
      throw new DeviceSecretError(
        t.externalKey
          ? `twin ${t.key} has no device secret: give it with SetTwinDeviceSecret (the plaintext of the vault secret its auth id names)`
          : `twin ${t.key} has no external key and no device secret to post as`,
      );
    await (await this.o.domains.device(t.iotDomainId)).post(credentials, endpoint, payload, signal);
  }
}

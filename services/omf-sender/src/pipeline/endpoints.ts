import { type Bus, jsonCodec, KeyChangedError, KvBucket } from "@meridian/bus";
import type { Logger } from "pino";
import { OmfClient, type OmfEndpointInput, validateEndpointConfig } from "../platform/index.js";
import {
  CredentialKeyring,
  CredentialsError,
  isSealed,
  type LegacySealedSecret,
  type SealedSecret,
  type SecretBinding,
  sameBinding,
} from "./credentials.js";
import { EndpointPolicy, EndpointPolicyError, type InsecureSetting, type SecretRef } from "./policy.js";

export { CredentialKeyring, CredentialsError, EndpointPolicy, EndpointPolicyError, type InsecureSetting, type SecretRef };

/**
 * OMF endpoints: stored in the `omf_endpoints` KV bucket (so every replica and every route sees the same set),
 * credentials sealed under OMF_CREDENTIALS_KEY and bound to where they go (credentials.ts), every record checked
 * against the operator's policy (policy.ts) before anything is sent. Shared by the pipelines and the API.
 */

export const ENDPOINTS_BUCKET = "omf_endpoints";
/** Endpoint ids are KV keys and appear in state keys: keep them to what both accept. */
export const ENDPOINT_ID = /^[a-z][a-z0-9-]{0,62}$/;

export type EndpointKindName = "pi" | "adh" | "eds";

/** Non-secret settings, in the platform client's input shape (`validateEndpointConfig`), without credentials. */
export interface EndpointSettings {
  kind: EndpointKindName;
  url: string;
  omfVersion?: string;
  username?: string;
  dataServerName?: string;
  tenantId?: string;
  namespaceId?: string;
  clientId?: string;
  apiVersion?: string;
  tokenUrl?: string;
  caPemPath?: string;
  verifySsl?: boolean;
  allowHttp?: boolean;
  compression?: boolean;
  timeoutMs?: number;
  maxBodyBytes?: number;
  maxValuesPerRequest?: number;
  /** `Accept-Verbosity` on OMF POSTs. */
  acceptVerbosity?: string;
  /** `producertoken` on OMF 1.0 / 1.1 (obsolete in 1.2): an opaque label, not a credential. */
  producerToken?: string;
}

export type StoredSecret = SealedSecret | LegacySealedSecret | { ref: SecretRef };

export interface StoredEndpoint {
  id: string;
  origin: "api" | "file";
  createTime: string;
  updateTime?: string;
  settings: EndpointSettings;
  secret?: StoredSecret;
}

/** A stored endpoint and its KV revision (the etag an update must name). */
export interface EndpointEntry {
  endpoint: StoredEndpoint;
  revision: number;
}

/** What the endpoints file declares for an id: the only place a secret reference is honoured for. */
export interface DeclaredDefinition {
  settings: EndpointSettings;
  ref?: SecretRef;
}

/** An update or delete named a revision that is not the stored one (someone changed the endpoint since it was read). */
export class EndpointRevisionError extends Error {
  constructor(
    readonly endpointId: string,
    readonly expected: number,
    readonly actual: number | undefined,
  ) {
    super(
      actual === undefined
        ? `endpoint "${endpointId}" changed since revision ${expected} was read: it no longer exists`
        : `endpoint "${endpointId}" changed since revision ${expected} was read (now ${actual}): read it again and repeat the change`,
    );
    this.name = "EndpointRevisionError";
  }
}

/** The secret field of each kind, in the platform input. */
const SECRET_FIELD: Record<EndpointKindName, "password" | "clientSecret" | undefined> = {
  pi: "password",
  adh: "clientSecret",
  eds: undefined,
};

/** What a sealed secret of this endpoint is bound to. */
export function bindingOf(id: string, s: EndpointSettings): SecretBinding {
  return {
    id,
    kind: s.kind,
    url: s.url,
    tokenUrl: s.tokenUrl,
    username: s.kind === "pi" ? s.username : undefined,
    clientId: s.kind === "adh" ? s.clientId : undefined,
    verifySsl: s.verifySsl,
    caPemPath: s.caPemPath,
    allowHttp: s.allowHttp,
  };
}

/** Platform input for validation / the client: settings + the secret in its kind's field. */
export function platformInput(id: string, settings: EndpointSettings, secret: string | undefined): OmfEndpointInput {
  const field = SECRET_FIELD[settings.kind];
  const input: Record<string, unknown> = { ...settings, name: id };
  if (field && secret !== undefined) input[field] = secret;
  return input as unknown as OmfEndpointInput;
}

/**
 * Validates settings with the platform's rules. `secretPlaceholder` stands in for a secret that is given but
 * not at hand (a reference), so the rest is still checked. Returns the errors (field-named, secret-free).
 */
export function validateSettings(id: string, settings: EndpointSettings, secret: string | undefined, path = "endpoint"): string[] {
  const r = validateEndpointConfig(platformInput(id, settings, secret), path);
  return r.ok ? [] : r.errors;
}

function sameRef(a: SecretRef, b: SecretRef): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * How old the record behind a pipeline's client may be. A pipeline asks for its endpoint's client at every send; reading
 * the bucket each time put a JetStream round trip in front of every send. A change made through this instance's API
 * (or the endpoints file) applies to the next send; one made elsewhere (another replica, a direct write to the bucket)
 * within this long. The API's own calls always read the bucket.
 */
export const SEND_RECORD_MAX_AGE_MS = 1000;

interface CachedClient {
  fingerprint: string;
  client: OmfClient;
  url: string;
}

/** A record as last read from the bucket, for the send path (SEND_RECORD_MAX_AGE_MS). */
interface ReadRecord {
  endpoint: StoredEndpoint | undefined;
  /** JSON of the record: the client is rebuilt when it changes. */
  fingerprint: string;
  readAt: number;
}

export interface EndpointRegistryOptions {
  /** OMF_CREDENTIALS_KEY (+ previous keys); without it no secret can be sealed or opened. */
  keyring: CredentialKeyring | undefined;
  policy: EndpointPolicy;
  /** The endpoints file, by id: secret references are honoured for these only, as declared. */
  declared: ReadonlyMap<string, DeclaredDefinition>;
  logger: Logger;
}

/**
 * The endpoints bucket with revisions (an update names the revision it read), and the clients built from it. A client
 * is built only for a record the policy permits and whose secret opens for it; a record that fails either is logged at
 * error once per version and not sent to (the pipeline retries it with backoff, keeping the data).
 */
export class EndpointRegistry {
  readonly keyring: CredentialKeyring | undefined;
  readonly policy: EndpointPolicy;
  readonly declared: ReadonlyMap<string, DeclaredDefinition>;
  private readonly log: Logger;
  private readonly bucket: KvBucket<StoredEndpoint>;
  /** The records last read, by id (the send path's, see SEND_RECORD_MAX_AGE_MS). */
  private readonly records = new Map<string, ReadRecord>();
  private readonly clients = new Map<string, CachedClient>();
  /** The version of each record last refused, so a refusal is logged once, not per batch. */
  private readonly refused = new Map<string, string>();

  constructor(bus: Bus, options: EndpointRegistryOptions) {
    this.bucket = new KvBucket(bus, ENDPOINTS_BUCKET, jsonCodec<StoredEndpoint>());
    this.keyring = options.keyring;
    this.policy = options.policy;
    this.declared = options.declared;
    this.log = options.logger.child({ component: "endpoints" });
  }

  async entry(id: string): Promise<EndpointEntry | undefined> {
    const e = await this.bucket.entry(id);
    // The key is the endpoint's id; an id inside the value is whatever its writer put there.
    const endpoint = e ? { ...e.value, id } : undefined;
    this.remember(id, endpoint);
    return e && endpoint ? { endpoint, revision: e.revision } : undefined;
  }

  /** Every read serves the send path too: what the API just read is what the next send uses. */
  private remember(id: string, endpoint: StoredEndpoint | undefined): ReadRecord {
    const r = { endpoint, fingerprint: endpoint ? JSON.stringify(endpoint) : "", readAt: Date.now() };
    this.records.set(id, r);
    return r;
  }

  async get(id: string): Promise<StoredEndpoint | undefined> {
    return (await this.entry(id))?.endpoint;
  }

  async entries(): Promise<EndpointEntry[]> {
    const out: EndpointEntry[] = [];
    for (const key of await this.bucket.keys()) {
      const e = await this.entry(key);
      if (e) out.push(e);
    }
    return out;
  }

  async list(): Promise<StoredEndpoint[]> {
    return (await this.entries()).map((e) => e.endpoint);
  }

  /** Creates the record; KeyExistsError when the id is taken. Returns the new revision. */
  async create(endpoint: StoredEndpoint): Promise<number> {
    this.records.delete(endpoint.id);
    return await this.bucket.create(endpoint.id, endpoint);
  }

  /** Replaces the record at `revision` only; EndpointRevisionError when it is at another. Returns the new revision. */
  async update(endpoint: StoredEndpoint, revision: number): Promise<number> {
    this.records.delete(endpoint.id);
    try {
      return await this.bucket.update(endpoint.id, endpoint, revision);
    } catch (err) {
      if (!(err instanceof KeyChangedError)) throw err;
      throw new EndpointRevisionError(endpoint.id, revision, (await this.entry(endpoint.id))?.revision);
    }
  }

  /** Deletes the record (at `revision` when given). False when there was none; EndpointRevisionError on a stale revision. */
  async delete(id: string, revision?: number): Promise<boolean> {
    const current = await this.entry(id);
    if (!current) {
      if (revision) throw new EndpointRevisionError(id, revision, undefined);
      return false;
    }
    const expected = revision || current.revision;
    try {
      await this.bucket.delete(id, expected);
    } catch (err) {
      if (!(err instanceof KeyChangedError)) throw err;
      throw new EndpointRevisionError(id, expected, (await this.entry(id))?.revision);
    }
    this.forget(id);
    return true;
  }

  /** Seals a plaintext secret for this endpoint's binding; CredentialsError when no key is configured. */
  seal(id: string, settings: EndpointSettings, secret: string): SealedSecret {
    if (!this.keyring) throw new CredentialsError("OMF_CREDENTIALS_KEY is not set: endpoint credentials cannot be stored");
    return this.keyring.seal(bindingOf(id, settings), secret);
  }

  /**
   * The plaintext secret of a stored endpoint (only the client and the file comparison call this). A sealed secret
   * opens only for the binding it was sealed for; a reference only for an endpoint the endpoints file declares with
   * that reference and that binding. CredentialsError otherwise, naming no path and no value.
   */
  revealSecret(e: StoredEndpoint): string | undefined {
    if (!e.secret) return undefined;
    if ("ref" in e.secret) {
      const declared = this.declared.get(e.id);
      if (
        !declared?.ref ||
        !sameRef(declared.ref, e.secret.ref) ||
        !sameBinding(bindingOf(e.id, declared.settings), bindingOf(e.id, e.settings))
      )
        throw new CredentialsError(
          `endpoint "${e.id}": a secret reference is honoured only for an endpoint of OMF_ENDPOINTS_FILE as the file declares it, and this record's is not`,
        );
      try {
        return this.policy.resolveRef(e.secret.ref);
      } catch (err) {
        // The reason names the variable or file: the log's, not the caller's.
        this.log.error({ endpoint: e.id, reason: (err as Error).message }, "the endpoint's secret reference cannot be read");
        throw new CredentialsError(`endpoint "${e.id}": its secret reference cannot be read (see omf-sender's log)`);
      }
    }
    if (!isSealed(e.secret)) throw new CredentialsError(`endpoint "${e.id}": the stored secret is in no known form`);
    if (!this.keyring) throw new CredentialsError(`endpoint "${e.id}" has a sealed secret but OMF_CREDENTIALS_KEY is not set`);
    return this.keyring.open(bindingOf(e.id, e.settings), e.secret);
  }

  /** The settings of the endpoint that weaken transport security. */
  insecureSettings(e: StoredEndpoint): InsecureSetting[] {
    return this.policy.insecureSettings(e.settings);
  }

  /**
   * Why the record as stored would not be sent to (the policy, the secret), or undefined when it would. For status:
   * the same checks `client()` makes, without building one.
   */
  configurationError(e: StoredEndpoint): string | undefined {
    const violations = this.policy.violations(e.settings);
    if (violations.length > 0) return new EndpointPolicyError(e.id, violations).message;
    try {
      this.revealSecret(e);
    } catch (err) {
      if (err instanceof CredentialsError) return err.message;
      throw err;
    }
    return undefined;
  }

  /**
   * The client of an endpoint, rebuilt when its stored definition changed; undefined when there is no such endpoint.
   * EndpointPolicyError / CredentialsError when the record may not be sent to: the record may have been written by
   * anyone with access to the bus, so it is checked here, before every client, not only when the API wrote it.
   * `maxAgeMs`: the record may be one read that long ago (the send path's SEND_RECORD_MAX_AGE_MS); 0 reads it now.
   */
  async client(id: string, maxAgeMs = 0): Promise<OmfClient | undefined> {
    let read = this.records.get(id);
    if (!read || maxAgeMs <= 0 || Date.now() - read.readAt >= maxAgeMs) {
      await this.entry(id);
      read = this.records.get(id);
    }
    const e = read?.endpoint;
    if (!e || !read) {
      this.dropClient(id);
      return undefined;
    }
    const fingerprint = read.fingerprint;
    const cached = this.clients.get(id);
    if (cached && cached.fingerprint === fingerprint) return this.versioned(cached.client);
    let client: OmfClient;
    try {
      const violations = this.policy.violations(e.settings);
      if (violations.length > 0) throw new EndpointPolicyError(id, violations);
      client = new OmfClient(platformInput(id, e.settings, this.revealSecret(e)));
    } catch (err) {
      this.dropClient(id);
      if (this.refused.get(id) !== fingerprint) {
        this.refused.set(id, fingerprint);
        this.log.error({ endpoint: id, url: e.settings.url, reason: (err as Error).message }, "endpoint refused: nothing is sent to it");
      }
      throw err;
    }
    this.refused.delete(id);
    if (cached && cached.url !== e.settings.url)
      this.log.warn({ endpoint: id, from: cached.url, to: e.settings.url }, "endpoint now points elsewhere");
    if (!client.config.verifySsl)
      this.log.warn({ endpoint: id, url: e.settings.url }, "TLS verification is off for this endpoint: its certificate is not checked");
    this.dropClient(id);
    this.clients.set(id, { fingerprint, client, url: e.settings.url });
    return this.versioned(client);
  }

  /**
   * The client once it knows the OMF version it speaks (asked of the endpoint when the record sets none: once, then
   * at most every VERSION_PROBE_RETRY_MS while the endpoint does not say), so that whatever the caller maps next is
   * shaped for the version the client sends. Logged when the endpoint's answer settles it.
   */
  private async versioned(client: OmfClient): Promise<OmfClient> {
    if (client.omfVersionInUse.source !== "default") return client;
    await client.omfVersion();
    const now = client.omfVersionInUse;
    if (now.source === "probed") this.log.info({ endpoint: client.name, omfVersion: now.version }, "OMF version asked of the endpoint");
    return client;
  }

  /** Drops the client and the record read for it: the next send reads the bucket. After a change made here. */
  forget(id: string): void {
    this.records.delete(id);
    this.dropClient(id);
  }

  private dropClient(id: string): void {
    const cached = this.clients.get(id);
    if (cached) void cached.client.close().catch(() => {});
    this.clients.delete(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.clients.keys()]) this.forget(id);
    this.records.clear();
  }
}

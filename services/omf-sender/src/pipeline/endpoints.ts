import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Bus, jsonCodec, KvBucket } from "@meridian/bus";
import { OmfClient, type OmfEndpointInput, validateEndpointConfig } from "../platform/index.js";

/**
 * OMF endpoints: stored in the `omf_endpoints` KV bucket (so every replica and every route sees the same set),
 * credentials sealed with AES-256-GCM under OMF_CREDENTIALS_KEY. Shared by the pipelines and the API.
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
}

/** A secret given by reference (endpoints file): resolved on each replica when the client is built. */
export type SecretRef = { file: string } | { env: string };
export interface SealedSecret {
  alg: "A256GCM";
  iv: string;
  tag: string;
  data: string;
}

export interface StoredEndpoint {
  id: string;
  origin: "api" | "file";
  createTime: string;
  settings: EndpointSettings;
  secret?: SealedSecret | { ref: SecretRef };
}

/** The secret field of each kind, in the platform input. */
const SECRET_FIELD: Record<EndpointKindName, "password" | "clientSecret" | undefined> = {
  pi: "password",
  adh: "clientSecret",
  eds: undefined,
};

/** A credential problem the caller must fix in configuration (no key, unreadable secret file). */
export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsError";
  }
}

/** AES-256-GCM with the endpoint id as associated data, so a sealed secret cannot be moved to another endpoint. */
export class CredentialCipher {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error("credentials key must be 32 bytes");
  }

  seal(id: string, plaintext: string): SealedSecret {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.key, iv);
    c.setAAD(Buffer.from(`omf-endpoint:${id}`));
    const data = Buffer.concat([c.update(plaintext, "utf8"), c.final()]);
    return { alg: "A256GCM", iv: iv.toString("base64"), tag: c.getAuthTag().toString("base64"), data: data.toString("base64") };
  }

  open(id: string, sealed: SealedSecret): string {
    const d = createDecipheriv("aes-256-gcm", this.key, Buffer.from(sealed.iv, "base64"));
    d.setAAD(Buffer.from(`omf-endpoint:${id}`));
    d.setAuthTag(Buffer.from(sealed.tag, "base64"));
    return Buffer.concat([d.update(Buffer.from(sealed.data, "base64")), d.final()]).toString("utf8");
  }
}

export function resolveSecretRef(ref: SecretRef): string {
  if ("file" in ref) {
    try {
      return readFileSync(ref.file, "utf8").trim();
    } catch (err) {
      throw new CredentialsError(`secret file ${ref.file} cannot be read (${(err as { code?: string }).code ?? "error"})`);
    }
  }
  const v = process.env[ref.env];
  if (v === undefined || v === "") throw new CredentialsError(`secret environment variable ${ref.env} is not set`);
  return v;
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

interface CachedClient {
  fingerprint: string;
  client: OmfClient;
}

export class EndpointRegistry {
  readonly bucket: KvBucket<StoredEndpoint>;
  private readonly clients = new Map<string, CachedClient>();

  constructor(
    bus: Bus,
    readonly cipher: CredentialCipher | undefined,
  ) {
    this.bucket = new KvBucket(bus, ENDPOINTS_BUCKET, jsonCodec<StoredEndpoint>(), { history: 1 });
  }

  get(id: string): Promise<StoredEndpoint | undefined> {
    return this.bucket.get(id);
  }

  async list(): Promise<StoredEndpoint[]> {
    return (await this.bucket.entries()).map(([, v]) => v);
  }

  /** The plaintext secret of a stored endpoint (only the client and the file comparison call this). */
  revealSecret(e: StoredEndpoint): string | undefined {
    if (!e.secret) return undefined;
    if ("ref" in e.secret) return resolveSecretRef(e.secret.ref);
    if (!this.cipher) throw new CredentialsError(`endpoint ${e.id} has an encrypted secret but OMF_CREDENTIALS_KEY is not set`);
    try {
      return this.cipher.open(e.id, e.secret);
    } catch {
      throw new CredentialsError(`endpoint ${e.id}: the stored secret cannot be decrypted with OMF_CREDENTIALS_KEY (wrong key?)`);
    }
  }

  /** The client of an endpoint, rebuilt when its stored definition changed; undefined when there is no such endpoint. */
  async client(id: string): Promise<OmfClient | undefined> {
    const e = await this.get(id);
    if (!e) {
      this.forget(id);
      return undefined;
    }
    const fingerprint = JSON.stringify(e);
    const cached = this.clients.get(id);
    if (cached && cached.fingerprint === fingerprint) return cached.client;
    const client = new OmfClient(platformInput(id, e.settings, this.revealSecret(e)));
    this.forget(id);
    this.clients.set(id, { fingerprint, client });
    return client;
  }

  forget(id: string): void {
    const cached = this.clients.get(id);
    if (cached) void cached.client.close().catch(() => {});
    this.clients.delete(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.clients.keys()]) this.forget(id);
  }

  /** Seals a plaintext secret; CredentialsError when no key is configured. */
  seal(id: string, secret: string): SealedSecret {
    if (!this.cipher) throw new CredentialsError("OMF_CREDENTIALS_KEY is not set: endpoint credentials cannot be stored");
    return this.cipher.seal(id, secret);
  }
}

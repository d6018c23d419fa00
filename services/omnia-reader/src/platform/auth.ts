import {
  type AccessToken,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  DeviceCodeCredential,
  type DeviceCodeInfo,
  ManagedIdentityCredential,
  type TokenCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";
import type { ResolvedOmniaEnvironment } from "./environments.js";
import { OmniaAuthError, OmniaConfigError } from "./errors.js";

/** The device code prompt, for the service to log and show through its API (the user signs in elsewhere). */
export interface DeviceCodePrompt {
  userCode: string;
  verificationUri: string;
  /** Entra ID's sentence with both. */
  message: string;
}

/** How the client gets its token. Secrets are taken as given and never logged or put in an error. */
export type OmniaAuthConfig =
  | { mode: "clientSecret"; tenantId?: string; clientId: string; clientSecret: string }
  | {
      mode: "clientCertificate";
      tenantId?: string;
      clientId: string;
      /** A PEM file holding the certificate and its private key, or the PEM itself. */
      certificatePath?: string;
      certificatePem?: string;
      sendCertificateChain?: boolean;
    }
  /** A user signs in on another device; `clientId` defaults to the environment's public client. */
  | { mode: "deviceCode"; tenantId?: string; clientId?: string }
  /** Environment, workload identity (Kubernetes), managed identity, Azure CLI, … in @azure/identity's order. */
  | { mode: "default"; managedIdentityClientId?: string; tenantId?: string }
  | { mode: "managedIdentity"; clientId?: string }
  /** Kubernetes workload identity (AZURE_FEDERATED_TOKEN_FILE); fields default to the webhook's env vars. */
  | { mode: "workloadIdentity"; tenantId?: string; clientId?: string; tokenFilePath?: string }
  /** A credential made elsewhere (tests, an emulator, OnBehalfOf). */
  | { mode: "credential"; credential: TokenCredential };

export interface CredentialOptions {
  /** Handed the device code prompt; must not block (it is called inside the token request). */
  onDeviceCode?: (prompt: DeviceCodePrompt) => void;
  /** CA (PEM) to trust for the authority host (an emulator's, a proxy's). */
  authorityCaPem?: string;
  /**
   * Skips MSAL's instance discovery, which asks login.microsoftonline.com whatever the authority: needed for an
   * authority it does not know (an emulator, a private cloud). Default: true when the authority host is overridden
   * to a host that is not a Microsoft login host.
   */
  disableInstanceDiscovery?: boolean;
}

const MICROSOFT_LOGIN_HOSTS = /^https:\/\/login\.(microsoftonline\.(com|us|de)|chinacloudapi\.cn|partner\.microsoftonline\.cn)$/i;

/** A @azure/identity credential for the config, against the environment's authority host and tenant. */
export function createCredential(auth: OmniaAuthConfig, env: ResolvedOmniaEnvironment, options: CredentialOptions = {}): TokenCredential {
  const authorityHost = env.authorityHost;
  const common = {
    authorityHost,
    disableInstanceDiscovery: options.disableInstanceDiscovery ?? !MICROSOFT_LOGIN_HOSTS.test(authorityHost),
    ...(options.authorityCaPem ? { tlsOptions: { ca: options.authorityCaPem } } : {}),
  };
  switch (auth.mode) {
    case "clientSecret":
      if (!auth.clientId) throw new OmniaConfigError(["auth.clientId: required for clientSecret"]);
      if (!auth.clientSecret) throw new OmniaConfigError(["auth.clientSecret: required for clientSecret"]);
      return new ClientSecretCredential(auth.tenantId ?? env.tenantId, auth.clientId, auth.clientSecret, common);
    case "clientCertificate": {
      if (!auth.clientId) throw new OmniaConfigError(["auth.clientId: required for clientCertificate"]);
      const opts = { ...common, sendCertificateChain: auth.sendCertificateChain ?? false };
      if (auth.certificatePath)
        return new ClientCertificateCredential(
          auth.tenantId ?? env.tenantId,
          auth.clientId,
          { certificatePath: auth.certificatePath },
          opts,
        );
      if (auth.certificatePem)
        return new ClientCertificateCredential(auth.tenantId ?? env.tenantId, auth.clientId, { certificate: auth.certificatePem }, opts);
      throw new OmniaConfigError(["auth.certificatePath: one of certificatePath or certificatePem is required"]);
    }
    case "deviceCode":
      return new DeviceCodeCredential({
        tenantId: auth.tenantId ?? env.tenantId,
        clientId: auth.clientId ?? env.publicClientId,
        ...common,
        userPromptCallback: (info: DeviceCodeInfo) => {
          options.onDeviceCode?.({ userCode: info.userCode, verificationUri: info.verificationUri, message: info.message });
        },
      });
    case "default":
      return new DefaultAzureCredential({
        ...common,
        ...(auth.tenantId ? { tenantId: auth.tenantId } : {}),
        ...(auth.managedIdentityClientId ? { managedIdentityClientId: auth.managedIdentityClientId } : {}),
      });
    case "managedIdentity":
      return auth.clientId ? new ManagedIdentityCredential({ clientId: auth.clientId }) : new ManagedIdentityCredential();
    case "workloadIdentity":
      return new WorkloadIdentityCredential({
        ...common,
        ...(auth.tenantId ? { tenantId: auth.tenantId } : {}),
        ...(auth.clientId ? { clientId: auth.clientId } : {}),
        ...(auth.tokenFilePath ? { tokenFilePath: auth.tokenFilePath } : {}),
      });
    case "credential":
      return auth.credential;
    default:
      throw new OmniaConfigError([`auth.mode: unknown mode ${String((auth as { mode?: unknown }).mode)}`]);
  }
}

/** Renew this long before a token expires, so that a request never leaves with one about to lapse. */
const REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * The bearer token for each request. @azure/identity caches and refreshes; this keeps the last token so that each
 * request does not go through the credential, and `invalidate()` drops it when Omnia answers 401.
 */
export class TokenSource {
  private token: AccessToken | undefined;
  private pending: Promise<AccessToken> | undefined;

  constructor(
    private readonly credential: TokenCredential,
    readonly scope: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The current token, or one fetched for all callers waiting at that moment (a device code sign-in is one prompt,
   * not one per request). A caller's signal ends its own wait only, never the shared fetch.
   */
  async get(signal?: AbortSignal): Promise<string> {
    const t = this.token;
    const refreshAt = t ? (t.refreshAfterTimestamp ?? t.expiresOnTimestamp - REFRESH_MARGIN_MS) : 0;
    if (t && this.now() < refreshAt && this.now() < t.expiresOnTimestamp) return t.token;
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    if (!signal) return (await this.pending).token;
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return (await Promise.race([this.pending, aborted])).token;
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  invalidate(): void {
    this.token = undefined;
  }

  private async fetch(): Promise<AccessToken> {
    let token: AccessToken | null;
    try {
      token = await this.credential.getToken(this.scope);
    } catch (err) {
      const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new OmniaAuthError(`no token for ${this.scope}: ${why}`, { cause: err });
    }
    if (!token) throw new OmniaAuthError(`no token for ${this.scope}: the credential returned none`);
    this.token = token;
    return token;
  }
}

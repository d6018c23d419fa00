/**
 * Entra ID emulator: the token side of Microsoft identity platform v2.0 that @azure/identity's credentials use
 * (OpenID metadata, JWKS, client credentials with secret or certificate, device code, refresh), over TLS with its
 * own CA. For in-process tests (`startEntraEmulator`) and as a container (`main.ts`).
 */
import { writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createTestPki, type HttpFaultConfig, type ListeningServer, listen } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import { type Counters, EmulatorContext, type Settings } from "./context.js";
import { type ApplicationRegistration, type EntraEmulatorOptions, resolveOptions } from "./options.js";
import { entraAdmin, SettingsPatch } from "./routes/admin.js";
import { createHandlers } from "./server.js";

export type { Counters, Settings } from "./context.js";
export { stableGuid } from "./directory.js";
export type { ApplicationRegistration, EntraEmulatorOptions, RequestLogEntry, ResourceApp, ResourceGrant, UserAccount } from "./options.js";
export {
  DEFAULTS,
  defaultApplications,
  defaultResources,
  EQUINOR_TENANT_ID,
  OMNIA_PUBLIC_CLIENT_NONPROD,
  OMNIA_PUBLIC_CLIENT_PROD,
  OMNIA_RESOURCE_NONPROD,
  OMNIA_RESOURCE_PROD,
} from "./options.js";

export interface RunningEntraEmulator {
  /** `https://127.0.0.1:<port>`: the `authorityHost` to give @azure/identity. */
  url: string;
  port: number;
  /** The home tenant (`common` / `organizations` resolve to it). */
  tenantId: string;
  /** CA to trust (generated, or the one given with the certificate). */
  caPem?: string;
  /** Where the CA was written, when `caFile` was given. */
  caFile?: string;
  /** Plain-HTTP admin listener (`/_emulator/*`), when `adminPort` was given. */
  adminUrl?: string;
  /** `${url}/${tenant}/v2.0`: the `iss` of tokens for that tenant (default the home tenant). */
  issuer(tenant?: string): string;
  /** `${url}/${tenant}/discovery/v2.0/keys`. */
  jwksUrl(tenant?: string): string;
  /** Approves a pending device code as a user (default the first user), as POST /_emulator/device-codes/{code}/approve. */
  approveDeviceCode(userCode: string, username?: string): void;
  declineDeviceCode(userCode: string): void;
  /** A new signing key; previous keys stay in the JWKS unless `dropPrevious`. Returns the new kid. */
  rotateSigningKey(dropPrevious?: boolean): Promise<string>;
  /** Changes lifetimes and polling from now on, as PUT /_emulator/settings. */
  setSettings(patch: Partial<Settings>): Settings;
  registerApplication(app: ApplicationRegistration): void;
  revokeRefreshTokens(username?: string): number;
  counters(): Counters;
  state(): Record<string, unknown>;
  setFault(config: HttpFaultConfig): HttpFaultConfig;
  clearFaults(): void;
  stop(): Promise<void>;
}

export async function startEntraEmulator(options: EntraEmulatorOptions & { logger?: Logger } = {}): Promise<RunningEntraEmulator> {
  const opts = resolveOptions(options);
  let cert: string;
  let key: string;
  let caPem: string | undefined;
  if (opts.tlsCertPem && opts.tlsKeyPem) {
    cert = opts.tlsCertPem;
    key = opts.tlsKeyPem;
    caPem = opts.tlsCaPem;
  } else {
    const pki = createTestPki({ caName: "Meridian Entra Emulator CA", hosts: opts.tlsHostnames });
    // The chain (server certificate, then CA) so a client that is given only the CA still builds the path.
    cert = `${pki.certPem}${pki.caPem}`;
    key = pki.keyPem;
    caPem = pki.caPem;
  }
  if (caPem && opts.caFile) writeFileSync(opts.caFile, caPem);
  const ctx = await EmulatorContext.create(opts, caPem);
  const { handle, handleAdminOnly } = createHandlers(ctx, entraAdmin(ctx, options.logger));
  const server = createHttpsServer({ key, cert }, handle);
  // Longer than the usual client idle timeouts, so the client, not the emulator, closes idle connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // A `hang` fault must not be cut by node's default request timeout.
  server.requestTimeout = 0;
  const main = await listen(server, { port: opts.port, host: opts.host });
  let admin: ListeningServer | undefined;
  if (opts.adminPort !== undefined) admin = await listen(createHttpServer(handleAdminOnly), { port: opts.adminPort, host: opts.host });
  const url = opts.publicUrl?.replace(/\/+$/, "") ?? main.url("https");
  const set = (userCode: string, status: "approved" | "declined", username?: string) => {
    const dc = ctx.deviceCodeByUserCode(userCode);
    if (dc?.status !== "pending") throw new Error(`no pending device code ${userCode}`);
    if (status === "approved") {
      const user = ctx.directory.user(username);
      if (!user) throw new Error(`no user ${username}`);
      dc.user = user;
    }
    dc.status = status;
  };
  return {
    url,
    port: main.port,
    tenantId: opts.tenantId,
    caPem,
    caFile: opts.caFile,
    adminUrl: admin?.url("http"),
    issuer: (tenant = opts.tenantId) => `${url}/${tenant}/v2.0`,
    jwksUrl: (tenant = opts.tenantId) => `${url}/${tenant}/discovery/v2.0/keys`,
    approveDeviceCode: (userCode, username) => set(userCode, "approved", username),
    declineDeviceCode: (userCode) => set(userCode, "declined"),
    rotateSigningKey: (dropPrevious = false) => ctx.keys.rotate(dropPrevious),
    setSettings: (patch) => Object.assign(ctx.settings, SettingsPatch.parse(patch)),
    registerApplication: (app) => {
      ctx.directory.addApplication(app);
    },
    revokeRefreshTokens: (username) => ctx.revokeRefreshTokens(username),
    counters: () => ctx.counters,
    state: () => ctx.state(),
    setFault: (config) => ctx.faults.set(config),
    clearFaults: () => ctx.faults.clear(),
    stop: async () => {
      await Promise.all([main.close(), admin?.close()]);
    },
  };
}

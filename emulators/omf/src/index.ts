/**
 * OMF emulator: PI Web API, AVEVA Data Hub (OCS) and Edge Data Store OMF endpoints on one port, for in-process tests
 * and as a stand-alone server (`main.ts`). Written from `shared/protocols/omf.md` alone.
 */
import { writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createTestPki, type ListeningServer, listen } from "@meridian/emulator-kit";
import { EmulatorContext, type Operation, type StateFilter } from "./context.js";
import { type FaultConfig, parseFaultConfig } from "./faults.js";
import { type OmfEmulatorOptions, resolveOptions } from "./options.js";
import { omfAdmin } from "./routes/admin.js";
import { createHandlers } from "./server.js";
import { applySettings, parseSettingsPatch, type Settings, type SettingsPatch } from "./settings.js";

export type { Operation, StateFilter } from "./context.js";
export type { Counters } from "./counters.js";
export type { FaultConfig, OmfFaultFields } from "./faults.js";
export { parseFaultConfig } from "./faults.js";
export type { AdhClient, OmfEmulatorOptions, PiUser, Profile, RequestLogEntry } from "./options.js";
export { DEFAULTS } from "./options.js";
export type { CreateMode, EdsRelease, PiRelease, Settings, SettingsPatch } from "./settings.js";
export { DEFAULT_SETTINGS, EDS_RELEASES, PI_RELEASES, parseSettingsPatch } from "./settings.js";

export interface RunningOmfEmulator {
  /** Base URL, e.g. `https://127.0.0.1:8443` (no trailing slash). Endpoints hang below it. */
  url: string;
  port: number;
  /** Plain-HTTP admin listener (`/_emulator/*` only), when `adminPort` was given. */
  adminUrl?: string;
  /** CA certificate (PEM) that signed the server certificate, when TLS is on. */
  caPem?: string;
  /** The same document as `GET /_emulator/state`. */
  state(filter?: StateFilter): ReturnType<EmulatorContext["state"]>;
  /** Merges into the fault switch, as `POST /_emulator/faults`; throws FaultConfigError for a bad setting. */
  setFault(config: FaultConfig): FaultConfig;
  clearFaults(): void;
  /** Merges into the receiver settings, as `POST /_emulator/settings`; throws BadRequestError for a bad value. */
  setSettings(patch: SettingsPatch): Settings;
  /** The receiver settings now (a copy). */
  settings(): Settings;
  /** ADH / EDS operations by Operation-Id, as `GET /_emulator/operations`. */
  operations(): Operation[];
  /** Closes the listeners and every open connection (kept-alive or held by a `hang` fault). */
  stop(): Promise<void>;
}

export async function startOmfEmulator(options: OmfEmulatorOptions = {}): Promise<RunningOmfEmulator> {
  const opts = resolveOptions(options);
  const pki = opts.tls ? createTestPki({ caName: "Meridian OMF Emulator CA", hosts: opts.tlsHostnames }) : undefined;
  if (pki && opts.caFile) writeFileSync(opts.caFile, pki.caPem);
  const ctx = new EmulatorContext(opts, pki?.caPem);
  const { handle, handleAdminOnly } = createHandlers(ctx, omfAdmin(ctx));
  // The chain (server certificate, then CA) so a client that is given only the CA still builds the path.
  const server: Server = pki
    ? createHttpsServer({ key: pki.keyPem, cert: `${pki.certPem}${pki.caPem}` }, handle)
    : createHttpServer(handle);
  // Longer than the usual client idle timeouts, so the client, not the emulator, closes idle connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // A `hang` fault or a slow large upload must not be cut by node's default request timeout.
  server.requestTimeout = 0;
  const main = await listen(server, { port: opts.port, host: opts.host });
  let admin: ListeningServer | undefined;
  if (opts.adminPort !== undefined) admin = await listen(createHttpServer(handleAdminOnly), { port: opts.adminPort, host: opts.host });
  return {
    url: main.url(pki ? "https" : "http"),
    port: main.port,
    adminUrl: admin?.url("http"),
    caPem: pki?.caPem,
    state: (filter) => ctx.state(filter),
    setFault: (config) => ctx.faults.set(parseFaultConfig(config)),
    clearFaults: () => ctx.faults.clear(),
    setSettings: (patch) => structuredClone(applySettings(ctx.settings, parseSettingsPatch(patch))),
    settings: () => structuredClone(ctx.settings),
    operations: () => [...ctx.operations.values()].map((o) => ({ ...o })),
    stop: async () => {
      await Promise.all([main.close(), admin?.close()]);
    },
  };
}

/**
 * Omnia Timeseries API emulator (v1.7, v1.6 accepted): metadata, datapoints in JSON and protobuf, aggregates,
 * paging, limits, faults, JWT verification against an identity provider's keys. For in-process tests and as a
 * stand-alone server (`main.ts`). Written from `shared/protocols/omnia.md` alone.
 */
import { writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createTestPki, listen } from "@meridian/emulator-kit";
import { EmulatorContext } from "./context.js";
import { type FaultConfig, type FaultScript, parseFaultConfig, parseScript } from "./faults.js";
import { type OmniaEmulatorOptions, resolveOptions } from "./options.js";
import { omniaAdmin } from "./routes/admin.js";
import { createHandler } from "./server.js";

export type { AuthOptions, Principal } from "./auth.js";
export type { Counters } from "./context.js";
export type { FaultConfig, FaultScript, ScriptStep } from "./faults.js";
export { parseFaultConfig } from "./faults.js";
export { DEFAULT_RESOURCE_ID, type OmniaEmulatorOptions, type RequestLogEntry } from "./options.js";
export type { RateLimit } from "./rate-limit.js";
export { DEFAULT_FACILITIES } from "./seed.js";
export type { Facility } from "./store.js";

export interface RunningOmniaEmulator {
  /** e.g. `https://127.0.0.1:40123` (no trailing slash). */
  url: string;
  /** The v1.7 base URL a client is configured with: `<url>/plant/timeseries/v1.7`. */
  baseUrl: string;
  port: number;
  /** CA certificate (PEM) of the server certificate, when TLS is on. */
  caPem?: string;
  /** The same document as `GET /_emulator/state`. */
  state(q?: { points?: boolean; id?: string; maxPoints?: number }): ReturnType<EmulatorContext["state"]>;
  setFault(config: FaultConfig): FaultConfig;
  addFaultScript(script: FaultScript): FaultScript[];
  clearFaults(): void;
  /** One live point on every live series now; returns its time in ns. */
  liveTick(): bigint;
  /** Ids of the seeded series, in seed order. */
  seededIds(): string[];
  reset(): void;
  stop(): Promise<void>;
}

export async function startOmniaEmulator(options: OmniaEmulatorOptions = {}): Promise<RunningOmniaEmulator> {
  const opts = resolveOptions(options);
  const pki = opts.tls ? createTestPki({ caName: "Meridian Omnia Emulator CA", hosts: opts.tlsHostnames }) : undefined;
  if (pki && opts.caFile) writeFileSync(opts.caFile, pki.caPem);
  const ctx = new EmulatorContext(opts, pki?.caPem);
  const handle = createHandler(ctx, omniaAdmin(ctx));
  const server: Server = pki
    ? createHttpsServer({ key: pki.keyPem, cert: `${pki.certPem}${pki.caPem}` }, handle)
    : createHttpServer(handle);
  // Longer than the usual client idle timeouts, so the client, not the emulator, closes idle connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0;
  const main = await listen(server, { port: opts.port, host: opts.host });
  const url = main.url(pki ? "https" : "http");
  return {
    url,
    baseUrl: `${url}/plant/timeseries/v1.7`,
    port: main.port,
    caPem: pki?.caPem,
    state: (q = {}) => ctx.state(q),
    setFault: (config) => ctx.faults.set(parseFaultConfig(config)),
    addFaultScript: (script) => ctx.faults.addScript(parseScript(script as unknown as Record<string, unknown>)),
    clearFaults: () => ctx.faults.clear(),
    liveTick: () => ctx.liveTick(),
    seededIds: () =>
      [...ctx.store.series.values()].filter((s) => s.meta.source === "IMS" && s.meta.metadata.seeded === "true").map((s) => s.meta.id),
    reset: () => ctx.reset(),
    stop: async () => {
      ctx.stop();
      await main.close();
    },
  };
}

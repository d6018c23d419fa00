import { writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { type OmfEmulatorOptions, resolveOptions } from "./options.js";
import { Emulator } from "./server.js";
import { generateTls } from "./tls.js";

export type { FaultConfig } from "./faults.js";
export { FaultConfigSchema } from "./faults.js";
export type { AdhClient, OmfEmulatorOptions, PiCreateMode, PiUser, Profile, RequestLogEntry } from "./options.js";
export { DEFAULTS } from "./options.js";
export type { Counters } from "./server.js";
export { Emulator } from "./server.js";
export { generateTls } from "./tls.js";

export interface RunningOmfEmulator {
  /** Base URL, e.g. `https://127.0.0.1:8443` (no trailing slash). Endpoints hang below it. */
  url: string;
  port: number;
  /** Plain-HTTP admin listener (`/_emulator/*` only), when `adminPort` was given. */
  adminUrl?: string;
  /** CA certificate (PEM) that signed the server certificate, when TLS is on. */
  caPem?: string;
  /** The live emulator: store, counters, faults, tokens. */
  state: Emulator;
  stop(): Promise<void>;
}

/** Starts an emulator serving PI Web API, ADH/OCS and EDS OMF endpoints on one port. */
export async function startOmfEmulator(options: OmfEmulatorOptions = {}): Promise<RunningOmfEmulator> {
  const opts = resolveOptions(options);
  const tls = opts.tls ? generateTls(opts.tlsHostnames) : undefined;
  if (tls && opts.caFile) writeFileSync(opts.caFile, tls.caPem);
  const emulator = new Emulator(opts, tls?.caPem);
  const server: Server = tls
    ? createHttpsServer({ key: tls.keyPem, cert: `${tls.certPem}${tls.caPem}` }, emulator.handle)
    : createHttpServer(emulator.handle);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0;
  await listen(server, opts.port, opts.host);
  const port = (server.address() as AddressInfo).port;
  let adminServer: Server | undefined;
  let adminUrl: string | undefined;
  const host = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  if (opts.adminPort !== undefined) {
    adminServer = createHttpServer(emulator.handleAdminOnly);
    await listen(adminServer, opts.adminPort, opts.host);
    adminUrl = `http://${host}:${(adminServer.address() as AddressInfo).port}`;
  }
  return {
    url: `${tls ? "https" : "http"}://${host}:${port}`,
    port,
    adminUrl,
    caPem: tls?.caPem,
    state: emulator,
    stop: async () => {
      emulator.closing = true;
      emulator.releaseHanging();
      await Promise.all([close(server), adminServer ? close(adminServer) : undefined]);
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

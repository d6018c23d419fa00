/**
 * Digi iDigi / Device Cloud / Remote Manager push-monitor emulator, for in-process tests and as a
 * stand-alone server (`main.ts`). Written from `shared/protocols/idigi.md` alone.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { createTestPki, type ListeningServer, listen, type TestPki } from "@meridian/emulator-kit";
import { type Logger, pino } from "pino";
import { startAutoEmit } from "./auto-emit.js";
import { DeviceSim, type DeviceSimOptions } from "./events.js";
import { type ActiveFault, FaultSet, type FaultSpec } from "./faults.js";
import { MonitorStore } from "./monitors.js";
import { type EmitRequest, type EmitResult, PushEngine } from "./push/engine.js";
import type { PushOptions } from "./push/options.js";
import { type IdigiControl, idigiAdmin } from "./routes/admin.js";
import { createHandler } from "./server.js";
import { DEFAULT_USER, type User } from "./users.js";

export type { DeviceSimOptions } from "./events.js";
export type { ActiveFault, FaultSpec } from "./faults.js";
export type { Monitor, MonitorStatus } from "./monitors.js";
export type { EmitRequest, EmitResult } from "./push/engine.js";
export type { ConnectStatuses, PushOptions } from "./push/options.js";
export { DEFAULT_CONNECT_STATUSES } from "./push/options.js";
export type { User } from "./users.js";
export { DEFAULT_USER } from "./users.js";

export interface IdigiEmulatorOptions extends PushOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** HTTP port for REST + admin. 0 (default) = any free port. */
  httpPort?: number;
  /** Plain TCP push port. 0 (default) = any free port; main.ts uses 3200. */
  pushPort?: number;
  /** TLS push port. 0 (default) = any free port; main.ts uses 3201. */
  pushTlsPort?: number;
  /** Serve the TLS push port. Default true. */
  tls?: boolean;
  /** Use this key/cert instead of generating a CA at start. */
  pki?: TestPki;
  /** Extra hostnames/IPs for the generated server cert (localhost, 127.0.0.1 and ::1 are always in). */
  tlsHosts?: string[];
  /** Where to write the CA PEM (default: a fresh temp dir). */
  caPemPath?: string;
  /** Accounts accepted by REST Basic auth and by ConnectRequest. Default [DEFAULT_USER]. */
  users?: User[];
  /** First monitor id handed out. Default 1001. */
  firstMonitorId?: number;
  /** Simulated devices. */
  devices?: DeviceSimOptions;
  /** Auto-emit this many events per second across all subscribed topics; 0 (default) = off. */
  autoEmitRate?: number;
  logger?: Logger;
}

export interface IdigiEmulator {
  httpUrl: string;
  pushPort: number;
  /** 0 when TLS is off. */
  pushTlsPort: number;
  /** The CA that signed the TLS server cert (empty when TLS is off). */
  caPem: string;
  caPemPath: string | undefined;
  emit(req: EmitRequest): EmitResult;
  setFault(spec: FaultSpec): void;
  clearFaults(): void;
  /** The same document as GET /_emulator/state. */
  state(): IdigiState;
  /** Closes every listener, session and kept-alive connection. */
  stop(): Promise<void>;
}

export type IdigiState = ReturnType<PushEngine["state"]> & {
  httpUrl: string;
  pushPort: number;
  pushTlsPort: number;
  tls: boolean;
  autoEmitRate: number;
  faults: ActiveFault[];
};

export async function startIdigiEmulator(options: IdigiEmulatorOptions = {}): Promise<IdigiEmulator> {
  const log = options.logger ?? pino({ level: "silent" });
  const host = options.host ?? "127.0.0.1";
  const users = options.users && options.users.length > 0 ? options.users : [DEFAULT_USER];
  const store = new MonitorStore(options.firstMonitorId ?? 1001);
  const faults = new FaultSet();
  const sim = new DeviceSim(options.devices);
  const engine = new PushEngine(store, users, sim, faults, log, options);

  const tlsOn = options.tls ?? true;
  let pki: TestPki | undefined;
  let caPemPath: string | undefined;
  if (tlsOn) {
    pki = options.pki ?? createTestPki({ caName: "Meridian iDigi Emulator CA", hosts: options.tlsHosts });
    caPemPath = options.caPemPath ?? join(mkdtempSync(join(tmpdir(), "idigi-emu-")), "ca.pem");
    writeFileSync(caPemPath, pki.caPem);
  }

  let httpUrl = "";
  let pushPort = 0;
  let pushTlsPort = 0;
  const state = (): IdigiState => ({
    httpUrl,
    pushPort,
    pushTlsPort,
    tls: tlsOn,
    autoEmitRate: options.autoEmitRate ?? 0,
    ...engine.state(),
    faults: faults.list(),
  });
  const control: IdigiControl = {
    state,
    setFault: (spec) => (spec.type === "stall" ? { fault: spec, applied: engine.stall(spec.ms, spec.monitorId) } : faults.add(spec)),
    listFaults: () => faults.list(),
    clearFaults: () => {
      faults.clear();
      engine.clearStalls();
    },
    reset: () => {
      engine.reset();
      faults.clear();
      store.clear();
      sim.reset();
    },
  };
  const admin = idigiAdmin(control, engine, () => pki?.caPem, log);
  const handler = createHandler({ store, engine, log, v1AckOption: options.v1AckOption ?? "stored" }, users, admin);
  const httpServer = createHttpServer((req, res) => void handler(req, res));
  // Short, so a client that keeps connections does not hold many idle sockets in a long test run.
  httpServer.keepAliveTimeout = 1000;
  const pushServer = createNetServer((socket) => engine.accept(socket, false));
  const tlsServer = pki
    ? createTlsServer({ key: pki.keyPem, cert: pki.certPem }, (socket) => engine.accept(socket, true)).on("tlsClientError", (err) =>
        log.debug({ err: err.message }, "TLS handshake failed"),
      )
    : undefined;

  const http = await listen(httpServer, { port: options.httpPort ?? 0, host });
  const push = await listen(pushServer, { port: options.pushPort ?? 0, host });
  let pushTls: ListeningServer | undefined;
  if (tlsServer) pushTls = await listen(tlsServer, { port: options.pushTlsPort ?? 0, host });
  httpUrl = http.url("http");
  pushPort = push.port;
  pushTlsPort = pushTls?.port ?? 0;
  log.info({ httpUrl, pushPort, pushTlsPort, caPemPath, users: users.map((u) => u.username) }, "iDigi emulator listening");

  const rate = options.autoEmitRate ?? 0;
  const stopAutoEmit = rate > 0 ? startAutoEmit(engine, rate) : () => {};

  return {
    httpUrl,
    pushPort,
    pushTlsPort,
    caPem: pki?.caPem ?? "",
    caPemPath,
    emit: (req) => engine.emit(req),
    setFault: (spec) => {
      control.setFault(spec);
    },
    clearFaults: () => control.clearFaults(),
    state,
    async stop() {
      stopAutoEmit();
      engine.closeAll();
      await Promise.all([http.close(), push.close(), pushTls?.close()]);
    },
  };
}

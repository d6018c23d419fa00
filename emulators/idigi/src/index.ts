/**
 * Digi iDigi / Device Cloud / Remote Manager push-monitor emulator, for in-process tests and as a
 * stand-alone server (`main.ts`). Written from `shared/protocols/idigi.md` alone.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { type Logger, pino } from "pino";
import { generatePki, type TestPki } from "./certs.js";
import { DeviceSim, type DeviceSimOptions } from "./events.js";
import { FaultSet, type FaultSpec } from "./faults.js";
import { createHandler } from "./http.js";
import { MonitorStore } from "./monitors.js";
import { type EmitRequest, type EmitResult, PushEngine, type PushOptions, type User } from "./push.js";

export type { FaultSpec } from "./faults.js";
export * from "./frames.js";
export type { Monitor, MonitorStatus } from "./monitors.js";
export type { ConnectStatuses, EmitRequest, EmitResult, PushOptions, User } from "./push.js";
export { DEFAULT_CONNECT_STATUSES } from "./push.js";

export const DEFAULT_USER: User = { username: "emulator", password: "emulator", cstId: 1234 };

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
  /** Hostnames/IPs for the generated server cert. Default localhost, 127.0.0.1, ::1. */
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
  state(): ReturnType<PushEngine["state"]> & Record<string, unknown>;
  stop(): Promise<void>;
}

function listen(server: NetServer | HttpServer | TlsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : port);
    });
  });
}

function close(server: NetServer | HttpServer | TlsServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

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
    pki = options.pki ?? generatePki(options.tlsHosts);
    caPemPath = options.caPemPath ?? join(mkdtempSync(join(tmpdir(), "idigi-emu-")), "ca.pem");
    writeFileSync(caPemPath, pki.caPem);
  }

  const pushServer = createNetServer((socket) => engine.accept(socket, false));
  const tlsServer = pki
    ? createTlsServer({ key: pki.keyPem, cert: pki.certPem }, (socket) => engine.accept(socket, true)).on("tlsClientError", (err) =>
        log.debug({ err: err.message }, "TLS handshake failed"),
      )
    : undefined;

  let httpUrl = "";
  let pushPort = 0;
  let pushTlsPort = 0;
  const info = () => ({ httpUrl, pushPort, pushTlsPort, tls: tlsOn, autoEmitRate: options.autoEmitRate ?? 0 });
  const handler = createHandler({ store, engine, faults, users, log, caPem: () => pki?.caPem, info, onReset: () => sim.reset() });
  const httpServer = createHttpServer((req, res) => void handler(req, res));
  httpServer.keepAliveTimeout = 1000;

  const httpPort = await listen(httpServer, options.httpPort ?? 0, host);
  pushPort = await listen(pushServer, options.pushPort ?? 0, host);
  if (tlsServer) pushTlsPort = await listen(tlsServer, options.pushTlsPort ?? 0, host);
  httpUrl = `http://${host.includes(":") ? `[${host}]` : host}:${httpPort}`;
  log.info({ httpUrl, pushPort, pushTlsPort, caPemPath, users: users.map((u) => u.username) }, "iDigi emulator listening");

  // Auto-emit: one 100 ms tick for everything, carrying fractional events over.
  let autoTimer: NodeJS.Timeout | undefined;
  const rate = options.autoEmitRate ?? 0;
  if (rate > 0) {
    let carry = 0;
    let rr = 0;
    let last = Date.now();
    autoTimer = setInterval(() => {
      const now = Date.now();
      carry += (rate * (now - last)) / 1000;
      last = now;
      const n = Math.floor(carry);
      carry -= n;
      if (n === 0) return;
      // Spread the tick's events over the subscribed resources, one emit call per resource.
      const resources = engine.subscribedResources();
      const per = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const r = resources[rr++ % resources.length]!;
        per.set(r, (per.get(r) ?? 0) + 1);
      }
      for (const [topic, count] of per) engine.emit({ count, topic });
    }, 100);
    autoTimer.unref();
  }

  return {
    httpUrl,
    pushPort,
    pushTlsPort,
    caPem: pki?.caPem ?? "",
    caPemPath,
    emit: (req) => engine.emit(req),
    setFault: (spec) => {
      if (spec.type === "stall") engine.stall(spec.ms, spec.monitorId);
      else faults.add(spec);
    },
    clearFaults: () => {
      faults.clear();
      engine.clearStalls();
    },
    state: () => ({ ...info(), ...engine.state(), faults: faults.list() }),
    async stop() {
      if (autoTimer) clearInterval(autoTimer);
      engine.closeAll();
      httpServer.closeAllConnections();
      await Promise.all([close(httpServer), close(pushServer), ...(tlsServer ? [close(tlsServer)] : [])]);
    },
  };
}

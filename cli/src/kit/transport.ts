import { readFileSync } from "node:fs";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { CliError, EXIT } from "./exit.js";
import type { Settings } from "./settings.js";

export interface GatewayTransport {
  transport: Transport;
  /** Closes the HTTP/2 session so that the process can end. */
  close(): void;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CliError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
  }
}

/**
 * The transport to the gateway: Connect (default), gRPC or gRPC-Web; HTTP/2 for https:// (ALPN) and for gRPC,
 * HTTP/1.1 for plain http:// Connect and gRPC-Web (what every proxy in between speaks). The credential travels as
 * `authorization: Bearer …` on every call. `--timeout` bounds unary calls; streams (tail, watch) run until they end,
 * are stopped, or the verb's own limit.
 */
export function gatewayTransport(settings: Settings): GatewayTransport {
  const { gateway, credential } = settings;
  const interceptors: Interceptor[] = [];
  if (credential.kind !== "none") {
    const header = `Bearer ${credential.value}`;
    interceptors.push((next) => (req) => {
      req.header.set("authorization", header);
      return next(req);
    });
  }
  const tls =
    gateway.protocol === "https:"
      ? {
          ...(settings.caFile ? { ca: readPem(settings.caFile, "--ca-file") } : {}),
          ...(settings.certFile ? { cert: readPem(settings.certFile, "--cert-file") } : {}),
          ...(settings.keyFile ? { key: readPem(settings.keyFile, "--key-file") } : {}),
          ...(settings.insecure ? { rejectUnauthorized: false } : {}),
        }
      : {};
  const baseUrl = gateway.href.replace(/\/$/, "");
  const http2 = settings.protocol === "grpc" || gateway.protocol === "https:";
  let session: Http2SessionManager | undefined;
  if (http2) session = new Http2SessionManager(baseUrl, { idleConnectionTimeoutMs: 5_000 }, tls);
  const common = {
    baseUrl,
    interceptors,
    defaultTimeoutMs: settings.timeoutMs,
    ...(session ? { httpVersion: "2" as const, sessionManager: session } : { httpVersion: "1.1" as const, nodeOptions: tls }),
  };
  const inner =
    settings.protocol === "grpc"
      ? createGrpcTransport({ baseUrl, interceptors, defaultTimeoutMs: settings.timeoutMs, sessionManager: session })
      : settings.protocol === "grpc-web"
        ? createGrpcWebTransport(common)
        : createConnectTransport(common);
  const transport: Transport = {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      inner.unary(method, signal, timeoutMs, header, input, contextValues),
    // 0 = no deadline (a stream is as long as the user wants it).
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      inner.stream(method, signal, timeoutMs ?? 0, header, input, contextValues),
  };
  return { transport, close: () => session?.abort() };
}

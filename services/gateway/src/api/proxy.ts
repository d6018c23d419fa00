import { isIP } from "node:net";
import * as tls from "node:tls";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  type ConnectRouter,
  createClient,
  type HandlerContext,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type ClientTls, callerOf, REQUEST_ID_HEADER, requestId } from "@meridian/service-kit";

/** Per-call deadline towards a backend when the caller set none. */
const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Serves `service` on the gateway by forwarding every call to the service that owns it, over gRPC
 * (HTTP/2). Errors keep their code, so a not_found from omf-sender is a not_found at the gateway;
 * a backend that cannot be reached is unavailable. The request id and the caller's credential travel along, so one
 * id follows a call through both logs and the backend authorises the caller itself.
 */
export function registerProxy(router: ConnectRouter, service: DescService, transport: Transport): void {
  const client = createClient(service, transport) as unknown as Record<string, (req: unknown, opts: object) => unknown>;
  const impl: Record<string, unknown> = {};
  for (const method of service.methods) impl[method.localName] = forward(method, client);
  router.service(service, impl as never);
}

function callOptions(ctx: HandlerContext) {
  const headers = new Headers();
  const id = requestId(ctx);
  if (id) headers.set(REQUEST_ID_HEADER, id);
  // The caller's own credential goes along and the backend checks it again: the gateway is no back door, and the
  // backend's audit line names the real caller. A client certificate ends at the gateway's TLS and cannot be
  // forwarded, so such a caller needs a bearer credential for what the gateway proxies.
  const authorization = ctx.requestHeader.get("authorization");
  if (authorization) headers.set("authorization", authorization);
  else if (callerOf(ctx).via === "certificate") {
    throw new ConnectError(
      "the gateway forwards this call to a backend, which checks the caller again: send a bearer credential (API key or token); a client certificate identifies you to the gateway only",
      Code.PermissionDenied,
    );
  }
  const remaining = ctx.timeoutMs();
  return { headers, signal: ctx.signal, timeoutMs: remaining ?? DEFAULT_TIMEOUT_MS };
}

function forward(method: DescMethod, client: Record<string, (req: unknown, opts: object) => unknown>) {
  const call = client[method.localName]!;
  switch (method.methodKind) {
    case "unary":
      return async (req: unknown, ctx: HandlerContext) => {
        try {
          return await call(req, callOptions(ctx));
        } catch (err) {
          throw relayed(err);
        }
      };
    case "server_streaming":
      return async function* (req: unknown, ctx: HandlerContext) {
        // Streams run until the caller leaves; no deadline unless the caller set one.
        const opts = { ...callOptions(ctx), timeoutMs: ctx.timeoutMs() };
        try {
          yield* call(req, opts) as AsyncIterable<unknown>;
        } catch (err) {
          throw relayed(err);
        }
      };
    default:
      throw new Error(`${method.parent.typeName}.${method.name}: ${method.methodKind} methods are not proxied`);
  }
}

/**
 * The backend's error with its code, message and details, but without its response metadata:
 * those are the backend's gRPC headers (content-type and all) and would corrupt our own response.
 */
function relayed(err: unknown): ConnectError {
  const e = ConnectError.from(err);
  const tls = tlsFailureOf(e);
  if (tls) return new ConnectError(`backend unreachable: TLS handshake failed (${tls})`, Code.Unavailable);
  // Incoming details are already encoded; they pass through unchanged.
  return new ConnectError(e.rawMessage, e.code, undefined, e.details as ConstructorParameters<typeof ConnectError>[3], e.cause);
}

/** OpenSSL's and Node's names for a failed handshake or certificate check (ERR_SSL_…, SELF_SIGNED_CERT_IN_CHAIN, …). */
const TLS_ERROR_CODE = /^ERR_(SSL|TLS)_|CERT|^UNABLE_TO_|^INVALID_(CA|PURPOSE)$|^PATH_LENGTH_EXCEEDED$|^HOSTNAME_MISMATCH$/;

/**
 * connect-node reports a handshake the backend refused, or a backend certificate that did not verify, as `internal`
 * with the OpenSSL text; for the caller it is a backend that cannot be reached (`unavailable`), and the error's code
 * names why without the text.
 */
function tlsFailureOf(e: ConnectError): string | undefined {
  if (e.code !== Code.Internal && e.code !== Code.Unknown) return undefined;
  const code = (e.cause as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && TLS_ERROR_CODE.test(code) ? code : undefined;
}

/**
 * gRPC to a Meridian service's one port: HTTP/2 with prior knowledge to an http:// URL, HTTP/2 over TLS (ALPN h2) to
 * an https:// one. With `clientTls` each new connection takes its latest secure context (the CA to verify the
 * backend with, the certificate the gateway presents), so rotated files apply without a restart; the backend's
 * name is checked against its certificate as always.
 */
export function backendTransport(baseUrl: string, clientTls?: ClientTls): Transport {
  if (!clientTls || new URL(baseUrl).protocol !== "https:") return createGrpcTransport({ baseUrl });
  return createGrpcTransport({
    baseUrl,
    nodeOptions: {
      createConnection: (authority: URL) => {
        const host = authority.hostname.replace(/^\[(.*)\]$/, "$1");
        return tls.connect({
          host,
          port: Number(authority.port) || 443,
          // SNI carries names only; an IP address is still checked against the certificate's IP entries.
          ...(isIP(host) ? {} : { servername: host }),
          ALPNProtocols: ["h2"],
          secureContext: clientTls.secureContext(),
        });
      },
    },
  });
}

export type { Client };

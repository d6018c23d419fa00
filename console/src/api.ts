import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/**
 * One Connect transport to the gateway that served the page (same origin: the API and the console share a port), with
 * the signed-in key on every call. JSON rather than binary, so a call reads the same in the browser's network panel.
 */
export function gatewayTransport(credential: string, baseUrl = window.location.origin): Transport {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
  return createConnectTransport({ baseUrl, interceptors: [bearer], useBinaryFormat: false });
}

export type ClientOf = <S extends DescService>(service: S) => Client<S>;

/** Clients made once per service and transport. */
export function clientFactory(transport: Transport): ClientOf {
  const made = new Map<string, unknown>();
  return <S extends DescService>(service: S) => {
    let c = made.get(service.typeName) as Client<S> | undefined;
    if (!c) {
      c = createClient(service, transport);
      made.set(service.typeName, c);
    }
    return c;
  };
}

/** A failed call, said for a person: what the code means here and the server's own message. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unauthenticated:
      return `Not signed in: the gateway did not accept this API key (${e.rawMessage}). Sign out and paste a valid key.`;
    case Code.PermissionDenied:
      return `Not allowed: this key lacks the role for that (${e.rawMessage}).`;
    case Code.Unavailable:
      return `The gateway cannot be reached or is not ready (${e.rawMessage}). Retrying.`;
    default:
      return e.rawMessage || Code[e.code];
  }
}

export function isAuthError(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Unauthenticated;
}

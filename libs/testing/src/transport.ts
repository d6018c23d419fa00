import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

export interface TestTransportOptions {
  /** Sent as `authorization: Bearer <credential>`; null sends none (to test refusals). */
  credential?: string | null;
}

/**
 * gRPC (HTTP/2) transport to a Meridian service started by a test. Every test that calls an RPC builds its transport
 * here, so the credential a test presents is decided in one place.
 */
export function testTransport(baseUrl: string, options: TestTransportOptions = {}): Transport {
  const credential = options.credential;
  const interceptors: Interceptor[] = [];
  if (credential) {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${credential}`);
      return next(req);
    });
  }
  return createGrpcTransport({ baseUrl, interceptors });
}

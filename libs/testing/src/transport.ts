import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TEST_KEYS } from "./identities.js";

export interface TestTransportOptions {
  /** Sent as `authorization: Bearer <credential>`; default the test administrator key, null sends none (to test refusals). */
  credential?: string | null;
}

/**
 * gRPC (HTTP/2) transport to a Meridian service started by a test. Every test that calls an RPC builds its transport
 * here, so the credential a test presents is decided in one place: the test administrator (every role) by default.
 */
export function testTransport(baseUrl: string, options: TestTransportOptions = {}): Transport {
  const credential = options.credential === undefined ? TEST_KEYS.admin : options.credential;
  return createGrpcTransport({ baseUrl, interceptors: credential ? [testCredential(credential)] : [] });
}

/** Presents a credential on every call (any transport: `interceptors: [testCredential()]`); default the test administrator. */
export function testCredential(credential: string = TEST_KEYS.admin): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
}

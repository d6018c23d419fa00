import type { Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";

/**
 * One entry of a service's error table: the ConnectError a typed domain error becomes at the API edge, or
 * undefined when the entry does not know the error. A service lists its tables once (`errors` in startService),
 * so no handler wraps its body to get the codes right, and a handler cannot forget to.
 */
export type ErrorTable = (err: unknown) => ConnectError | undefined;

/** Tries each table in order; a ConnectError passes as is; anything unknown stays as thrown (logged as a bug). */
export function mapError(tables: readonly ErrorTable[], err: unknown): unknown {
  if (err instanceof ConnectError) return err;
  for (const table of tables) {
    const mapped = table(err);
    if (mapped) {
      // Keep the domain error for the log line and for tests; the client sees only the ConnectError.
      if (mapped.cause === undefined) (mapped as { cause: unknown }).cause = err;
      return mapped;
    }
  }
  return err;
}

/** The interceptor that applies the tables to what a handler throws, for unary calls and inside server streams. */
export function errorMappingInterceptor(tables: readonly ErrorTable[]): Interceptor {
  return (next) => async (req) => {
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      throw mapError(tables, err);
    }
    if (!res.stream) return res;
    const source = res.message;
    async function* mapped() {
      try {
        yield* source;
      } catch (err) {
        throw mapError(tables, err);
      }
    }
    return { ...res, message: mapped() };
  };
}

import { Code, ConnectError } from "@connectrpc/connect";
import { BusUnavailableError, MessageTooLargeError } from "@meridian/bus";

/** Maps what the bus throws to the API's codes; anything unknown stays internal (and is logged). */
export function toConnectError(err: unknown): unknown {
  if (err instanceof ConnectError) return err;
  if (err instanceof BusUnavailableError) return new ConnectError(`event bus unavailable: ${err.message}`, Code.Unavailable);
  if (err instanceof MessageTooLargeError)
    return new ConnectError(`${err.message}: publish fewer events per device per call`, Code.InvalidArgument);
  return err;
}

/** Wraps a handler body so bus errors come out with the right code. */
export async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toConnectError(err);
  }
}

import { Code, ConnectError } from "@connectrpc/connect";
import { BusUnavailableError } from "@meridian/bus";

/** Maps what the bus throws to the API's codes; anything unknown stays internal (and is logged). */
export async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    if (err instanceof BusUnavailableError) throw new ConnectError(`event bus unavailable: ${err.message}`, Code.Unavailable);
    throw err;
  }
}

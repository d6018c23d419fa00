import { Code, ConnectError } from "@connectrpc/connect";
import { KeyExistsError, MessageTooLargeError } from "@meridian/bus";
import type { ErrorTable } from "@meridian/service-kit";

/** The gateway's own readings of bus errors; the rest (bus unavailable, …) are the starter's bus table. */
export const gatewayErrors: ErrorTable = (err) => {
  // The routes bucket is the only one the gateway creates keys in.
  if (err instanceof KeyExistsError) return new ConnectError(`route "${err.key}" already exists`, Code.AlreadyExists);
  if (err instanceof MessageTooLargeError)
    return new ConnectError(`${err.message}: publish fewer events per device per call`, Code.InvalidArgument);
  return undefined;
};

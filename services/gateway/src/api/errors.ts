import { Code, ConnectError } from "@connectrpc/connect";
import { KeyExistsError, MessageTooLargeError } from "@meridian/bus";
import type { ErrorTable } from "@meridian/service-kit";

/** GetDeadLetter of a sequence the DEADLETTER stream no longer holds (purged, or past its age). */
export class DeadLetterNotFoundError extends Error {
  constructor(readonly sequence: number) {
    super(`dead letter ${sequence} not found: purged, or older than the DEADLETTER stream keeps them`);
    this.name = "DeadLetterNotFoundError";
  }
}

/** The gateway's own readings of bus errors; the rest (bus unavailable, …) are the starter's bus table. */
export const gatewayErrors: ErrorTable = (err) => {
  // The routes bucket is the only one whose KeyExistsError reaches a caller (a replay record's is answered in place).
  if (err instanceof KeyExistsError) return new ConnectError(`route "${err.key}" already exists`, Code.AlreadyExists);
  if (err instanceof MessageTooLargeError)
    return new ConnectError(`${err.message}: publish fewer events per device per call`, Code.InvalidArgument);
  if (err instanceof DeadLetterNotFoundError) return new ConnectError(err.message, Code.NotFound);
  return undefined;
};

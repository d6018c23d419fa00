import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorTable } from "@meridian/service-kit";
import { DeviceSecretError } from "../pipeline/store.js";
import { TooManyTwinsError, TwinExistsError, TwinNotFoundError, TwinSpecError } from "../pipeline/twins.js";
import {
  OciConflictError,
  OciError,
  OciInvalidArgumentError,
  OciNotAuthenticatedError,
  OciNotFoundError,
  OciThrottledError,
  OciTimeoutError,
  OciUnavailableError,
} from "../platform/errors.js";

/** oci-twin-manager's errors and OCI's at the API edge (the proto's comment is the table); bus errors are the starter's. */
export const ociTwinManagerErrors: ErrorTable = (err) => {
  if (err instanceof TwinSpecError) return new ConnectError(`invalid request: ${prefixed(err)}`, Code.InvalidArgument);
  if (err instanceof TwinNotFoundError) return new ConnectError(err.message, Code.NotFound);
  if (err instanceof TwinExistsError) return new ConnectError(err.message, Code.AlreadyExists);
  if (err instanceof TooManyTwinsError) return new ConnectError(err.message, Code.ResourceExhausted);
  if (err instanceof DeviceSecretError) return new ConnectError(err.message, Code.FailedPrecondition);
  if (!(err instanceof OciError)) return undefined;
  const ref = err.requestId ? ` (opc-request-id ${err.requestId})` : "";
  // Refused before sending (the field is ours), or OCI's 400 (the field is what OCI named).
  if (err instanceof OciInvalidArgumentError) return new ConnectError(`invalid request: ${err.message}${ref}`, Code.InvalidArgument);
  if (err instanceof OciNotFoundError) return new ConnectError(`not found in OCI: ${err.message}${ref}`, Code.NotFound);
  if (err instanceof OciNotAuthenticatedError)
    return new ConnectError(`OCI refused the credentials: ${err.message}${ref}`, Code.Unauthenticated);
  if (err instanceof OciConflictError)
    return new ConnectError(`OCI: ${err.message}${ref}`, err.code === "NoEtagMatch" ? Code.Aborted : Code.FailedPrecondition);
  if (err instanceof OciThrottledError)
    return new ConnectError(
      `throttled by OCI: ${err.message}${err.retryAfterMs !== undefined ? `; retry after ${Math.ceil(err.retryAfterMs / 1000)} s` : ""}${ref}`,
      Code.ResourceExhausted,
    );
  if (err instanceof OciUnavailableError || err instanceof OciTimeoutError)
    return new ConnectError(`OCI unavailable: ${err.message}${ref}`, Code.Unavailable);
  return new ConnectError(`OCI: ${err.message}${ref}`, Code.FailedPrecondition);
};

/** The description's problems with the request's field path (`twin.model.spec.contents[2].name`). */
function prefixed(err: TwinSpecError): string {
  return err.problems.map((p) => `twin.${p.path}: ${p.reason}`).join("; ");
}

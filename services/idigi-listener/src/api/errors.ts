import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorTable } from "@meridian/service-kit";
import { SessionRefusedError, ShuttingDownError } from "../pipeline/errors.js";
import {
  IdigiAuthError,
  IdigiBadRequestError,
  IdigiConfigError,
  IdigiConnectRefusedError,
  IdigiError,
  IdigiNetworkError,
  IdigiNotFoundError,
  IdigiServerError,
  IdigiUnexpectedResponseError,
} from "../platform/index.js";

const CREDENTIALS = "check IDIGI_USERNAME / IDIGI_PASSWORD of idigi-listener";

function fromRefusal(monitorId: string | undefined, err: IdigiConnectRefusedError): ConnectError {
  const what = monitorId ? `monitor ${monitorId}` : "the monitor";
  switch (err.refusal) {
    // Which 4xx means what is unverified: the answer names the status and every cause the class covers.
    case "refused":
      return new ConnectError(
        `the iDigi push server refused the session of ${what} (status ${err.status}): ${CREDENTIALS}, that the monitor belongs to that account, exists, is a tcp monitor and is not DISABLED`,
        Code.PermissionDenied,
      );
    case "server_error":
      return new ConnectError(`the iDigi push server failed (status ${err.status}); try again later`, Code.Unavailable);
    default:
      return new ConnectError(`the iDigi push server refused ${what} with status ${err.status}`, Code.FailedPrecondition);
  }
}

/** The platform client's and the session manager's errors at the API edge; bus errors are the starter's table. */
export const idigiListenerErrors: ErrorTable = (err) => {
  if (err instanceof ShuttingDownError) return new ConnectError(err.message, Code.Unavailable);
  if (err instanceof SessionRefusedError) {
    if (err.refusal instanceof IdigiConnectRefusedError) return fromRefusal(err.monitorId, err.refusal);
    return new ConnectError(err.message, Code.Unavailable);
  }
  if (err instanceof IdigiConnectRefusedError) return fromRefusal(undefined, err);
  if (err instanceof IdigiAuthError) {
    return err.status === 403
      ? new ConnectError(`iDigi refused access (HTTP 403): the configured account may not do this; ${CREDENTIALS}`, Code.PermissionDenied)
      : new ConnectError(`iDigi rejected the configured credentials (HTTP ${err.status}): ${CREDENTIALS}`, Code.Unauthenticated);
  }
  if (err instanceof IdigiNotFoundError) return new ConnectError(err.message, Code.NotFound);
  if (err instanceof IdigiConfigError) return new ConnectError(`invalid request: ${err.message}`, Code.InvalidArgument);
  if (err instanceof IdigiBadRequestError) return new ConnectError(`iDigi rejected the request: ${err.message}`, Code.InvalidArgument);
  if (err instanceof IdigiServerError || err instanceof IdigiNetworkError)
    return new ConnectError(`iDigi platform unavailable: ${err.message}`, Code.Unavailable);
  if (err instanceof IdigiUnexpectedResponseError) return new ConnectError(`unexpected answer from iDigi: ${err.message}`, Code.Internal);
  if (err instanceof IdigiError) return new ConnectError(err.message, Code.FailedPrecondition);
  return undefined;
};

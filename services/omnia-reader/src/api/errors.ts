import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorTable } from "@meridian/service-kit";
import { ReaderError, ReaderNotFoundError, TooManyReadersError } from "../pipeline/errors.js";
import {
  OmniaAuthError,
  OmniaBadRequestError,
  OmniaCollectLimitError,
  OmniaConfigError,
  OmniaConflictError,
  OmniaError,
  OmniaForbiddenError,
  OmniaNotFoundError,
  OmniaProtocolError,
  OmniaResponseTooLargeError,
  OmniaServerError,
  OmniaThrottledError,
  OmniaUnauthorizedError,
  OmniaValidationError,
} from "../platform/index.js";

const CREDENTIALS = "check OMNIA_AUTH_MODE and the AZURE_* settings of omnia-reader";

/** What Omnia said, with its trace id so it can be quoted to Omnia support. */
function said(err: OmniaError): string {
  return `Omnia: ${err.platformMessage ?? err.message}${err.traceId ? ` (traceId ${err.traceId})` : ""}`;
}

/** omnia-reader's errors and Omnia's at the API edge; bus errors are the starter's table. */
export const omniaReaderErrors: ErrorTable = (err) => {
  if (err instanceof ReaderNotFoundError) return new ConnectError(err.message, Code.NotFound);
  if (err instanceof TooManyReadersError) return new ConnectError(err.message, Code.ResourceExhausted);
  if (err instanceof ReaderError) return new ConnectError(err.message, Code.FailedPrecondition);
  if (!(err instanceof OmniaError)) return undefined;
  // Refused by the client before anything was sent: the field is the client's name of the request's field.
  if (err instanceof OmniaValidationError) return new ConnectError(`invalid request: ${err.message}`, Code.InvalidArgument);
  // Omnia's 400 carries its reason, e.g. "Facility not found.".
  if (err instanceof OmniaBadRequestError) return new ConnectError(said(err), Code.InvalidArgument);
  if (err instanceof OmniaNotFoundError) return new ConnectError(said(err), Code.NotFound);
  if (err instanceof OmniaConflictError) return new ConnectError(said(err), Code.AlreadyExists);
  if (err instanceof OmniaUnauthorizedError || err instanceof OmniaAuthError)
    return new ConnectError(`${said(err)}; ${CREDENTIALS}`, Code.Unauthenticated);
  if (err instanceof OmniaForbiddenError)
    return new ConnectError(
      `${said(err)}: omnia-reader's identity has no access to this series, source or facility`,
      Code.PermissionDenied,
    );
  if (err instanceof OmniaThrottledError) return new ConnectError(`${said(err)}; try again later`, Code.ResourceExhausted);
  if (err instanceof OmniaCollectLimitError || err instanceof OmniaResponseTooLargeError)
    return new ConnectError(`${err.message}; narrow the request`, Code.ResourceExhausted);
  if (err instanceof OmniaServerError) return new ConnectError(`Omnia unavailable: ${said(err)}`, Code.Unavailable);
  if (err instanceof OmniaProtocolError) return new ConnectError(`unexpected answer from Omnia: ${err.message}`, Code.Internal);
  if (err instanceof OmniaConfigError) return new ConnectError(err.message, Code.FailedPrecondition);
  return new ConnectError(said(err), Code.FailedPrecondition);
};

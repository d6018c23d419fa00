/** The control plane's error answers: `{code, message}` with the HTTP status OCI uses for that code. */
export class OciHttpError extends Error {
  override readonly name = "OciHttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const invalidParameter = (message: string) => new OciHttpError(400, "InvalidParameter", message);
export const missingParameter = (name: string) => new OciHttpError(400, "MissingParameter", `Missing required parameter ${name}.`);
export const notFound = (what = "resource") =>
  new OciHttpError(404, "NotAuthorizedOrNotFound", `Authorization failed or requested ${what} not found.`);
export const conflict = (message: string) => new OciHttpError(409, "Conflict", message);

/** The code OCI gives a status when a fault injects it without naming one. */
export function defaultCode(status: number): string {
  switch (status) {
    case 400:
      return "InvalidParameter";
    case 401:
      return "NotAuthenticated";
    case 404:
      return "NotAuthorizedOrNotFound";
    case 409:
      return "IncorrectState";
    case 412:
      return "NoEtagMatch";
    case 429:
      return "TooManyRequests";
    case 503:
      return "ServiceUnavailable";
    default:
      return status >= 500 ? "InternalServerError" : "InvalidParameter";
  }
}

import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Exit codes scripts can trust: the same failure always gives the same code, whatever the verb. Documented in the
 * README and in `meridian --help`.
 */
export const EXIT = {
  ok: 0,
  /** The work was done and its answer is "no": `omf verify` found a difference, a replay refused some letters. */
  failed: 1,
  /** A bad flag, argument or file: nothing was sent. */
  usage: 2,
  /** The gateway or a platform behind it cannot be reached (unavailable, deadline exceeded). */
  unavailable: 3,
  /** No credential, a wrong one, or a missing role (unauthenticated, permission_denied). */
  auth: 4,
  /** The thing named does not exist (not_found). */
  notFound: 5,
  /** It exists already or is in the wrong state (already_exists, failed_precondition, aborted). */
  conflict: 6,
  /** The gateway refused the request's content (invalid_argument, out_of_range, resource_exhausted). */
  invalid: 7,
  /** Anything else the gateway answered (internal, unknown, unimplemented, data_loss). */
  error: 8,
  /** Stopped by Ctrl-C before the work was done. */
  interrupted: 130,
} as const;

/** A failure the CLI itself finds (a bad file, a failed verification), with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The exit code of any error a verb throws. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  const c = ConnectError.from(err).code;
  switch (c) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return EXIT.unavailable;
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return EXIT.auth;
    case Code.NotFound:
      return EXIT.notFound;
    case Code.AlreadyExists:
    case Code.FailedPrecondition:
    case Code.Aborted:
      return EXIT.conflict;
    case Code.InvalidArgument:
    case Code.OutOfRange:
    case Code.ResourceExhausted:
      return EXIT.invalid;
    case Code.Canceled:
      return EXIT.interrupted;
    default:
      return EXIT.error;
  }
}

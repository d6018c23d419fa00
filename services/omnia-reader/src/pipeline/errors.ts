/** Root of omnia-reader's own errors (not Omnia's answers, which are the platform client's). */
export class ReaderError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReaderError";
  }
}

export class ReaderNotFoundError extends ReaderError {
  constructor(readonly readerId: string) {
    super(`reader ${readerId} not found`);
    this.name = "ReaderNotFoundError";
  }
}

/** OMNIA_MAX_READERS reached. */
export class TooManyReadersError extends ReaderError {
  constructor(readonly max: number) {
    super(`omnia-reader holds OMNIA_MAX_READERS=${max} readers; delete one first`);
    this.name = "TooManyReadersError";
  }
}

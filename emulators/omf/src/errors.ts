/** One OMF-level failure: an HTTP status for the message plus the detail each receiver renders its own way. */
export class OmfFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail: {
      /** PI Web API event code (2001…, 3003, -1007, …) where the notes give one. */
      eventCode?: number;
      reason?: string;
      suggestions?: string[];
      parameters?: Record<string, string>;
      /** SDS ErrorResponseBody `Error` (short) when it differs from the message. */
      error?: string;
      resolution?: string;
      severity?: "Error" | "Critical";
    } = {},
  ) {
    super(message);
    this.name = "OmfFailure";
  }
}

export const badRequest = (message: string, detail: OmfFailure["detail"] = {}) => new OmfFailure(400, message, detail);

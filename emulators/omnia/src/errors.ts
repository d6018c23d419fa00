/**
 * The API's own error: a status and the message of its MessageModel body `{statusCode, message, traceId}`.
 * Routes throw it; the server answers it (the traceId is the request's).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const badRequest = (message: string) => new ApiError(400, message);
export const notFound = (message: string) => new ApiError(404, message);

export interface MessageModel {
  statusCode: number;
  message: string;
  traceId: string;
}

export function messageModel(statusCode: number, message: string, traceId: string): MessageModel {
  return { statusCode, message, traceId };
}

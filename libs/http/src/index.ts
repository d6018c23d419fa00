export { type ResponseLike, readCapped, readCappedBytes } from "./body.js";
export { networkErrorCode } from "./errors.js";
export { ACCEPT_ENCODING, readCappedStream, readCappedStreamText, type StreamedResponse } from "./stream-body.js";

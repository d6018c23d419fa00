export { type ResponseLike, readCapped, readCappedBytes } from "./body.js";
export { networkErrorCode } from "./errors.js";

export { type ResponseLike, readCapped, readCappedBytes } from "./body.js";

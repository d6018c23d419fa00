export { type ResponseLike, readCapped } from "./body.js";

export { omniaReaderErrors } from "./errors.js";
export { type OmniaReaderDeps, omniaReaderService, validateReaderSpec } from "./omnia-reader.js";

import { readFileSync } from "node:fs";

/**
 * The OpenAPI 3.1 document of the HTTP/JSON (Connect) API, generated from proto/ by libs/protoc-gen-openapi at
 * `npm run generate`. A file beside this module (the build copies it into dist), read on demand: at ~0.5 MB it is
 * not worth holding in every process that imports the contracts.
 */
export const OPENAPI_DOCUMENT_URL = new URL("./gen/openapi/meridian.openapi.json", import.meta.url);

/** The document's text, as generated. */
export function readOpenApiDocument(): string {
  return readFileSync(OPENAPI_DOCUMENT_URL, "utf8");
}

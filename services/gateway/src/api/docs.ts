/**
 * The API document and its page, on the gateway's port without authentication (the document holds no secret, and a
 * client generator or a person must be able to read it before having a key): GET /openapi.json is the OpenAPI 3.1
 * document generated from proto/ (libs/protoc-gen-openapi), GET /docs/ is Swagger UI from the swagger-ui-dist
 * package's own folder (nothing is fetched from the internet), set to that document.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { readOpenApiDocument } from "@meridian/contracts/openapi";
import type { HttpRouteHandler, HttpRouteRequest, HttpRouteResponse } from "@meridian/service-kit";

export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs/";

const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".html": "text/html; charset=utf-8",
};

/** The page: swagger-ui-dist's index.html with our initializer, addresses relative so a path prefix in front works. */
const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Meridian API</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./index.css" />
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

/** In place of the package's (which points at the petstore): the gateway's own document, /openapi.json. */
const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.json", window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    persistAuthorization: false,
  });
};
`;

/** swagger-ui-dist's folder: its files are served by name from there, and only those (no subfolders, no source maps). */
function swaggerUiFolder(): string {
  return dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
}

/** The routes for the service kit's httpRoutes. Files are read on first request and kept (a few MB at most). */
export function apiDocumentRoutes(): Record<string, HttpRouteHandler> {
  let document: Buffer | undefined;
  let assets: Map<string, string> | undefined;
  const cache = new Map<string, Buffer>();

  const send = (req: HttpRouteRequest, res: HttpRouteResponse, type: string, body: string | Buffer, cacheControl: string) => {
    res.writeHead(200, {
      "content-type": type,
      "content-length": Buffer.byteLength(body),
      "cache-control": cacheControl,
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };

  const openApi: HttpRouteHandler = (req, res) => {
    document ??= Buffer.from(readOpenApiDocument());
    // It changes only with the gateway's version: revalidated rather than kept.
    send(req, res, "application/json; charset=utf-8", document, "no-cache");
  };

  const docs: HttpRouteHandler = (req, res, path) => {
    const name = path.slice(DOCS_PATH.length);
    if (name === "" || name === "index.html") return send(req, res, CONTENT_TYPES[".html"]!, PAGE, "no-cache");
    if (name === "swagger-initializer.js") return send(req, res, CONTENT_TYPES[".js"]!, INITIALIZER, "no-cache");
    if (!assets) {
      const folder = swaggerUiFolder();
      assets = new Map(
        readdirSync(folder, { withFileTypes: true })
          .filter((e) => e.isFile() && CONTENT_TYPES[extname(e.name)] !== undefined && extname(e.name) !== ".html")
          .map((e) => [e.name, join(folder, e.name)]),
      );
    }
    const file = assets.get(name);
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : "not found\n");
      return;
    }
    let body = cache.get(name);
    if (!body) {
      body = readFileSync(file);
      cache.set(name, body);
    }
    send(req, res, CONTENT_TYPES[extname(name)]!, body, "public, max-age=3600");
  };

  // /docs without its slash: the page's relative addresses need it.
  const redirect: HttpRouteHandler = (_req, res) => {
    res.writeHead(301, { location: "docs/", "content-length": 0 });
    res.end();
  };

  return { [OPENAPI_PATH]: openApi, "/docs": redirect, [DOCS_PATH]: docs };
}

/**
 * The operations console (console/, a single-page app) on the gateway's port, without authentication: its files hold
 * no secret, and the page must load before the person has given a key (every API call it makes carries the key and is
 * checked like any other). GET /assets/* are Vite's content-hashed files, kept by browsers for a year; every other
 * file and the page itself are revalidated, so a new gateway version is seen at the next load. A path without a dot
 * that is no file is one of the app's own pages (/routes, /dead-letters…): it gets index.html and the app routes it.
 * A path with a dot that is no file (an unknown RPC by GET, a missing asset) is a 404, not the page.
 *
 * GET /console/config.json tells the page how a person may sign in (API key, and/or by redirect to an OIDC provider):
 * public values only, read before anyone is signed in.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, type HttpRouteHandler, type HttpRouteRequest, type HttpRouteResponse } from "@meridian/service-kit";
import type { GatewayConfig } from "../config.js";

/** Where the built console is in the repository and in the gateway image (both keep the repository's paths). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL("../../../../console/dist", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "no-cache";

/** What /console/config.json says: how the console's sign-in page lets a person in. */
export interface ConsoleSignIn {
  /** Whether the page offers the API-key field. */
  apiKeySignIn: boolean;
  /** Sign-in by redirect (authorization code with PKCE), when configured. */
  oidc?: { authority: string; clientId: string; scopes: string; providerName: string };
}

/** The console's sign-in from the settings; an authority without a client id (or the reverse) stops the start. */
export function consoleSignInFromConfig(config: GatewayConfig): ConsoleSignIn {
  const { CONSOLE_OIDC_AUTHORITY: authority, CONSOLE_OIDC_CLIENT_ID: clientId } = config;
  if (Boolean(authority) !== Boolean(clientId)) {
    const missing = authority ? "CONSOLE_OIDC_CLIENT_ID" : "CONSOLE_OIDC_AUTHORITY";
    throw new ConfigError(`${missing}: required with ${authority ? "CONSOLE_OIDC_AUTHORITY" : "CONSOLE_OIDC_CLIENT_ID"}`, [missing]);
  }
  if (!config.CONSOLE_API_KEY_SIGN_IN && !authority) {
    throw new ConfigError("CONSOLE_API_KEY_SIGN_IN: false leaves the console no way to sign in: set CONSOLE_OIDC_AUTHORITY too", [
      "CONSOLE_API_KEY_SIGN_IN",
    ]);
  }
  return {
    apiKeySignIn: config.CONSOLE_API_KEY_SIGN_IN,
    ...(authority && clientId
      ? { oidc: { authority, clientId, scopes: config.CONSOLE_OIDC_SCOPES, providerName: config.CONSOLE_OIDC_PROVIDER_NAME } }
      : {}),
  };
}

/**
 * The page may load only its own files and talk only to its own origin (the API is the same port); inline styles set
 * through the DOM (charts, the virtual list's spacer) are not inline markup, so style-src needs no 'unsafe-inline'.
 * With sign-in by redirect, the page also reads the provider's discovery document and redeems the code at its token
 * endpoint: connect-src adds the authority's origin, the one place both are (the console refuses a provider whose
 * token endpoint is elsewhere, naming it, rather than widen this). The redirect itself is a navigation, which
 * connect-src does not govern.
 */
export function pageHeaders(signIn: ConsoleSignIn): Record<string, string> {
  const connect = signIn.oidc ? `'self' ${new URL(signIn.oidc.authority).origin}` : "'self'";
  return {
    "content-security-policy": `default-src 'self'; connect-src ${connect}; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  };
}

/** Every file below `dir` by its URL path ("/assets/index-3f2a.js"); only these are ever read. */
function listFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    if (CONTENT_TYPES[extname(full)] === undefined) continue;
    files.set(`/${relative(dir, full).split(sep).join("/")}`, full);
  }
  return files;
}

/**
 * The routes for the service kit's httpRoutes: "/" takes every GET the API, /docs/ and the kit's routes do not;
 * "/console/config.json" is the sign-in configuration; "/console/platforms.json" names the platform services this
 * gateway fronts (`platformServices`, proto names), so that the Platforms page does not call one it does not: such a
 * call is a 404 the browser logs as an error, and the page says the service is not available instead.
 */
export function consoleRoutes(
  dir: string = DEFAULT_CONSOLE_DIR,
  signIn: ConsoleSignIn = { apiKeySignIn: true },
  platformServices: readonly string[] = [],
): Record<string, HttpRouteHandler> {
  const PAGE_HEADERS = pageHeaders(signIn);
  const signInJson = `${JSON.stringify(signIn)}\n`;
  const platformsJson = `${JSON.stringify({ services: platformServices })}\n`;
  let files: Map<string, string> | undefined;
  const cache = new Map<string, Buffer>();

  const read = (file: string): Buffer => {
    let body = cache.get(file);
    if (!body) {
      body = readFileSync(file);
      cache.set(file, body);
    }
    return body;
  };

  const send = (req: HttpRouteRequest, res: HttpRouteResponse, status: number, headers: Record<string, string>, body: string | Buffer) => {
    res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body), "x-content-type-options": "nosniff" });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  const notFound = (req: HttpRouteRequest, res: HttpRouteResponse, message: string) =>
    send(req, res, 404, { "content-type": CONTENT_TYPES[".txt"]!, "cache-control": "no-store" }, `${message}\n`);

  const handler: HttpRouteHandler = (req, res, path) => {
    // Listed once the build is there; until then every request looks again (the console may be built after the start).
    if (!files) {
      if (!existsSync(join(dir, "index.html"))) {
        return notFound(req, res, `the console is not built: no index.html in ${dir} (npm run build -w @meridian/console)`);
      }
      files = listFiles(dir);
    }
    const file = files.get(path === "/" ? "/index.html" : path);
    if (file) {
      const isPage = file.endsWith(".html");
      return send(
        req,
        res,
        200,
        {
          "content-type": CONTENT_TYPES[extname(file)]!,
          "cache-control": path.startsWith("/assets/") ? IMMUTABLE : REVALIDATE,
          ...(isPage ? PAGE_HEADERS : {}),
        },
        read(file),
      );
    }
    if (path.includes(".")) return notFound(req, res, "not found");
    const index = files.get("/index.html")!;
    send(req, res, 200, { "content-type": CONTENT_TYPES[".html"]!, "cache-control": REVALIDATE, ...PAGE_HEADERS }, read(index));
  };

  const config: HttpRouteHandler = (req, res) =>
    send(req, res, 200, { "content-type": CONTENT_TYPES[".json"]!, "cache-control": REVALIDATE }, signInJson);

  const platforms: HttpRouteHandler = (req, res) =>
    send(req, res, 200, { "content-type": CONTENT_TYPES[".json"]!, "cache-control": REVALIDATE }, platformsJson);

  return { "/": handler, "/console/config.json": config, "/console/platforms.json": platforms };
}

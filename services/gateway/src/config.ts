import { env } from "@meridian/service-kit";
import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

export const gatewayConfig = z.object({
  ...serviceSettings(8080),
  /** JSON file of routes applied at start: {"routes": [Route, ...]} in proto JSON. */
  ROUTES_FILE: z.string().optional(),
  /** Routes the mesh may hold: each one is a durable consumer on the stream and a pipeline in a sink service. */
  MAX_ROUTES: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** The built operations console served at / (console/dist); unset: where the repository and the image keep it. */
  CONSOLE_DIR: z.string().min(1).max(4096).optional(),
  /**
   * The console's sign-in by redirect (OIDC authorization code with PKCE, a public client): the provider's issuer, at
   * which its discovery document is (`<issuer>/.well-known/openid-configuration`), and the console's client id there;
   * both or neither. Public values: the console reads them at /console/config.json before anyone is signed in.
   */
  CONSOLE_OIDC_AUTHORITY: z
    .url({ protocol: /^https$/ })
    .max(512)
    .optional(),
  CONSOLE_OIDC_CLIENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, "letters, digits and . _ : - only, at most 128")
    .optional(),
  /** What the console asks for: "openid" and the API's scope (e.g. "api://<API app id>/access_as_user"). */
  CONSOLE_OIDC_SCOPES: z
    .string()
    .max(1024)
    .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, "scope tokens separated by single spaces (RFC 6749 3.3)")
    .default("openid profile"),
  /** The button's words: "Sign in with <name>". */
  CONSOLE_OIDC_PROVIDER_NAME: z.string().min(1).max(64).default("single sign-on"),
  /** Whether the sign-in page offers the API-key field (the API accepts keys either way: AUTH_IDENTITIES_FILE). */
  CONSOLE_API_KEY_SIGN_IN: env.bool(true),
  /** Where the platform services listen; each one set is served through the gateway too. */
  OMF_SENDER_URL: z.url().optional(),
  IDIGI_LISTENER_URL: z.url().optional(),
  OMNIA_READER_URL: z.url().optional(),
  IOTC_BRIDGE_URL: z.url().optional(),
  OCI_TWIN_MANAGER_URL: z.url().optional(),
  /** TLS towards backends whose URL is https:// (README "Backends over TLS"): the CA their certificates chain to (unset: the system's). */
  BACKEND_CA_FILE: z.string().min(1).max(4096).optional(),
  /** The certificate and key the gateway presents to https:// backends that verify callers (mTLS); both or neither. */
  BACKEND_CERT_FILE: z.string().min(1).max(4096).optional(),
  BACKEND_KEY_FILE: z.string().min(1).max(4096).optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfig>;

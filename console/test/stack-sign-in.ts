import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { startEntraEmulator } from "@meridian/emulator-entra";

/** The Meridian API as an Entra application: the `aud` of the console's access tokens, and the scope it exposes. */
export const MERIDIAN_API = "7d3c9a61-4b2e-4f0a-9c1d-2e5f8a7b6c41";
/** The console's registration: a single-page application (redirect URI of the "spa" platform), no secret. */
export const CONSOLE_CLIENT = "c0a51e7e-3b8d-4c2a-a6f9-1d4e7b2c9f30";

/** Directory users and the Meridian roles the directory assigns them on the API (Entra app roles). */
export const SIGN_IN_USERS = {
  admin: { username: "ada.admin@meridian.test", displayName: "Ada Admin" },
  viewer: { username: "vic.viewer@meridian.test", displayName: "Vic Viewer" },
} as const;
const ADMIN_ROLES = ["status:read", "routes:admin", "deadletters:admin", "telemetry:read", "telemetry:publish", "platform:admin"];
const VIEWER_ROLES = ["status:read", "routes:read", "deadletters:read", "telemetry:read", "platform:read"];

/**
 * The console's OIDC provider for sign-in by redirect: the Entra emulator with the console registered as a SPA whose
 * redirect URI is on the gateway's origin, and two users. `auth` is the JWT verification every service needs (the
 * gateway passes the caller's credential on to the services it fronts, which check it again); `gateway` adds the
 * console's /console/config.json; `env` is what the tests reach (the plain-HTTP admin port).
 */
export async function startSignInProvider(gatewayOrigin: string) {
  const entra = await startEntraEmulator({
    adminPort: 0,
    resources: [
      {
        appId: MERIDIAN_API,
        displayName: "Meridian API",
        scopes: ["access_as_user"],
        appRoles: [...new Set([...ADMIN_ROLES, ...VIEWER_ROLES])],
      },
    ],
    applications: [
      {
        clientId: CONSOLE_CLIENT,
        displayName: "Meridian console",
        spaRedirectUris: [`${gatewayOrigin}/sign-in/callback`],
        grants: { [MERIDIAN_API]: { scopes: ["access_as_user"] } },
      },
    ],
    users: [
      { ...SIGN_IN_USERS.admin, appRoles: { [MERIDIAN_API]: ADMIN_ROLES } },
      { ...SIGN_IN_USERS.viewer, appRoles: { [MERIDIAN_API]: VIEWER_ROLES } },
    ],
  });
  // The gateway runs in this process and reads the emulator's keys (AUTH_JWKS_URL) over HTTPS: its CA is trusted by
  // this process's TLS clients, as NODE_EXTRA_CA_CERTS would make a gateway process trust a private CA.
  setDefaultCACertificates([...getCACertificates("default"), entra.caPem!]);
  const auth = { AUTH_JWKS_URL: entra.jwksUrl(), AUTH_JWT_ISSUER: entra.issuer(), AUTH_JWT_AUDIENCE: MERIDIAN_API };
  return {
    auth,
    gateway: {
      ...auth,
      CONSOLE_OIDC_AUTHORITY: entra.issuer(),
      CONSOLE_OIDC_CLIENT_ID: CONSOLE_CLIENT,
      CONSOLE_OIDC_SCOPES: `openid profile ${MERIDIAN_API}/access_as_user`,
      CONSOLE_OIDC_PROVIDER_NAME: "Entra ID",
    },
    env: { ENTRA_SIGN_IN_URL: entra.url, ENTRA_SIGN_IN_ADMIN_URL: entra.adminUrl! },
    stop: () => entra.stop(),
  };
}

/**
 * What a client or a verifier reads before any token: the OpenID metadata per tenant, the JWKS, and the instance
 * discovery document MSAL asks for when instance discovery is on. Kept to the standard fields (plus Entra's own
 * `tenant_region_scope`, `cloud_instance_name`, ...) so any OIDC verifier, not only MSAL, can use them.
 */
export function openIdConfiguration(baseUrl: string, pathTenant: string, tenant: string): Record<string, unknown> {
  const host = new URL(baseUrl).host;
  // For common/organizations Entra publishes the issuer with a `{tenantid}` placeholder; a verifier fills it from `tid`.
  const multi = pathTenant.toLowerCase() === "common" || pathTenant.toLowerCase() === "organizations";
  const issuerTenant = multi ? "{tenantid}" : tenant;
  const t = multi ? pathTenant.toLowerCase() : tenant;
  return {
    token_endpoint: `${baseUrl}/${t}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: `${baseUrl}/${t}/discovery/v2.0/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: `${baseUrl}/${issuerTenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${baseUrl}/${t}/openid/v2.0/userinfo`,
    authorization_endpoint: `${baseUrl}/${t}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${baseUrl}/${t}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${baseUrl}/${t}/oauth2/v2.0/logout`,
    claims_supported: [
      "sub",
      "iss",
      "cloud_instance_name",
      "cloud_instance_host_name",
      "cloud_graph_host_name",
      "msgraph_host",
      "aud",
      "exp",
      "iat",
      "auth_time",
      "acr",
      "nonce",
      "preferred_username",
      "name",
      "tid",
      "ver",
      "at_hash",
      "c_hash",
      "email",
    ],
    grant_types_supported: ["authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
    kerberos_endpoint: `${baseUrl}/${t}/kerberos`,
    tenant_region_scope: "EU",
    cloud_instance_name: host,
    cloud_graph_host_name: "graph.windows.net",
    msgraph_host: "graph.microsoft.com",
    rbac_url: "https://pas.windows.net",
  };
}

/**
 * `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...`: MSAL's instance discovery. The host
 * asked about is its own alias, so MSAL then reads the tenant's metadata from this emulator.
 */
export function instanceDiscovery(baseUrl: string, query: URLSearchParams): Record<string, unknown> {
  const authz = query.get("authorization_endpoint");
  let host = new URL(baseUrl).host;
  let tenant = "common";
  if (authz) {
    try {
      const u = new URL(authz);
      host = u.host;
      tenant = u.pathname.split("/").filter(Boolean)[0] ?? "common";
    } catch {
      // Fall back to the emulator's own host: a malformed endpoint is MSAL's problem to report, not a reason to fail.
    }
  }
  return {
    tenant_discovery_endpoint: `https://${host}/${tenant}/v2.0/.well-known/openid-configuration`,
    "api-version": "1.1",
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  };
}

import { MAX_DEVICE_PAYLOAD_BYTES, MAX_ENDPOINT_LENGTH, resolveOptions } from "./config.js";
import { OciInvalidArgumentError } from "./errors.js";
import { createAgent, errorBody, errorForStatus, exchange, retryAfterFrom } from "./transport.js";
import type { DeviceCredentials, DeviceEndpointClient, IotDomain, JsonObject, OciClientOptions } from "./types.js";

/** Sockets per device host: the sink posts for many twins at once over one pool. */
const DEVICE_CONNECTIONS = 64;
/** Endpoints whose check passed, kept so that the same few are not checked again for every post. */
const MAX_ENDPOINTS_CHECKED = 1000;

/** Characters of a URL path (RFC 3986 pchar and "/"), percent escapes included. */
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]+$/;

/**
 * The device endpoint a payload goes to (`iot/v1/telemetry`): 1 to 1024 characters of a URL path, relative (no
 * leading "/"), no ".." segment that would leave it, no empty segment, no query or fragment.
 */
export function checkEndpoint(endpoint: unknown): string {
  if (typeof endpoint !== "string" || endpoint.length === 0 || endpoint.length > MAX_ENDPOINT_LENGTH) {
    throw new OciInvalidArgumentError("endpoint", `must be 1 to ${MAX_ENDPOINT_LENGTH} characters`);
  }
  if (endpoint.startsWith("/"))
    throw new OciInvalidArgumentError("endpoint", 'must not start with "/" (it is relative to the device host)');
  if (endpoint.includes("..")) throw new OciInvalidArgumentError("endpoint", 'must not contain ".."');
  if (!PATH_CHARS.test(endpoint)) {
    throw new OciInvalidArgumentError("endpoint", "may hold only URL path characters (no spaces, query or fragment)");
  }
  if (endpoint.includes("//") || endpoint.endsWith("/")) throw new OciInvalidArgumentError("endpoint", "must not have an empty segment");
  return endpoint;
}

function checkCredentials(credentials: DeviceCredentials): void {
  if (!credentials.externalKey) throw new OciInvalidArgumentError("externalKey", "required");
  // Basic auth cannot carry a user with ":"; OCI would read a different external key.
  if (credentials.externalKey.includes(":")) throw new OciInvalidArgumentError("externalKey", 'must not contain ":"');
  if (!credentials.secret) throw new OciInvalidArgumentError("secret", "required (the device secret)");
}

/**
 * Posts as a device to the domain's device host over HTTPS (Basic externalKey:secret, JSON), on one keep-alive pool.
 * Resolves once OCI accepted the message (2xx); what the adapter makes of it shows later in the data API.
 */
export function createDeviceEndpointClient(domain: IotDomain, options: OciClientOptions): DeviceEndpointClient {
  const resolved = resolveOptions(options);
  const base = resolved.deviceUrl ?? (domain.deviceHost ? `https://${domain.deviceHost}` : undefined);
  if (!base) throw new OciInvalidArgumentError("iotDomain.deviceHost", `IoT domain ${domain.id} has no device host`);
  const agent = createAgent(options.caPem, DEVICE_CONNECTIONS);

  const checkedEndpoints = new Set<string>();
  /**
   * The request headers of each credentials object, built once (Basic is base64 of the key and the secret): the route
   * sink hands the same object for a twin until it reads the twin again. A credentials object is not changed in place.
   */
  const headersOf = new WeakMap<DeviceCredentials, Record<string, string>>();

  return {
    async post(credentials, endpoint, payload: JsonObject, signal) {
      if (!checkedEndpoints.has(endpoint)) {
        checkEndpoint(endpoint);
        if (checkedEndpoints.size >= MAX_ENDPOINTS_CHECKED) checkedEndpoints.clear();
        checkedEndpoints.add(endpoint);
      }
      let headers = headersOf.get(credentials);
      if (headers === undefined) {
        checkCredentials(credentials);
        const basic = Buffer.from(`${credentials.externalKey}:${credentials.secret}`).toString("base64");
        headers = { authorization: `Basic ${basic}`, "content-type": "application/json" };
        headersOf.set(credentials, headers);
      }
      if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
        throw new OciInvalidArgumentError("payload", "must be a JSON object");
      }
      const body = JSON.stringify(payload);
      // Up to 3 UTF-8 bytes per UTF-16 unit: a body that short cannot be over the cap, and is not measured.
      const size = body.length * 3 <= MAX_DEVICE_PAYLOAD_BYTES ? body.length : Buffer.byteLength(body);
      if (size > MAX_DEVICE_PAYLOAD_BYTES) {
        throw new OciInvalidArgumentError(
          "payload",
          `${size} bytes of JSON; the device endpoint takes at most ${MAX_DEVICE_PAYLOAD_BYTES}`,
        );
      }
      const what = `POST ${endpoint} as ${credentials.externalKey}`;
      const res = await exchange({
        method: "POST",
        url: `${base}/${endpoint}`,
        headers,
        body,
        timeoutMs: resolved.timeoutMs,
        maxBytes: 64 * 1024,
        agent,
        what,
        ...(signal ? { signal } : {}),
      });
      if (res.status >= 200 && res.status < 300) return;
      throw errorForStatus(
        res.status,
        errorBody(res.text),
        { resource: `${credentials.externalKey} ${endpoint}`, what, field: "payload" },
        retryAfterFrom(res.headers),
      );
    },

    async close() {
      await agent.close();
    },
  };
}

/**
 * OCI HTTP request signatures (draft-cavage, `rsa-sha256`) as the control plane checks them: the keyId names a
 * registered API key (`<tenancy>/<user>/<fingerprint>`), the signed headers must cover what the SDKs sign (GET/DELETE:
 * date or x-date, (request-target), host; POST/PUT/PATCH also content-type, content-length, x-content-sha256), the
 * body must match x-content-sha256, and the date must be within five minutes of the emulator's clock.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";

export class SignatureError extends Error {
  override readonly name = "SignatureError";
}

export interface ApiKey {
  tenancy: string;
  user: string;
  fingerprint: string;
  publicKey: KeyObject;
}

/** Colon-separated MD5 of the DER public key (SubjectPublicKeyInfo), as the OCI console shows it. */
export function fingerprintOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: "spki", format: "der" });
  return (createHash("md5").update(der).digest("hex").match(/../g) ?? []).join(":");
}

export class ApiKeyRegistry {
  private readonly keys = new Map<string, ApiKey>();

  /** Registers a public key; returns its keyId. */
  register(tenancy: string, user: string, publicKeyPem: string): string {
    const publicKey = createPublicKey(publicKeyPem);
    const fingerprint = fingerprintOf(publicKey);
    const keyId = `${tenancy}/${user}/${fingerprint}`;
    this.keys.set(keyId, { tenancy, user, fingerprint, publicKey });
    return keyId;
  }

  get(keyId: string): ApiKey | undefined {
    return this.keys.get(keyId);
  }

  list(): string[] {
    return [...this.keys.keys()];
  }
}

export interface SignedRequest {
  method: string;
  /** Path and query exactly as sent (the request line's target). */
  target: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface VerifyOptions {
  keys: ApiKeyRegistry;
  nowMs: number;
  maxSkewMs?: number;
  /** Accept `ST$<token>` keyIds (instance/resource principals, session tokens): a test switch, off by default. */
  acceptSecurityTokens?: boolean;
}

export interface Principal {
  keyId: string;
  tenancy?: string;
  user?: string;
  securityToken?: boolean;
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
const MAX_SKEW_MS = 5 * 60_000;

/** Parses `Signature k="v",k="v"` in any parameter order; undefined when it is not a Signature header. */
export function parseSignatureHeader(value: string): Record<string, string> | undefined {
  const m = /^Signature\s+(.*)$/is.exec(value.trim());
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(?:,|$)/y;
  const text = m[1]!;
  re.lastIndex = 0;
  while (re.lastIndex < text.length) {
    const p = re.exec(text);
    if (!p) return undefined;
    params[p[1]!] = p[2]!;
  }
  return params;
}

function header(headers: SignedRequest["headers"], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/** Verifies one request; throws SignatureError saying what is wrong (the 401's message). */
export function verifyRequest(req: SignedRequest, options: VerifyOptions): Principal {
  const authorization = header(req.headers, "authorization");
  if (!authorization) throw new SignatureError("The required information to complete authentication was not provided.");
  const params = parseSignatureHeader(authorization);
  if (!params) throw new SignatureError("The Authorization header is not an OCI request signature.");
  const { keyId, signature } = params;
  if (params.version !== undefined && params.version !== "1") throw new SignatureError(`Unsupported signature version ${params.version}.`);
  if (!keyId || !signature) throw new SignatureError("The signature is missing keyId or signature.");
  if ((params.algorithm ?? "rsa-sha256").toLowerCase() !== "rsa-sha256")
    throw new SignatureError(`Unsupported algorithm ${params.algorithm}.`);
  const signed = (params.headers ?? "date").toLowerCase().split(/\s+/).filter(Boolean);

  const method = req.method.toUpperCase();
  const required = ["(request-target)", "host"];
  if (BODY_METHODS.has(method)) required.push("content-length", "content-type", "x-content-sha256");
  for (const name of required) if (!signed.includes(name)) throw new SignatureError(`The signature does not cover the ${name} header.`);
  const dateHeader = signed.includes("x-date") ? "x-date" : signed.includes("date") ? "date" : undefined;
  if (!dateHeader) throw new SignatureError("The signature covers neither date nor x-date.");

  const lines: string[] = [];
  for (const name of signed) {
    if (name === "(request-target)") {
      lines.push(`(request-target): ${req.method.toLowerCase()} ${req.target}`);
      continue;
    }
    const value = header(req.headers, name);
    if (value === undefined) throw new SignatureError(`The signed header ${name} is missing from the request.`);
    lines.push(`${name}: ${value}`);
  }

  const date = Date.parse(header(req.headers, dateHeader) ?? "");
  if (Number.isNaN(date)) throw new SignatureError(`The ${dateHeader} header is not a date.`);
  if (Math.abs(options.nowMs - date) > (options.maxSkewMs ?? MAX_SKEW_MS))
    throw new SignatureError(`The ${dateHeader} header is more than 5 minutes away from the server's clock.`);

  if (BODY_METHODS.has(method)) {
    const sha = createHash("sha256").update(req.body).digest("base64");
    if (header(req.headers, "x-content-sha256") !== sha) throw new SignatureError("x-content-sha256 does not match the body.");
    if (Number(header(req.headers, "content-length")) !== req.body.length)
      throw new SignatureError("content-length does not match the body.");
  }

  let publicKey: KeyObject | undefined;
  let principal: Principal;
  if (keyId.startsWith("ST$")) {
    if (!options.acceptSecurityTokens) throw new SignatureError("Security token keyIds are not accepted here.");
    publicKey = sessionKeyOf(keyId.slice(3));
    principal = { keyId: "ST$…", securityToken: true };
    // A token without a session key (a test stand-in) is taken as is: this whole path is a test switch.
    if (!publicKey) return principal;
  } else {
    const key = options.keys.get(keyId);
    if (!key) throw new SignatureError("The keyId is not a registered API key.");
    publicKey = key.publicKey;
    principal = { keyId, tenancy: key.tenancy, user: key.user };
  }
  let ok = false;
  try {
    ok = verify("sha256", Buffer.from(lines.join("\n"), "utf8"), publicKey, Buffer.from(signature, "base64"));
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureError("The signature does not verify with the key named by keyId.");
  return principal;
}

/** The session public key a principal's security token (a JWT) carries in its `jwk` claim, if any. */
function sessionKeyOf(token: string): KeyObject | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { jwk?: unknown };
    if (payload.jwk === undefined) return undefined;
    const jwk = typeof payload.jwk === "string" ? JSON.parse(payload.jwk) : payload.jwk;
    return createPublicKey({ key: jwk, format: "jwk" });
  } catch {
    return undefined;
  }
}

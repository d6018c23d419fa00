import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ApiKeyRegistry, fingerprintOf, parseSignatureHeader, SignatureError, type SignedRequest, verifyRequest } from "./signature.js";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const publicPem = publicKey.export({ type: "spki", format: "pem" }).toString();
const keys = new ApiKeyRegistry();
const keyId = keys.register("ocid1.tenancy.oc1..t", "ocid1.user.oc1..u", publicPem);
const NOW = Date.parse("2026-01-01T12:00:00Z");

/** Signs as the Python SDK and the CLI do: `date` instead of `x-date`, parameters in their order. */
function signPythonStyle(
  method: string,
  target: string,
  body = "",
  opts: { key?: KeyObject; date?: number; keyId?: string; sha?: string } = {},
) {
  const buf = Buffer.from(body);
  const headers: Record<string, string> = { date: new Date(opts.date ?? NOW).toUTCString(), host: "127.0.0.1:8443" };
  const names = ["date", "(request-target)", "host"];
  if (method === "POST" || method === "PUT") {
    headers["content-length"] = String(buf.length);
    headers["content-type"] = "application/json";
    headers["x-content-sha256"] = opts.sha ?? createHash("sha256").update(buf).digest("base64");
    names.push("content-length", "content-type", "x-content-sha256");
  }
  const lines = names.map((n) => (n === "(request-target)" ? `${n}: ${method.toLowerCase()} ${target}` : `${n}: ${headers[n]}`));
  const signature = sign("sha256", Buffer.from(lines.join("\n")), opts.key ?? privateKey).toString("base64");
  headers.authorization = `Signature algorithm="rsa-sha256",headers="${names.join(" ")}",keyId="${opts.keyId ?? keyId}",signature="${signature}",version="1"`;
  return { method, target, headers, body: buf } satisfies SignedRequest;
}

const verify = (req: SignedRequest, extra: { acceptSecurityTokens?: boolean } = {}) => verifyRequest(req, { keys, nowMs: NOW, ...extra });

describe("OCI request signatures", () => {
  it("fingerprints a key as colon-separated MD5 of its DER", () => {
    expect(fingerprintOf(publicPem)).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    expect(keyId.endsWith(fingerprintOf(publicKey))).toBe(true);
  });

  it("parses the Authorization parameters in any order", () => {
    const a = parseSignatureHeader('Signature version="1",keyId="k",algorithm="rsa-sha256",headers="a b",signature="s"');
    const b = parseSignatureHeader('Signature signature="s", headers="a b", algorithm="rsa-sha256", keyId="k", version="1"');
    expect(a).toEqual(b);
    expect(parseSignatureHeader("Bearer x")).toBeUndefined();
  });

  it("accepts a Python-style GET (date header) and POST with its body headers", () => {
    expect(verify(signPythonStyle("GET", "/20250531/digitalTwinModels?iotDomainId=x&specUriStartsWith=dtmi:a;1"))).toMatchObject({
      keyId,
      user: "ocid1.user.oc1..u",
    });
    expect(() => verify(signPythonStyle("POST", "/20250531/digitalTwinModels", '{"a":1}'))).not.toThrow();
  });

  it("refuses a changed target, another key, an unknown keyId, a body not matching x-content-sha256", () => {
    const get = signPythonStyle("GET", "/20250531/digitalTwinModels?iotDomainId=x");
    expect(() => verify({ ...get, target: "/20250531/digitalTwinModels?iotDomainId=y" })).toThrow(SignatureError);
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    expect(() => verify(signPythonStyle("GET", "/20250531/x", "", { key: other }))).toThrow(/does not verify/);
    expect(() => verify(signPythonStyle("GET", "/20250531/x", "", { keyId: "a/b/c" }))).toThrow(/not a registered/);
    const post = signPythonStyle("POST", "/20250531/x", '{"a":1}');
    expect(() => verify({ ...post, body: Buffer.from('{"a":2}') })).toThrow(/x-content-sha256/);
  });

  it("refuses a POST whose signature leaves out the body headers, and a request without a date", () => {
    const req = signPythonStyle("GET", "/20250531/x");
    expect(() => verify({ ...req, method: "POST" })).toThrow(/content-length/);
    const noDate = {
      ...req,
      headers: { ...req.headers, authorization: req.headers.authorization!.replace('headers="date ', 'headers="') },
    };
    expect(() => verify(noDate)).toThrow(/date/);
  });

  it("refuses a date more than 5 minutes from the clock, accepts one 4 minutes off", () => {
    expect(() => verify(signPythonStyle("GET", "/20250531/x", "", { date: NOW - 6 * 60_000 }))).toThrow(/5 minutes/);
    expect(() => verify(signPythonStyle("GET", "/20250531/x", "", { date: NOW + 4 * 60_000 }))).not.toThrow();
  });

  it("accepts ST$ security-token keyIds only behind the test switch", () => {
    const jwt = `${Buffer.from("{}").toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "x" })).toString("base64url")}.sig`;
    const req = signPythonStyle("GET", "/20250531/x", "", { keyId: `ST$${jwt}` });
    expect(() => verify(req)).toThrow(/Security token/);
    expect(verify(req, { acceptSecurityTokens: true })).toMatchObject({ securityToken: true });
  });

  it("verifies an ST$ token's signature with the session key in its jwk claim", () => {
    const session = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = session.publicKey.export({ format: "jwk" });
    const jwt = `e30.${Buffer.from(JSON.stringify({ jwk: JSON.stringify(jwk) })).toString("base64url")}.sig`;
    expect(() =>
      verify(signPythonStyle("GET", "/20250531/x", "", { keyId: `ST$${jwt}`, key: session.privateKey }), { acceptSecurityTokens: true }),
    ).not.toThrow();
    expect(() => verify(signPythonStyle("GET", "/20250531/x", "", { keyId: `ST$${jwt}` }), { acceptSecurityTokens: true })).toThrow(
      /does not verify/,
    );
  });
});

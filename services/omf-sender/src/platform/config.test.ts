import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { createClients, OmfClient } from "./client.js";
import { type AdhEndpointInput, type PiEndpointInput, validateEndpointConfig } from "./config.js";
import { OmfConfigError, OmfError } from "./errors.js";
import { Secret } from "./secret.js";

const PASSWORD = "hunter2-PI-pass";
const CLIENT_SECRET = "s3cr3t-client-value";

const pi: PiEndpointInput = { kind: "pi", url: "https://pi.example.com/piwebapi", username: "DOMAIN\\svc", password: PASSWORD };
const adh: AdhEndpointInput = {
  kind: "adh",
  url: "https://uswe.datahub.connect.aveva.com",
  tenantId: "t-1",
  namespaceId: "ns 1",
  clientId: "cid",
  clientSecret: CLIENT_SECRET,
};

function errorsOf(input: unknown): string[] {
  const r = validateEndpointConfig(input);
  return r.ok ? [] : r.errors;
}

describe("validateEndpointConfig", () => {
  it("normalises the three kinds with per-kind defaults and OMF URLs (unverified: 192 KB read as 192,000 bytes so both KB readings hold)", () => {
    const p = validateEndpointConfig(pi);
    expect(p.ok && p.config).toMatchObject({
      kind: "pi",
      omfUrl: "https://pi.example.com/piwebapi/omf",
      omfVersion: "1.2",
      maxBodyBytes: 4_194_304,
      timeoutMs: 30_000,
      compression: true,
      verifySsl: true,
    });
    const a = validateEndpointConfig({ ...adh, kind: "OCS" });
    expect(a.ok && a.config).toMatchObject({
      kind: "adh",
      omfUrl: "https://uswe.datahub.connect.aveva.com/api/v1/tenants/t-1/namespaces/ns%201/omf",
      maxBodyBytes: 192_000,
    });
    const e = validateEndpointConfig({ kind: "eds", url: "http://localhost:5590/" });
    expect(e.ok && e.config).toMatchObject({
      omfUrl: "http://localhost:5590/api/v1/tenants/default/namespaces/default/omf",
      maxBodyBytes: 192_000,
    });
  });

  it("names the field in every error", () => {
    expect(errorsOf({ ...pi, url: "http://pi.example.com/piwebapi" })).toEqual([
      "endpoint.url: must be an https URL for PI Web API (allowHttp permits http for a lab)",
    ]);
    expect(errorsOf({ ...pi, url: "http://pi/piwebapi", allowHttp: true })).toEqual([]);
    expect(errorsOf({ ...adh, url: "http://x" })).toEqual([
      "endpoint.url: must be an https URL for AVEVA Data Hub (allowHttp permits http for a lab)",
    ]);
    expect(errorsOf({ kind: "pi", url: "https://pi/piwebapi" })).toEqual([
      "endpoint.username: required for PI Web API",
      "endpoint.password: required for PI Web API",
    ]);
    expect(errorsOf({ kind: "kafka", url: "https://x" })).toEqual(["endpoint.kind: must be one of pi, adh (ocs, cds), eds"]);
    expect(errorsOf({ ...adh, tenantId: undefined, clientSecret: "" })).toEqual([
      "endpoint.tenantId: required for AVEVA Data Hub",
      "endpoint.clientSecret: must not be empty",
    ]);
    expect(errorsOf({ ...pi, omfVersion: "2.0", timeoutMs: 0, maxBodyBytes: 10, compression: "yes" })).toEqual([
      "endpoint.omfVersion: must be one of 1.0, 1.1, 1.2",
      "endpoint.timeoutMs: must be an integer between 1 and 600000",
      "endpoint.maxBodyBytes: must be an integer between 1024 and 536870912",
      "endpoint.compression: must be a boolean",
    ]);
    expect(errorsOf({ ...pi, verifySsl: false, caPemPath: "/etc/ca.pem" })).toEqual([
      "endpoint.caPemPath: must not be set when endpoint.verifySsl is false",
    ]);
    expect(validateEndpointConfig({ ...pi, url: 5 }, "endpoints[2]")).toEqual({ ok: false, errors: ["endpoints[2].url: required"] });
  });

  it("accepts verifySsl as a CA path, like the reference sample", () => {
    const r = validateEndpointConfig({ ...pi, verifySsl: "/etc/pki/pi.pem" });
    expect(r.ok && r.config).toMatchObject({ verifySsl: true, caPemPath: "/etc/pki/pi.pem" });
  });

  it("never puts a secret (or credential-bearing URL) into an error", () => {
    const errs = [
      ...errorsOf({ ...pi, url: `https://admin:${PASSWORD}@pi/piwebapi?x=${PASSWORD}`, username: `a:${PASSWORD}` }),
      ...errorsOf({ ...adh, clientSecret: 42, tokenUrl: `http://x/${CLIENT_SECRET}` }),
    ];
    expect(errs).toContain("endpoint.url: must not contain credentials (use the credential fields)");
    expect(errs).toContain('endpoint.username: must not contain ":" (Basic auth)');
    expect(errs).toContain("endpoint.tokenUrl: must be an https URL");
    for (const e of errs) {
      expect(e).not.toContain(PASSWORD);
      expect(e).not.toContain(CLIENT_SECRET);
    }
    try {
      new OmfClient({ kind: "pi", url: `http://u:${PASSWORD}@pi`, username: "u", password: PASSWORD });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(OmfConfigError);
      // Under the client's one root, and final: retrying a bad configuration cannot help.
      expect(err).toBeInstanceOf(OmfError);
      expect((err as OmfConfigError).retryable).toBe(false);
      expect(String((err as Error).message)).not.toContain(PASSWORD);
      expect((err as Error).message).toContain("endpoint.url");
    }
  });

  it("keeps credentials out of JSON and inspect output of configs and clients", async () => {
    const p = validateEndpointConfig({ ...pi, producerToken: "ptok-secret" });
    const a = validateEndpointConfig(adh);
    if (!p.ok || !a.ok) throw new Error("expected valid");
    for (const shown of [
      JSON.stringify(p.config),
      inspect(p.config, { depth: 5 }),
      JSON.stringify(a.config),
      inspect(a.config, { depth: 5 }),
    ]) {
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(CLIENT_SECRET);
      expect(shown).not.toContain("ptok-secret");
      expect(shown).toContain("[redacted]");
    }
    expect(p.config.kind === "pi" && p.config.password.reveal()).toBe(PASSWORD);
    const client = new OmfClient(adh);
    try {
      expect(JSON.stringify(client)).not.toContain(CLIENT_SECRET);
      expect(inspect(client, { depth: 5 })).not.toContain(CLIENT_SECRET);
      expect(`${a.config.kind === "adh" && a.config.clientSecret}`).toBe("[redacted]");
    } finally {
      await client.close();
    }
  });

  it("accepts Secret instances for credentials", () => {
    const r = validateEndpointConfig({ ...pi, password: new Secret(PASSWORD) });
    expect(r.ok).toBe(true);
    expect(errorsOf({ ...pi, password: new Secret("") })).toEqual(["endpoint.password: must not be empty"]);
  });

  it("names an unreadable CA file without failing validation itself", () => {
    expect(() => new OmfClient({ ...pi, kind: "pi", caPemPath: "/nonexistent/ca.pem" })).toThrow(
      "endpoint.caPemPath: cannot read the CA file (ENOENT)",
    );
  });
});

describe("createClients", () => {
  it("validates every endpoint and names them by index, without secrets", () => {
    expect(() => createClients([pi, { ...adh, url: "ftp://x" }, { kind: "eds" }])).toThrow(OmfConfigError);
    try {
      createClients([pi, { ...adh, url: "ftp://x" }, { kind: "eds" }, { ...pi }]);
    } catch (err) {
      expect((err as OmfConfigError).problems).toEqual([
        "endpoints[1].url: must be an absolute http(s) URL",
        "endpoints[2].url: required",
        "endpoints[3].name: duplicates endpoints[0].name",
      ]);
      expect((err as Error).message).not.toContain(PASSWORD);
    }
  });

  it("builds one client per endpoint", async () => {
    const clients = createClients([pi, adh, { kind: "eds", url: "http://localhost:5590" }]);
    expect(clients.map((c) => [c.kind, c.name])).toEqual([
      ["pi", "pi:pi.example.com"],
      ["adh", "adh:uswe.datahub.connect.aveva.com"],
      ["eds", "eds:localhost:5590"],
    ]);
    await Promise.all(clients.map((c) => c.close()));
  });
});

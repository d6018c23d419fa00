import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EndpointPolicy, type EndpointPolicyOptions } from "./policy.js";

const base: EndpointPolicyOptions = {
  allowedHosts: [],
  declaredUrls: [],
  allowInsecure: false,
  secretEnvPrefix: "OMF_SECRET_",
  secretDir: "/run/secrets",
};
const policy = (o: Partial<EndpointPolicyOptions>) => new EndpointPolicy({ ...base, ...o });

describe("allowed hosts", () => {
  it("default: only the hosts (and ports) of the endpoints file", () => {
    const p = policy({ declaredUrls: ["https://pi.plant.local/piwebapi", "http://127.0.0.1:5590"] });
    expect(p.hostAllowed("https://pi.plant.local/piwebapi")).toBe(true);
    expect(p.hostAllowed("https://PI.Plant.Local./other")).toBe(true);
    expect(p.hostAllowed("https://pi.plant.local:8443/piwebapi")).toBe(false);
    expect(p.hostAllowed("http://127.0.0.1:5590")).toBe(true);
    expect(p.hostAllowed("http://127.0.0.1:5591")).toBe(false);
    expect(p.hostAllowed("https://attacker.example/piwebapi")).toBe(false);
  });

  it("operator patterns: exact, *.domain (not the apex), with a port, IPv6; IPv4 spellings are normalised first", () => {
    const p = policy({ allowedHosts: ["pi.plant.local", "*.osisoft.com", "eds.plant.local:5590", "[::1]", "127.0.0.1"] });
    expect(p.hostAllowed("https://pi.plant.local/piwebapi")).toBe(true);
    expect(p.hostAllowed("https://pi.plant.local:9443/piwebapi")).toBe(true);
    expect(p.hostAllowed("https://uswe.osisoft.com")).toBe(true);
    expect(p.hostAllowed("https://osisoft.com")).toBe(false);
    expect(p.hostAllowed("https://evilosisoft.com")).toBe(false);
    expect(p.hostAllowed("https://osisoft.com.attacker.example")).toBe(false);
    expect(p.hostAllowed("http://eds.plant.local:5590")).toBe(true);
    expect(p.hostAllowed("http://eds.plant.local:5591")).toBe(false);
    expect(p.hostAllowed("http://[::1]:5590")).toBe(true);
    expect(p.hostAllowed("http://2130706433:8080")).toBe(true); // 127.0.0.1
    expect(p.hostAllowed("ftp://pi.plant.local")).toBe(false);
  });

  it("violations name the field: url and token URL alike", () => {
    const p = policy({ allowedHosts: ["adh.example"] });
    expect(p.violations({ kind: "adh", url: "https://adh.example", tokenUrl: "https://attacker.example/token" })).toEqual([
      { field: "tokenUrl", reason: expect.stringContaining('host "attacker.example:443" is not allowed') },
    ]);
  });
});

describe("insecure settings", () => {
  const p = policy({ allowedHosts: ["pi", "eds", "127.0.0.1"] });
  it("refused unless allowed, each naming its field", () => {
    expect(p.violations({ kind: "pi", url: "https://pi/piwebapi", verifySsl: false }).map((v) => v.field)).toEqual(["verifySsl"]);
    expect(p.violations({ kind: "pi", url: "http://pi/piwebapi", allowHttp: true }).map((v) => v.field)).toEqual(["allowHttp"]);
    expect(p.violations({ kind: "eds", url: "http://eds:5590" }).map((v) => v.field)).toEqual(["url"]);
    // Edge Data Store on this host is plain http by design.
    expect(p.violations({ kind: "eds", url: "http://127.0.0.1:5590" })).toEqual([]);
    const allowed = policy({ allowedHosts: ["pi"], allowInsecure: true });
    expect(allowed.violations({ kind: "pi", url: "http://pi/piwebapi", allowHttp: true, verifySsl: false })).toEqual([]);
    expect(allowed.insecureSettings({ kind: "pi", url: "http://pi/piwebapi", allowHttp: true, verifySsl: false })).toEqual([
      "insecure_skip_tls_verify",
      "allow_http",
    ]);
  });

  it("a CA bundle only inside OMF_CA_DIR (symbolic links followed); none without it", () => {
    const dir = mkdtempSync(join(tmpdir(), "omf-ca-"));
    mkdirSync(join(dir, "ca"));
    writeFileSync(join(dir, "ca", "pi.pem"), "x");
    writeFileSync(join(dir, "outside.pem"), "x");
    symlinkSync(join(dir, "outside.pem"), join(dir, "ca", "link.pem"));
    const ca = policy({ allowedHosts: ["pi"], caDir: join(dir, "ca") });
    const at = (caPemPath: string) => ca.violations({ kind: "pi", url: "https://pi/piwebapi", caPemPath });
    expect(at(join(dir, "ca", "pi.pem"))).toEqual([]);
    expect(at(join(dir, "ca", "..", "outside.pem"))[0]?.reason).toBe("must be a file inside OMF_CA_DIR");
    expect(at(join(dir, "ca", "link.pem"))[0]?.reason).toBe("must be a file inside OMF_CA_DIR");
    expect(at("/etc/passwd")[0]?.field).toBe("caPemPath");
    expect(p.violations({ kind: "pi", url: "https://pi/piwebapi", caPemPath: join(dir, "ca", "pi.pem") })[0]?.reason).toMatch(/OMF_CA_DIR/);
    expect(ca.insecureSettings({ kind: "pi", url: "https://pi/piwebapi", caPemPath: join(dir, "ca", "pi.pem") })).toEqual(["ca_pem_path"]);
  });
});

describe("secret references of the endpoints file", () => {
  const dir = mkdtempSync(join(tmpdir(), "omf-secrets-"));
  writeFileSync(join(dir, "pi-password"), "meridian\n");
  writeFileSync(join(dir, "credentials-key"), "k");
  writeFileSync(join(tmpdir(), "omf-outside-secret"), "nope");
  const p = policy({ secretDir: dir, protectedFiles: [join(dir, "credentials-key")] });

  it("env: only names with OMF_SECRET_ENV_PREFIX", () => {
    process.env.OMF_SECRET_TEST_PW = "pw";
    process.env.NOT_OMF_PW = "pw";
    expect(p.resolveRef({ env: "OMF_SECRET_TEST_PW" })).toBe("pw");
    expect(() => p.resolveRef({ env: "NOT_OMF_PW" })).toThrow(/does not start with OMF_SECRET_ENV_PREFIX \(OMF_SECRET_\)/);
    expect(() => p.resolveRef({ env: "NATS_PASSWORD" })).toThrow(/OMF_SECRET_ENV_PREFIX/);
    expect(() => p.resolveRef({ env: "OMF_SECRET_UNSET" })).toThrow(/not set/);
  });

  it("file: only inside OMF_SECRET_DIR, never a credentials key file", () => {
    expect(p.resolveRef({ file: join(dir, "pi-password") })).toBe("meridian");
    expect(() => p.resolveRef({ file: join(dir, "..", "omf-outside-secret") })).toThrow(/inside OMF_SECRET_DIR/);
    expect(() => p.resolveRef({ file: "/etc/hostname" })).toThrow(/inside OMF_SECRET_DIR/);
    expect(() => p.resolveRef({ file: "pi-password" })).toThrow(/inside OMF_SECRET_DIR/);
    expect(() => p.resolveRef({ file: join(dir, "credentials-key") })).toThrow(/credentials key file/);
  });
});

import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { json, startRecordingServer } from "@meridian/testing";
import type { AuthenticationDetailsProvider } from "oci-common";
import { describe, expect, it } from "vitest";
import { createAuthSource, parseOciConfig } from "./auth.js";
import { createDigitalTwinsClient } from "./digital-twins.js";
import { OciInvalidArgumentError } from "./errors.js";

const dir = mkdtempSync(join(tmpdir(), "oci-auth-"));
const PEM = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const keyFile = join(dir, "key.pem");
writeFileSync(keyFile, PEM);
writeFileSync(join(dir, "token"), "eyJ.session.token");

function configFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const withRegion = configFile(
  "config",
  `[DEFAULT]
user=ocid1.user.oc1..u
fingerprint=11:22
tenancy=ocid1.tenancy.oc1..t
region=eu-frankfurt-1
key_file=${keyFile}

[OTHER]
user=ocid1.user.oc1..other
`,
);
const noRegion = configFile("config-no-region", `[DEFAULT]\nuser=u1\nfingerprint=f1\ntenancy=t1\nkey_file=${keyFile}\n`);
const session = configFile(
  "config-session",
  `[SESSION]\nfingerprint=f2\ntenancy=t2\nregion=us-ashburn-1\nkey_file=${keyFile}\nsecurity_token_file=${join(dir, "token")}\n`,
);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

const keyId = (p: unknown) => (p as AuthenticationDetailsProvider).getKeyId();

describe("api_key", () => {
  it("reads the profile through the SDK's config-file provider (values of DEFAULT inherited)", async () => {
    const source = createAuthSource({ kind: "api_key", configFile: withRegion });
    expect(source.region).toBe("eu-frankfurt-1");
    expect(await keyId(source.provider)).toBe("ocid1.tenancy.oc1..t/ocid1.user.oc1..u/11:22");
    const other = createAuthSource({ kind: "api_key", configFile: withRegion, profile: "OTHER" });
    expect(await keyId(other.provider)).toBe("ocid1.tenancy.oc1..t/ocid1.user.oc1..other/11:22");
  });

  it("takes a profile without region (the region then comes from the options)", async () => {
    const source = createAuthSource({ kind: "api_key", configFile: noRegion });
    expect(source.region).toBeUndefined();
    expect(await keyId(source.provider)).toBe("t1/u1/f1");
  });

  it("signs control-plane requests with the profile's key", async () => {
    const server = await startRecordingServer(() => json(404, { code: "NotAuthorizedOrNotFound", message: "no" }));
    const client = createDigitalTwinsClient({ auth: { kind: "api_key", configFile: withRegion }, endpoint: server.url });
    await client.getModel("ocid1.m").catch(() => {});
    expect(String(server.requests[0]?.headers.authorization)).toContain('keyId="ocid1.tenancy.oc1..t/ocid1.user.oc1..u/11:22"');
    await client.close?.();
    await server.close();
  });

  it("names the setting and the file when the config file cannot be read", () => {
    const err = thrown(() => createAuthSource({ kind: "api_key", configFile: join(dir, "missing") }));
    expect(err).toBeInstanceOf(OciInvalidArgumentError);
    expect(err).toMatchObject({ field: "auth.configFile" });
    expect((err as Error).message).toContain(join(dir, "missing"));
    expect((err as Error).message).toContain("ENOENT");
  });

  it("names the profile and the file when the profile is missing or incomplete", () => {
    const missing = thrown(() => createAuthSource({ kind: "api_key", configFile: withRegion, profile: "NOPE" }));
    expect(missing).toMatchObject({ field: "auth.profile" });
    expect((missing as Error).message).toContain("[NOPE]");
    expect((missing as Error).message).toContain(withRegion);
    const incomplete = configFile("config-incomplete", "[DEFAULT]\nuser=u\ntenancy=t\n");
    expect(thrown(() => createAuthSource({ kind: "api_key", configFile: incomplete }))).toMatchObject({
      field: "auth.profile",
      message: expect.stringContaining("has no fingerprint"),
    });
  });

  it("names key_file when the key cannot be read, never quoting a key", () => {
    const badKey = configFile("config-bad-key", `[DEFAULT]\nuser=u\nfingerprint=f\ntenancy=t\nkey_file=${join(dir, "nokey.pem")}\n`);
    const err = thrown(() => createAuthSource({ kind: "api_key", configFile: badKey }));
    expect(err).toMatchObject({ field: "auth.profile" });
    expect((err as Error).message).toContain(`key_file ${join(dir, "nokey.pem")}`);
    const ok = thrown(() => createAuthSource({ kind: "api_key", configFile: withRegion, profile: "NOPE" }));
    expect((ok as Error).message).not.toContain("PRIVATE KEY");
  });
});

describe("other kinds", () => {
  it("security_token: signs as ST$<token> from the profile's security_token_file", async () => {
    const source = createAuthSource({ kind: "security_token", configFile: session, profile: "SESSION" });
    expect(await keyId(source.provider)).toBe("ST$eyJ.session.token");
    expect(source.region).toBe("us-ashburn-1");
  });

  it("security_token: names the missing security_token_file", () => {
    expect(thrown(() => createAuthSource({ kind: "security_token", configFile: withRegion }))).toMatchObject({
      field: "auth.profile",
      message: expect.stringContaining("has no security_token_file"),
    });
  });

  it("api_key_inline: the key as PEM; not a PEM is refused naming the field, not the value", async () => {
    const source = createAuthSource({
      kind: "api_key_inline",
      tenancy: "t",
      user: "u",
      fingerprint: "f",
      privateKeyPem: PEM,
      region: "eu-paris-1",
    });
    expect(await keyId(source.provider)).toBe("t/u/f");
    expect(source.region).toBe("eu-paris-1");
    const err = thrown(() =>
      createAuthSource({ kind: "api_key_inline", tenancy: "t", user: "u", fingerprint: "f", privateKeyPem: "secret-ish" }),
    );
    expect(err).toMatchObject({ field: "auth.privateKeyPem" });
    expect((err as Error).message).not.toContain("secret-ish");
  });

  it("resource_principal and workload_identity outside their environment: OciInvalidArgumentError on auth", () => {
    expect(thrown(() => createAuthSource({ kind: "resource_principal" }))).toMatchObject({
      name: "OciInvalidArgumentError",
      field: "auth",
    });
    expect(thrown(() => createAuthSource({ kind: "workload_identity" }))).toMatchObject({ name: "OciInvalidArgumentError", field: "auth" });
  });

  it("instance_principal: the provider is built on the first call, not at construction", () => {
    const source = createAuthSource({ kind: "instance_principal" });
    expect(source.provider).toBeInstanceOf(Promise);
    (source.provider as Promise<unknown>).catch(() => {});
  });
});

describe("parseOciConfig", () => {
  it("reads sections, keys and comments", () => {
    const profiles = parseOciConfig("# c\n[DEFAULT]\n user = u \n;x\n[B]\nkey_file=~/k.pem\n");
    expect(profiles.get("DEFAULT")?.get("user")).toBe("u");
    expect(profiles.get("B")?.get("key_file")).toBe("~/k.pem");
  });
});

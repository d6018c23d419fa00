import { describe, expect, it } from "vitest";
import { CliError, EXIT } from "./exit.js";
import { type GlobalFlags, parseProfileFile, resolveSettings } from "./settings.js";

const FILE = "/home/op/.config/meridian/config.yaml";
const PROFILE_FILE = `current: dev
profiles:
  dev:
    gateway: http://dev.example:8080
    apiKey: mrd_profile_key
    output: yaml
    timeout: 5
  prod:
    gateway: https://prod.example
    apiKeyFile: /keys/prod
    protocol: grpc
`;

function resolve(flags: GlobalFlags, env: Record<string, string> = {}, files: Record<string, string> = { [FILE]: PROFILE_FILE }) {
  return resolveSettings({
    flags,
    env: { HOME: "/home/op", ...env },
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
      return text;
    },
  });
}

function usageError(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.usage);
    return err as CliError;
  }
  throw new Error("no error thrown");
}

describe("settings: flag > environment > profile > default", () => {
  it("takes the defaults without flags, environment or profile file", () => {
    const s = resolve({}, {}, {});
    expect(s.gateway.href).toBe("http://127.0.0.1:8080/");
    expect(s.credential).toEqual({ kind: "none" });
    expect(s.output).toBe("table");
    expect(s.timeoutMs).toBe(30_000);
    expect(s.protocol).toBe("connect");
    expect(s.profile).toBeUndefined();
  });

  it("takes the current profile over the defaults", () => {
    const s = resolve({});
    expect(s.gateway.href).toBe("http://dev.example:8080/");
    expect(s.credential).toEqual({ kind: "api-key", value: "mrd_profile_key" });
    expect(s.output).toBe("yaml");
    expect(s.timeoutMs).toBe(5000);
    expect(s.profile).toEqual({ name: "dev", file: FILE });
  });

  it("takes the environment over the profile", () => {
    const s = resolve(
      {},
      { MERIDIAN_GATEWAY_URL: "http://env.example:9", MERIDIAN_API_KEY: "mrd_env_key", MERIDIAN_OUTPUT: "json", MERIDIAN_TIMEOUT: "7" },
    );
    expect(s.gateway.href).toBe("http://env.example:9/");
    expect(s.credential).toEqual({ kind: "api-key", value: "mrd_env_key" });
    expect(s.output).toBe("json");
    expect(s.timeoutMs).toBe(7000);
  });

  it("takes the flags over the environment", () => {
    const s = resolve(
      { gateway: "http://flag.example:1", apiKey: "mrd_flag_key", output: "table", timeout: "1.5" },
      { MERIDIAN_GATEWAY_URL: "http://env.example:9", MERIDIAN_API_KEY: "mrd_env_key", MERIDIAN_OUTPUT: "json" },
    );
    expect(s.gateway.href).toBe("http://flag.example:1/");
    expect(s.credential).toEqual({ kind: "api-key", value: "mrd_flag_key" });
    expect(s.output).toBe("table");
    expect(s.timeoutMs).toBe(1500);
  });

  it("decides the credential at the first level naming one: a flag token beats an environment key, an environment key file beats the profile's key", () => {
    expect(resolve({ token: "eyJ.flag" }, { MERIDIAN_API_KEY: "mrd_env_key" }).credential).toEqual({ kind: "token", value: "eyJ.flag" });
    const files = { [FILE]: PROFILE_FILE, "/run/key": "mrd_from_file\n" };
    expect(resolve({}, { MERIDIAN_API_KEY_FILE: "/run/key" }, files).credential).toEqual({ kind: "api-key", value: "mrd_from_file" });
  });

  it("picks a profile by flag over MERIDIAN_PROFILE over the file's current, and reads its key file", () => {
    const files = { [FILE]: PROFILE_FILE, "/keys/prod": "mrd_prod_key\n" };
    const byEnv = resolve({}, { MERIDIAN_PROFILE: "prod" }, files);
    expect(byEnv.profile?.name).toBe("prod");
    expect(byEnv.credential).toEqual({ kind: "api-key", value: "mrd_prod_key" });
    expect(byEnv.protocol).toBe("grpc");
    expect(resolve({ profile: "dev" }, { MERIDIAN_PROFILE: "prod" }, files).profile?.name).toBe("dev");
  });

  it("reads the profile file from $MERIDIAN_CONFIG", () => {
    const s = resolve(
      {},
      { MERIDIAN_CONFIG: "/etc/meridian.yaml" },
      { "/etc/meridian.yaml": "profiles:\n  x:\n    gateway: http://x:1\ncurrent: x\n" },
    );
    expect(s.gateway.href).toBe("http://x:1/");
  });

  it("turns colour off with --no-color or NO_COLOR", () => {
    expect(resolve({}, {}, {}).colour).toBe(true);
    expect(resolve({ color: false }, {}, {}).colour).toBe(false);
    expect(resolve({}, { NO_COLOR: "1" }, {}).colour).toBe(false);
  });

  it("refuses bad values, naming where they came from", () => {
    expect(usageError(() => resolve({ gateway: "ftp://x" })).message).toMatch(/--gateway/);
    expect(usageError(() => resolve({}, { MERIDIAN_GATEWAY_URL: "not a url" })).message).toMatch(/MERIDIAN_GATEWAY_URL/);
    expect(usageError(() => resolve({ timeout: "0" })).message).toMatch(/--timeout/);
    expect(usageError(() => resolve({ timeout: "99999" })).message).toMatch(/--timeout/);
    expect(usageError(() => resolve({ apiKey: "a", token: "b" })).message).toMatch(/--api-key and --token/);
    expect(usageError(() => resolve({ apiKeyFile: "/nope" })).message).toMatch(/--api-key-file: cannot read \/nope/);
    expect(usageError(() => resolve({ profile: "staging" })).message).toMatch(
      /profile "staging" is not in .*config\.yaml \(known: dev, prod\)/,
    );
    expect(usageError(() => resolve({ certFile: "/c.pem" })).message).toMatch(/--cert-file and --key-file/);
  });
});

describe("profile file errors name the file and the key", () => {
  const bad = (text: string) => usageError(() => parseProfileFile(text, FILE)).message;

  it("names an unknown setting of a profile", () => {
    expect(bad("profiles:\n  dev:\n    gatway: http://x\n")).toMatch(`${FILE}: profiles.dev.gatway: unknown setting`);
  });
  it("names a wrongly typed setting", () => {
    expect(bad("profiles:\n  dev:\n    timeout: fast\n")).toMatch(`${FILE}: profiles.dev.timeout: must be seconds`);
    expect(bad("profiles:\n  dev:\n    insecure: yes please\n")).toMatch(`${FILE}: profiles.dev.insecure: must be true or false`);
    expect(bad("profiles:\n  dev:\n    output: xml\n")).toMatch(`${FILE}: profiles.dev.output: must be table | json | yaml`);
  });
  it("names two credentials in one profile", () => {
    expect(bad("profiles:\n  dev:\n    apiKey: a\n    token: b\n")).toMatch(`${FILE}: profiles.dev: one of apiKey, apiKeyFile, token`);
  });
  it("names a current profile that does not exist, an unknown top-level key and broken YAML", () => {
    expect(bad("current: gone\nprofiles: {}\n")).toMatch(`${FILE}: current: profile "gone"`);
    expect(bad("profile: {}\n")).toMatch(`${FILE}: unknown key "profile"`);
    expect(bad("profiles: [\n")).toMatch(`${FILE}: not valid YAML`);
  });
  it("reads an empty file as no profiles", () => {
    expect(parseProfileFile("", FILE)).toEqual({ current: undefined, profiles: {} });
  });
});

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type DeclaredRules, parseEndpoints } from "./declared.js";

const rules: DeclaredRules = { allowInsecure: false, secretEnvPrefix: "OMF_SECRET_", secretDir: "/run/secrets" };

describe("endpoints file", () => {
  it("names the entry and field of every problem, and accepts both shapes", () => {
    expect(parseEndpoints([{ id: "eds", kind: "eds", url: "http://localhost:5590" }], { hasKey: false, rules })).toHaveLength(1);
    expect(
      parseEndpoints({ endpoints: [{ id: "eds", kind: "EDS", url: "http://localhost:5590" }] }, { hasKey: false, rules })[0]?.settings.kind,
    ).toBe("eds");
    expect(() =>
      parseEndpoints(
        [
          { id: "a", kind: "eds", url: "http://localhost", bogus: 1 },
          { id: "a", kind: "pi", url: "https://pi", username: "u", password: 5 },
        ],
        { hasKey: true, rules },
      ),
    ).toThrow(/endpoints\[0\]\.bogus: unknown setting.*endpoints\[1\]\.id: duplicates endpoints\[0\]\.id.*endpoints\[1\]\.password/);
    expect(() => parseEndpoints({}, { hasKey: true, rules })).toThrow(/OMF_ENDPOINTS_FILE/);
  });

  it("insecure settings and CA paths follow the operator's settings here too", () => {
    const pi = { id: "pi", kind: "pi", url: "http://pi/piwebapi", allowHttp: true, username: "u", password: "p" };
    expect(() => parseEndpoints([pi], { hasKey: true, rules })).toThrow(
      /endpoints\[0\]\.allowHttp: plain http is refused unless the operator sets OMF_ALLOW_INSECURE_ENDPOINTS=true/,
    );
    expect(parseEndpoints([pi], { hasKey: true, rules: { ...rules, allowInsecure: true } })).toHaveLength(1);
    expect(() =>
      parseEndpoints([{ ...pi, url: "https://pi/piwebapi", allowHttp: undefined, caPemPath: "/tmp/ca.pem" }], { hasKey: true, rules }),
    ).toThrow(/endpoints\[0\]\.caPemPath: a private CA is refused unless the operator sets OMF_CA_DIR/);
  });

  it("secret references: env names only with the prefix, files only inside the directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "omf-declared-"));
    writeFileSync(join(dir, "pw"), "secret");
    process.env.OMF_SECRET_DECLARED = "x";
    process.env.DECLARED_ELSEWHERE = "x";
    const pi = (password: unknown) => [{ id: "pi", kind: "pi", url: "https://pi/piwebapi", username: "u", password }];
    const r = { ...rules, secretDir: dir };
    expect(parseEndpoints(pi({ env: "OMF_SECRET_DECLARED" }), { hasKey: false, rules: r })[0]?.secret).toEqual({
      ref: { env: "OMF_SECRET_DECLARED" },
    });
    expect(parseEndpoints(pi({ file: join(dir, "pw") }), { hasKey: false, rules: r })).toHaveLength(1);
    expect(() => parseEndpoints(pi({ env: "DECLARED_ELSEWHERE" }), { hasKey: false, rules: r })).toThrow(
      /endpoints\[0\]\.password: environment variable DECLARED_ELSEWHERE does not start with OMF_SECRET_ENV_PREFIX/,
    );
    expect(() => parseEndpoints(pi({ file: "/etc/hostname" }), { hasKey: false, rules: r })).toThrow(
      /endpoints\[0\]\.password: the secret file must lie inside OMF_SECRET_DIR/,
    );
  });

  it("the compose quick start's file is valid under the compose settings (plain http allowed, OMF_SECRET_ references)", () => {
    const raw = JSON.parse(readFileSync(new URL("../../../deploy/compose/omf-endpoints.json", import.meta.url), "utf8"));
    process.env.OMF_SECRET_PI_PASSWORD = "meridian";
    expect(() => parseEndpoints(raw, { hasKey: true, rules })).toThrow(/allowHttp: plain http is refused/);
    expect(parseEndpoints(raw, { hasKey: true, rules: { ...rules, allowInsecure: true } }).map((e) => e.id)).toEqual(["pi-emulator"]);
  });
});

import { describe, expect, it } from "vitest";
import { validateMonitorApiOptions, validatePushSessionOptions } from "./config.js";
import { IdigiConfigError } from "./errors.js";

const SECRET = "hunter2-very-secret";

function configError(fn: () => unknown): IdigiConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IdigiConfigError);
    return err as IdigiConfigError;
  }
  throw new Error("expected a IdigiConfigError");
}

describe("validatePushSessionOptions", () => {
  it("applies defaults: TLS on 3201, verified, string monitor id accepted", () => {
    const c = validatePushSessionOptions({ host: "remotemanager.digi.com", username: "u", password: "p", monitorId: "178008" });
    expect(c).toMatchObject({ port: 3201, tls: true, insecure: false, monitorId: 178008, maxFrameSize: 4 * 1024 * 1024 });
    expect(validatePushSessionOptions({ host: "h", username: "u", password: "p", monitorId: 1, tls: false }).port).toBe(3200);
  });

  it("names every bad field and never echoes values", () => {
    const err = configError(() =>
      validatePushSessionOptions({
        host: "",
        username: SECRET,
        password: 42,
        monitorId: `x${SECRET}`,
        port: 70000,
        tls: false,
        insecure: true,
      }),
    );
    expect(err.issues.map((i) => i.field).sort()).toEqual(["host", "insecure", "monitorId", "password", "port"]);
    expect(JSON.stringify(err)).not.toContain(SECRET);
    expect(err.message).not.toContain(SECRET);
    expect(String(err.stack)).not.toContain(SECRET);
  });

  it("rejects credentials longer than a u16 length prefix, by field name", () => {
    const err = configError(() => validatePushSessionOptions({ host: "h", username: "u", password: "é".repeat(40_000), monitorId: 1 }));
    expect(err.field).toBe("password");
    expect(err.message).not.toContain("é");
  });

  it("requires monitorId within u32 and a PEM-looking ca", () => {
    expect(configError(() => validatePushSessionOptions({ host: "h", username: "u", password: "p", monitorId: 2 ** 32 })).field).toBe(
      "monitorId",
    );
    expect(configError(() => validatePushSessionOptions({ host: "h", username: "u", password: "p", monitorId: 1, ca: "nope" })).field).toBe(
      "ca",
    );
    expect(
      configError(() => validatePushSessionOptions({ host: "h", username: "u", password: "p", monitorId: 1, backoff: { initialMs: -1 } }))
        .field,
    ).toBe("backoff.initialMs");
  });
});

describe("validateMonitorApiOptions", () => {
  it("accepts a base URL and defaults", () => {
    const c = validateMonitorApiOptions({ baseUrl: "https://remotemanager.digi.com", username: "u", password: "p" });
    expect(c.baseUrl.host).toBe("remotemanager.digi.com");
    expect(c.maxAttempts).toBe(3);
  });

  it("rejects credentials in the URL without echoing them", () => {
    const err = configError(() => validateMonitorApiOptions({ baseUrl: `https://u:${SECRET}@h`, username: "u", password: SECRET }));
    expect(err.field).toBe("baseUrl");
    expect(err.message).not.toContain(SECRET);
  });

  it("names missing and malformed fields", () => {
    const err = configError(() => validateMonitorApiOptions({ baseUrl: "ftp://x", username: "a:b" }));
    expect(err.issues.map((i) => i.field).sort()).toEqual(["baseUrl", "password", "username"]);
  });
});

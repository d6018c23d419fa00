import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The roles of the contracts' access rules (meridian.auth.v1.access): a copy of service-kit's ROLES, which this package
 * cannot import (service-kit's tests depend on it); service-kit's roles.test.ts keeps the two equal. "admin" holds "*".
 */
export const TEST_ROLES = [
  "telemetry:read",
  "telemetry:publish",
  "routes:read",
  "routes:admin",
  "platform:read",
  "platform:admin",
  "status:read",
  "deadletters:read",
  "deadletters:admin",
  "metrics:read",
] as const;
export type TestRole = (typeof TEST_ROLES)[number];

/** A fixed, published key per test identity: "admin" holds every role, every other one holds just its role. */
function testKey(index: number): string {
  const id = index.toString(16).padStart(12, "0");
  const secret = createHash("sha256").update(`meridian test key ${index}`).digest("base64url");
  return `mrd_${id}_${secret}`;
}

export const TEST_KEYS: Readonly<Record<"admin" | TestRole, string>> = Object.freeze({
  admin: testKey(0),
  ...Object.fromEntries(TEST_ROLES.map((role, i) => [role, testKey(i + 1)])),
} as Record<"admin" | TestRole, string>);

/** The identities file holding TEST_KEYS, as a service's AUTH_IDENTITIES_FILE reads it. */
export function testIdentities(): { apiKeys: Array<{ id: string; name: string; sha256: string; roles: string[] }> } {
  return {
    apiKeys: Object.entries(TEST_KEYS).map(([name, key]) => ({
      id: key.slice(4, 16),
      name: `test-${name.replace(":", "-")}`,
      sha256: createHash("sha256").update(key).digest("hex"),
      roles: name === "admin" ? ["*"] : [name],
    })),
  };
}

let written: string | undefined;

/** testIdentities() written to a temporary file once per process; its path. */
export function testIdentitiesFile(): string {
  if (!written) {
    const dir = mkdtempSync(join(tmpdir(), "meridian-identities-"));
    written = join(dir, "identities.json");
    writeFileSync(written, JSON.stringify(testIdentities(), null, 2), { mode: 0o644 });
    // Readable by a container's user too (the service images run as 1000), when a test mounts it: it holds only the
    // hashes of published test keys.
    chmodSync(dir, 0o755);
  }
  return written;
}

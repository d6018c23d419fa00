import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseApplications } from "./declared.js";

const dir = mkdtempSync(join(tmpdir(), "iotc-declared-"));
const secretDir = join(dir, "secrets");
mkdirSync(secretDir);
const key = Buffer.alloc(32, 1).toString("base64");
writeFileSync(join(secretDir, "plant"), `${key}\n`);
writeFileSync(join(dir, "outside"), key);

describe("IOTC_APPLICATIONS_FILE", () => {
  it("reads applications with the group key by file reference, acks by word", () => {
    const [a] = parseApplications(
      {
        applications: [
          { id: "plant", id_scope: "0ne00000001", group_key_file: join(secretDir, "plant"), writable_property_ack: "completed" },
        ],
      },
      { secretDir },
    );
    expect(a?.settings).toMatchObject({ id: "plant", idScope: "0ne00000001", writablePropertyAck: "completed" });
    expect(a?.credential).toEqual({ kind: "group_key", groupKey: key });
  });

  it("names the entry and field of every problem, and never the key", () => {
    let message = "";
    try {
      parseApplications(
        {
          applications: [
            { id: "plant", id_scope: "0ne00000001", group_key: "short" },
            { id: "plant", id_scope: "0ne00000001" },
            { id: "other", id_scope: "0ne00000001", group_key_file: join(dir, "outside") },
            { id: "x", id_scope: "0ne1", unknown_field: 1 },
            "nope",
          ],
        },
        { secretDir, path: "apps.json" },
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("IOTC_APPLICATIONS_FILE: apps.json:");
    expect(message).toContain("applications[0].enrollment_group.group_key: must be a base64 SAS key");
    expect(message).toContain("applications[1].id: duplicates applications[0].id");
    expect(message).toContain("applications[2].group_key_file:");
    expect(message).toContain("is not inside IOTC_SECRET_DIR");
    expect(message).toMatch(/applications\[3\]: .*unknown_field/);
    expect(message).toContain("applications[4]: must be an object");
    expect(message).not.toContain(key);
  });

  it("reads a key from a Kubernetes Secret volume, whose files are links into a '..<timestamp>' directory inside it", () => {
    const volume = join(dir, "k8s-secret");
    mkdirSync(join(volume, "..2026_11_30_22_00_00.123"), { recursive: true });
    writeFileSync(join(volume, "..2026_11_30_22_00_00.123", "plant-key"), key);
    symlinkSync("..2026_11_30_22_00_00.123", join(volume, "..data"));
    symlinkSync(join("..data", "plant-key"), join(volume, "plant-key"));
    const [a] = parseApplications(
      { applications: [{ id: "plant", id_scope: "0ne00000001", group_key_file: join(volume, "plant-key") }] },
      { secretDir: volume },
    );
    expect(a?.credential).toEqual({ kind: "group_key", groupKey: key });
    // A link out of the volume is still refused.
    symlinkSync(join(dir, "outside"), join(volume, "escape"));
    expect(() =>
      parseApplications(
        { applications: [{ id: "p", id_scope: "0ne00000001", group_key_file: join(volume, "escape") }] },
        { secretDir: volume },
      ),
    ).toThrow(/is not inside IOTC_SECRET_DIR/);
  });

  it("refuses a file that is not a list", () => {
    expect(() => parseApplications({ apps: [] }, { secretDir })).toThrow(/must be \{"applications": \[\.\.\.\]\}/);
  });
});

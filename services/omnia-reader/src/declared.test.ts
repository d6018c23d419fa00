import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@meridian/service-kit";
import { describe, expect, it } from "vitest";
import { readReadersFile } from "./declared.js";

function file(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), "readers-")), "readers.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("OMNIA_READERS_FILE", () => {
  it("reads readers in proto JSON", () => {
    const [r] = readReadersFile(
      file({ readers: [{ id: "jsv", series: [{ query: { name: "JSV.*", facility: "JSV" } }], lagSeconds: 30 }] }),
    );
    expect(r).toMatchObject({ id: "jsv", lagSeconds: 30 });
  });

  it("stops the start naming the entry and the field", () => {
    const bad = file({
      readers: [
        { id: "ok", series: [{ id: "a" }] },
        { id: "x", series: [{ id: "a" }], pageSize: 0 },
      ],
    });
    expect(() => readReadersFile(bad)).toThrow(ConfigError);
    expect(() => readReadersFile(bad)).toThrow(/readers\[1\]: .*page_size: must be 1 to 100000/);
    expect(() =>
      readReadersFile(
        file({
          readers: [
            { id: "a", series: [{ id: "s" }] },
            { id: "a", series: [{ id: "s" }] },
          ],
        }),
      ),
    ).toThrow(/readers\[1\]: id: "a" is declared twice/);
    expect(() => readReadersFile(file("{"))).toThrow(/OMNIA_READERS_FILE/);
    expect(() => readReadersFile(file({ readers: [{ id: "a", unknownField: 1 }] }))).toThrow(/readers\[0\]/);
  });
});

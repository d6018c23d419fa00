import { describe, expect, it } from "vitest";
import { platformAreas } from "./program.js";

const argv = (...args: string[]) => ["node", "meridian", ...args];

describe("platform areas loaded for a command line", () => {
  it("none for the mesh verbs, whatever global options come first", async () => {
    expect(await platformAreas(argv("status"))).toHaveLength(0);
    expect(await platformAreas(argv("--gateway", "http://x:1", "-o", "json", "dlq", "list"))).toHaveLength(0);
  });

  it("only the area named", async () => {
    const [omf, ...rest] = await platformAreas(argv("--profile", "prod", "omf", "send"));
    expect(rest).toHaveLength(0);
    expect(omf?.name).toBe("registerOmf");
  });

  it("all of them for help, completion and a verb commander must call unknown", async () => {
    const names = (await platformAreas(argv("--help"))).map((r) => r.name);
    expect(names).toEqual(["registerOmf", "registerIdigi", "registerIotc", "registerOmnia", "registerTwin"]);
    expect(await platformAreas(argv("completion", "bash"))).toHaveLength(5);
    expect(await platformAreas(argv("stauts"))).toHaveLength(5);
  });
});

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  EndpointKind,
  EndpointResultSchema,
  EndpointSchema,
  OmfAction,
  OmfMessageType,
  OmfSenderService,
  type UpdateEndpointRequest,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { OMF_CONTAINERS_JSON, OMF_DATA_JSON, OMF_TYPES_JSON, SEED_POINTS } from "@meridian/fixtures/omf-seed";
import { beforeEach, describe, expect, it } from "vitest";
import { EXIT } from "../kit/exit.js";
import { registerOmf } from "./omf.js";
import { runVerb } from "./testdata/harness.js";

/**
 * An OMF endpoint behind OmfSenderService as far as send and verify see it: SendOmf stores what it is sent (one
 * record per request body), PI Web API's read path names a container's points as PI does (one point for a type with one
 * value, `container.property` otherwise), Data Hub / EDS list types and streams and answer each stream's last event.
 */
class FakeOmf {
  kind: EndpointKind = EndpointKind.PI;
  requests: Array<{ messageType: OmfMessageType; action: OmfAction; body: unknown[]; endpointIds: string[] }> = [];
  types = new Map<string, Record<string, unknown>>();
  containers = new Map<string, string>();
  last = new Map<string, Record<string, unknown>>();
  failOn?: string;
  updates: UpdateEndpointRequest[] = [];

  routes = (router: ConnectRouter) =>
    router.service(OmfSenderService, {
      getEndpoint: (req) => {
        if (req.id !== "plant") throw new ConnectError(`endpoint ${req.id} not found`, Code.NotFound);
        return {
          endpoint: create(EndpointSchema, {
            id: "plant",
            kind: this.kind,
            url: "https://pi.example/piwebapi",
            revision: 3n,
            hasSecret: true,
            origin: "api",
          }),
        };
      },
      updateEndpoint: (req) => {
        this.updates.push(req);
        return { endpoint: req.endpoint };
      },
      listEndpoints: () => ({
        endpoints: [
          create(EndpointSchema, {
            id: "plant",
            kind: EndpointKind.PI,
            url: "https://pi.example/piwebapi",
            revision: 3n,
            hasSecret: true,
            origin: "api",
          }),
          create(EndpointSchema, {
            id: "edge",
            kind: EndpointKind.EDS,
            url: "http://localhost:5590",
            omfVersion: "1.1",
            revision: 1n,
            origin: "file",
            insecureSettings: ["http_url"],
          }),
        ],
      }),
      sendOmf: (req) => {
        const body = JSON.parse(req.body) as Record<string, unknown>[];
        this.requests.push({ messageType: req.messageType, action: req.action, body, endpointIds: req.endpointIds });
        for (const o of body) {
          if (this.failOn && o.id === this.failOn)
            return {
              results: req.endpointIds.map((endpointId) =>
                create(EndpointResultSchema, { endpointId, ok: false, httpStatus: 400, errorKind: "bad_request", error: `bad ${o.id}` }),
              ),
            };
          if (req.messageType === OmfMessageType.TYPE) this.types.set(String(o.id), o);
          if (req.messageType === OmfMessageType.CONTAINER) this.containers.set(String(o.id), String(o.typeid));
          if (req.messageType === OmfMessageType.DATA) {
            const values = o.values as Record<string, unknown>[];
            this.last.set(String(o.containerid), values[values.length - 1]!);
          }
        }
        return {
          results: req.endpointIds.map((endpointId) =>
            create(EndpointResultSchema, { endpointId, ok: true, httpStatus: 200, requests: 1 }),
          ),
        };
      },
      listPoints: (req) => {
        const prefix = req.nameFilter.replace(/\*$/, "");
        const points = [...this.containers.entries()]
          .filter(([c]) => c.startsWith(prefix))
          .flatMap(([c, t]) => {
            const props = Object.keys((this.types.get(t)?.properties ?? {}) as object).filter((p) => p !== "Timestamp");
            return props.length === 1 ? [c] : props.map((p) => `${c}.${p}`);
          });
        return { points: points.map((name) => ({ name, id: `W${name}`, type: "Float64" })) };
      },
      readValues: (req) => {
        if (this.kind === EndpointKind.PI) {
          const [c, p] = req.point.split(".");
          const v = this.last.get(c!);
          if (!v) return { values: [{ timestamp: "", valueJson: JSON.stringify({ Name: "Pt Created", Value: 0 }) }] };
          const key = p ?? Object.keys(v).find((k) => k !== "Timestamp")!;
          return { values: [{ timestamp: String(v.Timestamp), valueJson: JSON.stringify(v[key]) }] };
        }
        const v = this.last.get(req.point);
        if (!v) throw new ConnectError(`no stream ${req.point}`, Code.NotFound);
        return {
          values: [
            { timestamp: String(v.Timestamp), valueJson: JSON.stringify({ ...v, Timestamp: `${String(v.Timestamp).slice(0, -1)}0Z` }) },
          ],
        };
      },
      listTypes: (req) => ({ types: [...this.types.keys()].filter((t) => t === req.idFilter).map((id) => ({ id, json: "{}" })) }),
      listContainers: (req) => ({
        containers: [...this.containers.entries()].filter(([c]) => c === req.idFilter).map(([id, typeId]) => ({ id, typeId, json: "{}" })),
      }),
    });
}

let dir: string;
let omf: FakeOmf;
const seed = () => ["OMF-Types.json", "OMF-Containers.json", "OMF-Data.json"].map((f) => join(dir, f));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "meridian-omf-"));
  writeFileSync(join(dir, "OMF-Types.json"), OMF_TYPES_JSON);
  writeFileSync(join(dir, "OMF-Containers.json"), OMF_CONTAINERS_JSON);
  writeFileSync(join(dir, "OMF-Data.json"), OMF_DATA_JSON);
  omf = new FakeOmf();
});

const run = (args: string[], format: "table" | "json" | "yaml" = "table") => runVerb(registerOmf, omf.routes, args, { format });

describe("omf send", () => {
  it("sends the seed's files as program.py does: one object per request, types, containers, then each iteration's data", async () => {
    const r = await run(["omf", "send", "-e", "plant", "--iterations", "2", "--interval", "0", ...seed().reverse()]);
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
    expect(omf.requests.map((q) => q.messageType)).toEqual([
      ...Array(3).fill(OmfMessageType.TYPE),
      ...Array(4).fill(OmfMessageType.CONTAINER),
      ...Array(8).fill(OmfMessageType.DATA),
    ]);
    for (const q of omf.requests) {
      expect(q.body).toHaveLength(1);
      expect(q.action).toBe(OmfAction.CREATE);
      expect(q.endpointIds).toEqual(["plant"]);
    }
    // No placeholder reached the endpoint.
    for (const q of omf.requests.filter((x) => x.messageType === OmfMessageType.DATA)) expect(JSON.stringify(q.body)).not.toContain("null");
    // The table: one row per message, its result.
    expect(r.stdout.split("\n")[0]).toMatch(/^ITER\s+FILE\s+MESSAGE\s+ACTION\s+ID\s+ENDPOINT\s+RESULT\s+HTTP\s+ERROR$/);
    expect(r.stdout).toMatch(/OMF-Types\.json\s+type\s+create\s+FirstDynamicType\s+plant\s+ok\s+200/);
  });

  it("-o json: one document, its sends a row per message with the endpoint's result as protobuf JSON", async () => {
    const r = await run(["omf", "send", "-e", "plant", ...seed()], "json");
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc)).toEqual(["sends"]);
    expect(doc.sends).toHaveLength(11);
    expect(doc.sends[0]).toMatchObject({
      iteration: 0,
      messageType: "type",
      action: "create",
      id: "FirstDynamicType",
      result: { endpointId: "plant", ok: true, httpStatus: 200 },
    });
  });

  it("stops at the first failed message (program.py raises) with exit 1 naming it; --keep-going sends the rest", async () => {
    omf.failOn = "SecondContainer";
    const r = await run(["omf", "send", "-e", "plant", ...seed()]);
    expect(r.code).toBe(EXIT.failed);
    expect(r.error).toBe("1 message failed; first: container SecondContainer (OMF-Containers.json) at plant: bad SecondContainer");
    expect(omf.requests).toHaveLength(5);
    omf.requests = [];
    const k = await run(["omf", "send", "-e", "plant", "--keep-going", ...seed()]);
    expect(k.code).toBe(EXIT.failed);
    expect(omf.requests).toHaveLength(11);
  });

  it("refuses a bad file or flag before sending anything (exit 2, naming it)", async () => {
    writeFileSync(join(dir, "broken.json"), "[{");
    const bad = await run(["omf", "send", "-e", "plant", join(dir, "broken.json")]);
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.error).toContain("broken.json: not JSON");
    const missing = await run(["omf", "send", "-e", "plant", join(dir, "nope.json")]);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.error).toContain("nope.json: cannot be read (ENOENT)");
    const iterations = await run(["omf", "send", "-e", "plant", "--iterations", "0", ...seed()]);
    expect(iterations.code).toBe(EXIT.usage);
    expect(iterations.error).toContain('--iterations: "0" is not a whole number from 1 to 100000');
    const action = await run(["omf", "send", "-e", "plant", "--action", "upsert", ...seed()]);
    expect(action.code).toBe(EXIT.usage);
    expect(action.error).toContain('--action: "upsert" is not one of create, update, delete');
    const noEndpoint = await run(["omf", "send", ...seed()]);
    expect(noEndpoint.code).toBe(EXIT.usage);
    expect(omf.requests).toEqual([]);
  });
});

describe("omf verify", () => {
  async function sendRecorded(): Promise<string[]> {
    const record = join(dir, "sent.json");
    const r = await run(["omf", "send", "-e", "plant", "--iterations", "2", "--interval", "0", "--record", record, ...seed()]);
    expect(r.code).toBe(0);
    return [join(dir, "OMF-Types.json"), join(dir, "OMF-Containers.json"), record];
  }

  it("PI: every seed point holds the last value sent: exit 0", async () => {
    const files = await sendRecorded();
    const r = await run(["omf", "verify", "-e", "plant", ...files]);
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
    for (const p of SEED_POINTS) expect(r.stdout).toMatch(new RegExp(`point\\s+${p.replace(".", "\\.")}\\s+ok`));
    expect(r.stdout).toContain("verified:");
  });

  it("PI: a value tampered at the endpoint fails with exit 1, naming the point and both values", async () => {
    const files = await sendRecorded();
    const sent = omf.last.get("ThirdContainer")!.NumberProperty2;
    omf.last.set("ThirdContainer", { ...omf.last.get("ThirdContainer")!, NumberProperty2: -1 });
    const r = await run(["omf", "verify", "-e", "plant", ...files]);
    expect(r.code).toBe(EXIT.failed);
    expect(r.error).toBe(`verify failed: 1 difference\n  ThirdContainer.NumberProperty2: expected ${JSON.stringify(sent)}, found -1`);
    expect(r.stdout).toMatch(/value\s+ThirdContainer\.NumberProperty2\s+DIFFERS/);
  });

  it("PI: a point with no value (Pt Created) fails, naming it", async () => {
    const files = await sendRecorded();
    omf.last.delete("FirstContainer");
    const r = await run(["omf", "verify", "-e", "plant", ...files], "json");
    expect(r.code).toBe(EXIT.failed);
    expect(r.error).toContain("point FirstContainer: holds no value (Pt Created)");
    const doc = JSON.parse(r.stdout);
    expect(doc.passed).toBe(false);
    expect(doc.checks).toContainEqual({
      what: "point",
      name: "FirstContainer",
      ok: false,
      detail: "holds no value (Pt Created)",
    });
  });

  it("EDS: types, streams and each stream's last event compared; a missing stream and a tampered value are both named", async () => {
    omf.kind = EndpointKind.EDS;
    const files = await sendRecorded();
    expect((await run(["omf", "verify", "-e", "plant", ...files])).code).toBe(0);
    omf.containers.delete("SecondContainer");
    omf.last.set("FourthContainer", { ...omf.last.get("FourthContainer")!, IntegerEnum: 7 });
    const r = await run(["omf", "verify", "-e", "plant", ...files]);
    expect(r.code).toBe(EXIT.failed);
    expect(r.error).toContain("container SecondContainer: not found");
    expect(r.error).toMatch(/FourthContainer\.IntegerEnum: expected \d, found 7/);
  });

  it("the record send wrote is the seed-style data verify reads", async () => {
    await sendRecorded();
    const doc = JSON.parse(readFileSync(join(dir, "sent.json"), "utf8"));
    expect(doc.map((g: { messagetype: string }) => g.messagetype)).toEqual(["type", "container", "data"]);
    expect(doc[2].messages).toHaveLength(4);
  });
});

describe("omf endpoints", () => {
  it("list: a table for people, the endpoints as proto JSON for scripts", async () => {
    const t = await run(["omf", "endpoints", "list"]);
    const lines = t.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+KIND\s+URL\s+OMF\s+SECRET\s+ORIGIN\s+REVISION\s+INSECURE$/);
    expect(lines[1]).toMatch(/^plant\s+PI\s+https:\/\/pi\.example\/piwebapi\s+1\.2\s+yes\s+api\s+3$/);
    expect(lines[2]).toMatch(/^edge\s+EDS\s+http:\/\/localhost:5590\s+1\.1\s+no\s+file\s+1\s+http_url$/);
    const j = JSON.parse((await run(["omf", "endpoints", "list"], "json")).stdout);
    expect(j.endpoints).toHaveLength(2);
    expect(j.endpoints[0]).toMatchObject({ id: "plant", kind: "ENDPOINT_KIND_PI", revision: "3", hasSecret: true });
  });

  it("update reads the endpoint, changes only the flags given, keeps the secret unsent, writes at the revision read", async () => {
    const r = await run(["omf", "endpoints", "update", "plant", "--timeout-ms", "5000", "--no-compression"]);
    expect(r.error).toBeUndefined();
    expect(omf.updates).toHaveLength(1);
    const u = omf.updates[0]!;
    expect(u.revision).toBe(3n);
    expect(u.endpoint).toMatchObject({
      id: "plant",
      kind: EndpointKind.PI,
      url: "https://pi.example/piwebapi",
      timeoutMs: 5000,
      disableCompression: true,
      secret: "",
    });
    expect(u.endpoint?.hasSecret).toBe(false);
    await run(["omf", "endpoints", "update", "plant", "--revision", "2", "--url", "https://pi2.example/piwebapi"]);
    expect(omf.updates[1]).toMatchObject({
      revision: 2n,
      endpoint: { url: "https://pi2.example/piwebapi", timeoutMs: 0, disableCompression: false },
    });
  });

  it("get of an unknown id exits 5", async () => {
    const r = await run(["omf", "endpoints", "get", "nope"]);
    expect(r.code).toBe(EXIT.notFound);
  });

  it("create without --kind is a usage error; --timeout-ms out of bounds too", async () => {
    expect((await run(["omf", "endpoints", "create", "x", "--url", "https://h"])).code).toBe(EXIT.usage);
    const r = await run(["omf", "endpoints", "create", "x", "--kind", "pi", "--url", "https://h", "--timeout-ms", "0"]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.error).toContain("--timeout-ms");
  });
});

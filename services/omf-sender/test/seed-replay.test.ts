import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  DefinitionKind,
  EndpointKind,
  type EndpointSchema,
  OmfMessageType,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { SEED_CONTAINERS, SEED_POINTS, SEED_TYPES, type SeedDatum, seedBody, seedData } from "@meridian/fixtures/omf-seed";
import { codeOf, json, type RecordingServer, startRecordingServer } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import { apiClient, getJson, type NatsServerHandle, startEmulator, startNatsServer, startSender } from "./harness.js";

/**
 * The OMF seed (osisoft/sample-omf-basic_api-python) replayed through omf-sender's API against the OMF emulator, once
 * per kind of endpoint the seed's config takes (PI Web API, Data Hub — the seed's "OCS" —, Edge Data Store):
 * - program.py: the types one per request, then the containers one per request, then two iterations of get_data
 *   over OMF-Data.json, each datum one request; every body is the seed's own, `json.dumps([obj])` of its fixture
 *   files, sent with SendOmf; the values of the second iteration are what test.py compares against.
 * - test.py's check_creations through the read-back RPCs: PI, points by `{container}*` name filter (ListPoints) and
 *   each one's value (ReadValues last): written (not `Pt Created`) and equal to what was sent (a dotted name compares
 *   that property, a plain one every property but Timestamp); Data Hub / EDS, each type (ListTypes), each stream
 *   (ListContainers) and each stream's last event (ReadValues last), whose values equal what was sent.
 * - test.py's cleanup: DeleteDefinitions, containers before types, 404 / 409 taken as gone; nothing is left.
 */
const LAB = { OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1", OMF_LINGER_MS: "50" };

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  sender = await startSender(nats, LAB);
  api = apiClient(sender);
});
afterAll(async () => {
  await sender?.stop();
  await emu?.stop();
  await nats?.stop();
});

interface Mode {
  name: string;
  /** The emulator's state scope (types as they were received; ADH tenant and namespace lower-cased). */
  scope: string;
  /** url: the path under the emulator's. */
  endpoint: MessageInitShape<typeof EndpointSchema> & { id: string; url: string };
}

// program.py speaks OMF 1.1 (`omfVersion = '1.1'`) to every endpoint; test.py reads back with Accept-Verbosity: verbose.
const MODES: Mode[] = [
  {
    name: "PI Web API",
    scope: "pi",
    endpoint: {
      id: "seed-pi",
      kind: EndpointKind.PI,
      url: "/piwebapi",
      allowHttp: true,
      username: "meridian",
      secret: "meridian",
      dataServerName: "MERIDIAN-PI",
      omfVersion: "1.1",
      acceptVerbosity: "verbose",
    },
  },
  {
    name: "Data Hub",
    scope: "adh/t-0001/samples",
    endpoint: {
      id: "seed-adh",
      kind: EndpointKind.ADH,
      url: "",
      allowHttp: true,
      tenantId: "t-0001",
      namespaceId: "Samples",
      clientId: "meridian-client",
      secret: "meridian-secret",
      omfVersion: "1.1",
    },
  },
  { name: "Edge Data Store", scope: "eds", endpoint: { id: "seed-eds", kind: EndpointKind.EDS, url: "", omfVersion: "1.1" } },
];

/** program.py's main(test=True) to one endpoint; returns the second iteration's data per container (last_sent_values). */
async function program(endpointId: string): Promise<Map<string, Record<string, unknown>>> {
  const send = async (messageType: OmfMessageType, obj: unknown) => {
    const body = seedBody([obj]);
    const res = await api.sendOmf({ messageType, body, endpointIds: [endpointId] });
    expect(res.results, body).toHaveLength(1);
    // send_message_to_omf_endpoint: 409 is fine, any other non-2xx raises.
    expect(res.results[0]?.ok, `${body}: ${res.results[0]?.error}`).toBe(true);
  };
  for (const t of SEED_TYPES) await send(OmfMessageType.TYPE, t);
  for (const c of SEED_CONTAINERS) await send(OmfMessageType.CONTAINER, c);
  const lastSent = new Map<string, Record<string, unknown>>();
  const start = Date.now();
  for (let count = 0; count < 2; count++) {
    const data: SeedDatum[] = seedData(count, new Date(start + count * 1000));
    for (const datum of data) {
      await send(OmfMessageType.DATA, datum);
      if (count === 1) lastSent.set(datum.containerid, datum.values[0]!);
    }
  }
  return lastSent;
}

/** SDS keeps timestamps to the 100 ns tick: the instant as ticks since the epoch, whatever the digits. */
function ticks(ts: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) throw new Error(`not an ISO timestamp: ${ts}`);
  return BigInt(Date.parse(`${m[1]}Z`)) * 10_000n + BigInt((m[2] ?? "").padEnd(7, "0").slice(0, 7));
}

/** test.py's compare_data for a PI point: a dotted name compares that property, a plain one every non-Timestamp value. */
function comparePi(pointName: string, value: unknown, sent: Record<string, unknown>) {
  const [, prop] = pointName.split(".");
  if (prop !== undefined) expect(value, pointName).toEqual(sent[prop]);
  else for (const [k, v] of Object.entries(sent)) if (k !== "Timestamp") expect(value, `${pointName} ${k}`).toEqual(v);
}

describe("the OMF seed's program.py and test.py, replayed through the API", () => {
  it.each(MODES)(
    "$name: program.py sends the seed's fixtures, test.py's checks pass on the read-back RPCs, its cleanup leaves nothing",
    async (mode) => {
      const id = mode.endpoint.id;
      await api.createEndpoint({ endpoint: { ...mode.endpoint, url: `${emu.url}${mode.endpoint.url}` } });

      // Steps 1–7: program.py.
      const lastSent = await program(id);
      expect([...lastSent.keys()]).toEqual(SEED_CONTAINERS.map((c) => c.id));
      // The endpoint received the seed's types as the seed has them (descriptions and names included).
      const state = await getJson(`${emu.url}/_emulator/state?values=false&scope=${mode.scope}`);
      expect(state.status).toBe(200);
      const scope = state.body.scopes[mode.scope];
      for (const t of SEED_TYPES) expect(scope.types[t.id], t.id).toEqual(t);

      // Step 8: test.py's check_creations, through ListPoints / ReadValues / ListTypes / ListContainers.
      if (mode.endpoint.kind === EndpointKind.PI) {
        const seen: string[] = [];
        for (const c of SEED_CONTAINERS) {
          const points = await api.listPoints({ endpointId: id, nameFilter: `${c.id}*` });
          expect(points.points.length, c.id).toBeGreaterThan(0);
          for (const p of points.points) {
            seen.push(p.name);
            const v = await api.readValues({ endpointId: id, point: p.name, last: true });
            expect(v.noData, `${p.name} has no recorded data (Pt Created)`).toBe(false);
            expect(v.values).toHaveLength(1);
            const value = JSON.parse(v.values[0]!.valueJson);
            expect(value?.Name, p.name).not.toBe("Pt Created");
            comparePi(p.name, value, lastSent.get(c.id)!);
          }
        }
        expect(seen.sort()).toEqual([...SEED_POINTS].sort());
      } else {
        for (const t of SEED_TYPES) {
          const types = await api.listTypes({ endpointId: id, idFilter: t.id });
          expect(types.types.map((x) => x.id)).toEqual([t.id]);
        }
        for (const c of SEED_CONTAINERS) {
          const streams = await api.listContainers({ endpointId: id, idFilter: c.id });
          expect(streams.containers.map((x) => [x.id, x.typeId])).toEqual([[c.id, c.typeid]]);
        }
        for (const c of SEED_CONTAINERS) {
          const last = await api.readValues({ endpointId: id, point: c.id, last: true });
          expect(last.noData, c.id).toBe(false);
          const event = JSON.parse(last.values[0]!.valueJson) as Record<string, unknown>;
          expect(Object.keys(event).length).toBeGreaterThan(0);
          const sent = lastSent.get(c.id)!;
          // compare_data('SDS', …): every sent key but Timestamp equal; the index is the same instant (SDS keeps 100 ns ticks).
          for (const [k, v] of Object.entries(sent)) if (k !== "Timestamp") expect(event[k], `${c.id} ${k}`).toEqual(v);
          expect(ticks(String(event.Timestamp))).toBe(ticks(String(sent.Timestamp)));
        }
      }
      // Both of program.py's iterations were recorded, once each.
      const window = {
        startTime: timestampFromDate(new Date(Date.now() - 3_600_000)),
        endTime: timestampFromDate(new Date(Date.now() + 3_600_000)),
      };
      expect((await api.readValues({ endpointId: id, point: "FirstContainer", ...window })).values).toHaveLength(2);

      // Step 9: test.py's cleanup — containers, then types; 404 / 409 taken as gone.
      const listed = await api.listDefinitions({ endpointId: id });
      expect(listed.definitions.map((d) => d.id).sort()).toEqual(
        [...SEED_TYPES.map((t) => t.id), ...SEED_CONTAINERS.map((c) => c.id)].sort(),
      );
      const cleanup = await api.deleteDefinitions({ endpointId: id });
      expect(cleanup).toMatchObject({ dryRun: false, failed: 0, remaining: 0, deleted: 7 });
      expect(cleanup.results.map((r) => r.kind)).toEqual([
        ...Array(4).fill(DefinitionKind.CONTAINER),
        ...Array(3).fill(DefinitionKind.TYPE),
      ]);
      for (const r of cleanup.results) expect(["deleted", "not_found", "conflict"], `${r.id}: ${r.error}`).toContain(r.outcome);
      expect((await api.listDefinitions({ endpointId: id })).definitions).toEqual([]);

      // Nothing of the seed is left at the endpoint.
      if (mode.endpoint.kind === EndpointKind.PI) {
        expect((await api.listPoints({ endpointId: id, nameFilter: "*Container*" })).points).toEqual([]);
      } else {
        expect((await api.listTypes({ endpointId: id, idFilter: "*DynamicType" })).types).toEqual([]);
        expect((await api.listContainers({ endpointId: id, idFilter: "*Container" })).containers).toEqual([]);
        expect((await codeOf(api.readValues({ endpointId: id, point: "FirstContainer", last: true }))).code).toBe(Code.NotFound);
      }
      const after = await getJson(`${emu.url}/_emulator/state?values=false&scope=${mode.scope}`);
      expect(after.body.scopes[mode.scope].types).toEqual({});
      expect(after.body.scopes[mode.scope].containers).toEqual({});
    },
  );

  it("test.py's read-back requests: Accept-Verbosity: verbose and no omfversion, to PI Web API (with its Basic auth) and EDS", async () => {
    let rec: RecordingServer | undefined;
    rec = await startRecordingServer((req) => {
      if (req.path.startsWith("/piwebapi/dataservers?"))
        return json(200, { Links: { Points: `${rec?.url}/piwebapi/dataservers/S0/points` } });
      if (req.path.startsWith("/piwebapi/dataservers/S0/points")) return json(200, { Items: [] });
      return json(200, []);
    });
    try {
      await api.createEndpoint({
        endpoint: {
          id: "seed-pi-headers",
          kind: EndpointKind.PI,
          url: `${rec.url}/piwebapi`,
          allowHttp: true,
          username: "meridian",
          secret: "meridian",
          dataServerName: "MERIDIAN-PI",
          omfVersion: "1.1",
        },
      });
      await api.createEndpoint({ endpoint: { id: "seed-eds-headers", kind: EndpointKind.EDS, url: rec.url, omfVersion: "1.1" } });
      expect((await api.listPoints({ endpointId: "seed-pi-headers", nameFilter: "FirstContainer*" })).points).toEqual([]);
      expect((await api.listTypes({ endpointId: "seed-eds-headers", idFilter: "FirstDynamicType" })).types).toEqual([]);
      const gets = rec.requests.filter((r) => r.method === "GET");
      expect(gets.map((r) => r.path.split("?")[0])).toEqual([
        "/piwebapi/dataservers",
        "/piwebapi/dataservers/S0/points",
        "/api/v1/tenants/default/namespaces/default/Types",
      ]);
      for (const r of gets) {
        expect(r.headers["accept-verbosity"], r.path).toBe("verbose");
        expect(r.headers.omfversion, r.path).toBeUndefined();
      }
      for (const r of gets.slice(0, 2))
        expect(r.headers.authorization, r.path).toBe(`Basic ${Buffer.from("meridian:meridian").toString("base64")}`);
    } finally {
      await rec.close();
    }
  });
});

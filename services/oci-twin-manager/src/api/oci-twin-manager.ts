import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type OciTwinManagerService, TwinDataSet } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import type { OciDomains } from "../pipeline/domains.js";
import type { StoredTwin } from "../pipeline/store.js";
import { type TwinManager, type TwinState, twinProblems } from "../pipeline/twins.js";
import type { DigitalTwinsClient, JsonObject, ListOptions } from "../platform/types.js";
import {
  adapterToProto,
  DATA_SETS,
  instanceToProto,
  lifecycleOf,
  modelToProto,
  protoJson,
  sourceOf,
  twinDescription,
  twinRef,
  twinToProto,
} from "./convert.js";
import {
  DEFAULT_PAGE_SIZE,
  DEFAULT_QUERY_ROWS,
  MAX_CONTENT_PATH,
  MAX_CONTENT_PATHS,
  MAX_DEVICE_SECRET_BYTES,
  MAX_DISPLAY_NAME,
  MAX_LAST_MINUTES,
  MAX_OFFSET,
  MAX_PAGE_SIZE,
  MAX_PAGE_TOKEN,
  MAX_PAYLOAD_BYTES,
  MAX_QUERY_ROWS,
  MAX_SPEC_URI,
  Violations,
} from "./validation.js";

export interface OciTwinManagerDeps {
  twins: TwinManager;
  domains: OciDomains;
  /** The control plane as it is (the List* and GetDigitalTwinModel RPCs). */
  client: DigitalTwinsClient;
}

const DEFAULT_ENDPOINT = "iot/v1/telemetry";
/** Twins whose OCI state is read at once for a list (each is up to three control-plane calls). */
const STATE_PARALLELISM = 8;

function keyToken(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

async function states(twins: TwinManager, list: StoredTwin[]): Promise<TwinState[]> {
  const out: TwinState[] = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await twins.state(list[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(STATE_PARALLELISM, list.length) }, worker));
  return out;
}

function listPaging(v: Violations, pageSize: number, pageToken: string): void {
  v.range("page_size", pageSize, 1, MAX_PAGE_SIZE);
  v.maxLength("page_token", pageToken, MAX_PAGE_TOKEN);
}

/** What the List* RPCs of OCI's resources have in common. */
interface OciListRequest {
  iotDomainId: string;
  lifecycleState: Parameters<typeof lifecycleOf>[0];
  pageSize: number;
  pageToken: string;
}

/** meridian.oci.v1.OciTwinManagerService: manage-dt's create, query and delete of twins, their data, and OCI's lists. */
export function ociTwinManagerService({ twins, domains, client }: OciTwinManagerDeps): ServiceImpl<typeof OciTwinManagerService> {
  /** A List* request checked (`check` adds its own fields' checks) and turned into the IoT domain and the client's options. */
  const ociList = (req: OciListRequest, check: (v: Violations) => void): { iotDomainId: string; options: ListOptions } => {
    const v = new Violations();
    v.domain("iot_domain_id", req.iotDomainId);
    check(v);
    listPaging(v, req.pageSize, req.pageToken);
    v.throwIfAny();
    const lifecycleState = lifecycleOf(req.lifecycleState);
    return {
      iotDomainId: domains.resolve(req.iotDomainId),
      options: {
        ...(lifecycleState ? { lifecycleState } : {}),
        limit: req.pageSize || DEFAULT_PAGE_SIZE,
        ...(req.pageToken ? { page: req.pageToken } : {}),
      },
    };
  };

  return {
    async createTwin(req) {
      const v = new Violations();
      if (!req.twin) v.add("twin", "is required");
      else {
        for (const p of twinProblems(twinDescription(req.twin))) v.add(`twin.${p.path}`, p.reason);
        v.time("twin.source.start_time", req.twin.source?.startTime);
      }
      v.throwIfAny();
      const { twin, created } = await twins.create(twinDescription(req.twin!));
      return { twin: twinToProto(await twins.state(twin)), created };
    },

    async getTwin(req) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      v.throwIfAny();
      return { twin: twinToProto(await twins.state(await twins.resolve(twinRef(req.twin)))) };
    },

    async listTwins(req) {
      const v = new Violations();
      v.domain("iot_domain_id", req.iotDomainId);
      listPaging(v, req.pageSize, req.pageToken);
      let after = "";
      if (req.pageToken !== "") {
        after = Buffer.from(req.pageToken, "base64url").toString("utf8");
        if (after === "" || keyToken(after) !== req.pageToken) v.add("page_token", "is not a token ListTwins gave");
      }
      v.throwIfAny();
      const domain = req.iotDomainId === "" ? undefined : domains.resolve(req.iotDomainId);
      const size = req.pageSize || DEFAULT_PAGE_SIZE;
      const all = (await twins.list(domain)).filter((t) => after === "" || t.key > after);
      const page = all.slice(0, size);
      return {
        twins: (await states(twins, page)).map(twinToProto),
        nextPageToken: all.length > size ? keyToken(page[page.length - 1]!.key) : "",
      };
    },

    async deleteTwin(req) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      v.throwIfAny();
      const r = await twins.delete(twinRef(req.twin), req.force);
      return { deletedIds: r.deletedIds, kept: r.kept };
    },

    async getTwinContent(req) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      v.throwIfAny();
      return { content: protoJson(await twins.content(twinRef(req.twin), req.includeMetadata)) };
    },

    async queryTwinData(req, ctx) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      if (req.dataSet === TwinDataSet.UNSPECIFIED) v.add("data_set", "is required");
      else if (!(req.dataSet in DATA_SETS)) v.add("data_set", `unknown value ${req.dataSet}`);
      v.range("last_minutes", req.lastMinutes, 1, MAX_LAST_MINUTES);
      v.time("start_time", req.startTime);
      v.time("end_time", req.endTime);
      if (req.lastMinutes && req.startTime) v.add("last_minutes", "give last_minutes or start_time, not both");
      if (req.endTime && !req.startTime) v.add("end_time", "needs start_time");
      if (req.startTime && req.endTime && timestampDate(req.endTime) <= timestampDate(req.startTime))
        v.add("end_time", "must be after start_time");
      if (req.contentPaths.length > MAX_CONTENT_PATHS) v.add("content_paths", `at most ${MAX_CONTENT_PATHS}`);
      req.contentPaths.forEach((p, i) => {
        if (p === "" || p.length > MAX_CONTENT_PATH) v.add(`content_paths[${i}]`, `must be 1 to ${MAX_CONTENT_PATH} characters`);
      });
      if (
        req.contentPaths.length > 0 &&
        req.dataSet !== TwinDataSet.HISTORIZED &&
        req.dataSet !== TwinDataSet.SNAPSHOT &&
        req.dataSet !== TwinDataSet.UNSPECIFIED
      )
        v.add("content_paths", "only historized and snapshot rows have content paths");
      v.range("limit", req.limit, 1, MAX_QUERY_ROWS);
      if (req.offset > MAX_OFFSET) v.add("offset", `at most ${MAX_OFFSET}`);
      v.throwIfAny();
      const dataSet = DATA_SETS[req.dataSet as keyof typeof DATA_SETS];
      const page = await twins.queryData(
        twinRef(req.twin),
        {
          dataSet,
          ...(req.lastMinutes ? { lastMinutes: req.lastMinutes } : {}),
          ...(req.startTime ? { startTime: timestampDate(req.startTime) } : {}),
          ...(req.endTime ? { endTime: timestampDate(req.endTime) } : {}),
          contentPaths: req.contentPaths,
          includeContent: req.includeContent,
          limit: req.limit || DEFAULT_QUERY_ROWS,
          offset: req.offset,
          ascending: req.ascending,
        },
        ctx.signal,
      );
      return { rows: page.items.map(protoJson), hasMore: page.hasMore };
    },

    async setTwinSource(req) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      if (req.source) {
        v.range("source.poll_interval_ms", req.source.pollIntervalMs, 200, 3_600_000);
        v.time("source.start_time", req.source.startTime);
      }
      v.throwIfAny();
      const twin = await twins.setSource(twinRef(req.twin), sourceOf(req.source));
      return { twin: twinToProto(await twins.state(twin)) };
    },

    async setTwinDeviceSecret(req) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      if (Buffer.byteLength(req.deviceSecret) > MAX_DEVICE_SECRET_BYTES)
        v.add("device_secret", `over ${MAX_DEVICE_SECRET_BYTES} bytes (empty clears it)`);
      v.throwIfAny();
      const twin = await twins.setDeviceSecret(twinRef(req.twin), req.deviceSecret);
      return { twin: twinToProto(await twins.state(twin)) };
    },

    async sendTwinData(req, ctx) {
      const v = new Violations();
      v.twinRef("twin", req.twin);
      v.endpoint("endpoint", req.endpoint);
      const payload = v.jsonObject("payload", req.payload, MAX_PAYLOAD_BYTES);
      v.throwIfAny();
      await twins.sendData(twinRef(req.twin), req.endpoint || DEFAULT_ENDPOINT, payload as JsonObject, ctx.signal);
      return {};
    },

    async listDigitalTwinInstances(req) {
      const { iotDomainId, options } = ociList(req, (v) => v.maxLength("display_name", req.displayName, MAX_DISPLAY_NAME));
      const page = await client.listInstances(iotDomainId, { ...options, ...(req.displayName ? { displayName: req.displayName } : {}) });
      return { instances: page.items.map(instanceToProto), nextPageToken: page.nextPage ?? "" };
    },

    async listDigitalTwinAdapters(req) {
      const { iotDomainId, options } = ociList(req, (v) => v.maxLength("display_name", req.displayName, MAX_DISPLAY_NAME));
      const page = await client.listAdapters(iotDomainId, { ...options, ...(req.displayName ? { displayName: req.displayName } : {}) });
      return { adapters: page.items.map(adapterToProto), nextPageToken: page.nextPage ?? "" };
    },

    async listDigitalTwinModels(req) {
      const { iotDomainId, options } = ociList(req, (v) => v.maxLength("spec_uri_starts_with", req.specUriStartsWith, MAX_SPEC_URI));
      const page = await client.listModels(iotDomainId, {
        ...options,
        ...(req.specUriStartsWith ? { specUriStartsWith: req.specUriStartsWith } : {}),
      });
      return { models: page.items.map((m) => modelToProto(m)), nextPageToken: page.nextPage ?? "" };
    },

    async getDigitalTwinModel(req) {
      const v = new Violations();
      v.ocid("id", req.id, "a digital twin model");
      v.throwIfAny();
      const [model, spec] = await Promise.all([client.getModel(req.id), client.getModelSpec(req.id)]);
      return { model: modelToProto(model, spec) };
    },
  };
}

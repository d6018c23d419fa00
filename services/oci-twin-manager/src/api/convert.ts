import { create, type JsonObject as ProtoJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type DigitalTwinAdapter as AdapterMsg,
  DigitalTwinAdapterSchema,
  DigitalTwinInstanceSchema,
  DigitalTwinModelSchema,
  type DigitalTwinInstance as InstanceMsg,
  LifecycleState,
  type DigitalTwinModel as ModelMsg,
  type Twin,
  TwinDataSet,
  TwinKind,
  TwinSchema,
  type TwinSource,
  TwinSourceSchema,
  type TwinSpec,
} from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import type { StoredSource, TwinKindName } from "../pipeline/store.js";
import type { TwinDescription, TwinRef, TwinState } from "../pipeline/twins.js";
import type {
  DataSet,
  DigitalTwinAdapter,
  DigitalTwinInstance,
  DigitalTwinModel,
  JsonObject,
  LifecycleState as OciLifecycle,
} from "../platform/types.js";

/** A TwinSpec in the pipeline's words (validated by the pipeline: twinProblems). */
export function twinDescription(s: TwinSpec): TwinDescription {
  return {
    key: s.key,
    iotDomainId: s.iotDomainId,
    displayName: s.displayName,
    ...(s.description ? { description: s.description } : {}),
    ...(s.externalKey ? { externalKey: s.externalKey } : {}),
    ...(s.authId ? { authId: s.authId } : {}),
    ...(s.model
      ? {
          model: {
            specUri: s.model.specUri,
            ...(s.model.displayName ? { displayName: s.model.displayName } : {}),
            ...(s.model.description ? { description: s.model.description } : {}),
            spec: (s.model.spec ?? {}) as JsonObject,
          },
        }
      : {}),
    ...(s.adapter
      ? {
          adapter: {
            ...(s.adapter.displayName ? { displayName: s.adapter.displayName } : {}),
            ...(s.adapter.description ? { description: s.adapter.description } : {}),
            ...(s.adapter.inboundEnvelope ? { inboundEnvelope: s.adapter.inboundEnvelope as JsonObject } : {}),
            inboundRoutes: s.adapter.inboundRoutes as JsonObject[],
          },
        }
      : {}),
    ...(s.deviceSecret ? { deviceSecret: s.deviceSecret } : {}),
    ...(sourceOf(s.source) ? { source: sourceOf(s.source)! } : {}),
  };
}

/** A source with nothing chosen is none. */
export function sourceOf(s: TwinSource | undefined): StoredSource | undefined {
  if (!s || !(s.historized || s.raw || s.rejected)) return undefined;
  return {
    historized: s.historized,
    raw: s.raw,
    rejected: s.rejected,
    ...(s.pollIntervalMs ? { pollIntervalMs: s.pollIntervalMs } : {}),
    ...(s.startTime ? { startTime: timestampDate(s.startTime).toISOString() } : {}),
  };
}

export function sourceToProto(s: StoredSource): TwinSource {
  return create(TwinSourceSchema, {
    historized: s.historized,
    raw: s.raw,
    rejected: s.rejected,
    pollIntervalMs: s.pollIntervalMs ?? 0,
    ...(s.startTime ? { startTime: timestampFromDate(new Date(s.startTime)) } : {}),
  });
}

export function twinRef(ref: { ref: { case: "key" | "instanceId" | undefined; value?: string | undefined } } | undefined): TwinRef {
  return ref?.ref.case === "instanceId" ? { instanceId: ref.ref.value ?? "" } : { key: ref?.ref.value ?? "" };
}

export function lifecycleToProto(s: OciLifecycle | undefined): LifecycleState {
  return s === "ACTIVE" ? LifecycleState.ACTIVE : s === "DELETED" ? LifecycleState.DELETED : LifecycleState.UNSPECIFIED;
}

export function lifecycleOf(s: LifecycleState): OciLifecycle | undefined {
  return s === LifecycleState.ACTIVE ? "ACTIVE" : s === LifecycleState.DELETED ? "DELETED" : undefined;
}

const time = (d: Date | undefined) => (d ? { createTime: timestampFromDate(new Date(d)) } : {});
const updated = (d: Date | undefined) => (d ? { updateTime: timestampFromDate(new Date(d)) } : {});

/**
 * JSON from OCI (or the SDK's model objects) as a protobuf Struct: a field left undefined is dropped, as JSON.stringify
 * drops it. protobuf-es keeps it, and the answer then fails to serialise as JSON ("Value must have a value").
 */
export function protoJson(value: unknown): ProtoJson {
  return JSON.parse(JSON.stringify(value ?? {})) as ProtoJson;
}

export function modelToProto(m: DigitalTwinModel, spec?: JsonObject): ModelMsg {
  return create(DigitalTwinModelSchema, {
    id: m.id,
    iotDomainId: m.iotDomainId,
    specUri: m.specUri,
    displayName: m.displayName,
    description: m.description ?? "",
    lifecycleState: lifecycleToProto(m.lifecycleState),
    ...time(m.timeCreated),
    ...updated(m.timeUpdated),
    ...(spec ? { spec: protoJson(spec) } : {}),
  });
}

export function adapterToProto(a: DigitalTwinAdapter): AdapterMsg {
  return create(DigitalTwinAdapterSchema, {
    id: a.id,
    iotDomainId: a.iotDomainId,
    digitalTwinModelId: a.digitalTwinModelId,
    digitalTwinModelSpecUri: a.digitalTwinModelSpecUri,
    displayName: a.displayName,
    description: a.description ?? "",
    ...(a.inboundEnvelope ? { inboundEnvelope: protoJson(a.inboundEnvelope) } : {}),
    inboundRoutes: (a.inboundRoutes ?? []).map(protoJson),
    lifecycleState: lifecycleToProto(a.lifecycleState),
    ...time(a.timeCreated),
    ...updated(a.timeUpdated),
  });
}

export function instanceToProto(i: DigitalTwinInstance): InstanceMsg {
  return create(DigitalTwinInstanceSchema, {
    id: i.id,
    iotDomainId: i.iotDomainId,
    displayName: i.displayName,
    description: i.description ?? "",
    externalKey: i.externalKey ?? "",
    authId: i.authId ?? "",
    connectivityType: i.connectivityType ?? "",
    digitalTwinModelId: i.digitalTwinModelId ?? "",
    digitalTwinModelSpecUri: i.digitalTwinModelSpecUri ?? "",
    digitalTwinAdapterId: i.digitalTwinAdapterId ?? "",
    lifecycleState: lifecycleToProto(i.lifecycleState),
    ...time(i.timeCreated),
    ...updated(i.timeUpdated),
  });
}

const KINDS: Record<TwinKindName, TwinKind> = {
  unstructured: TwinKind.UNSTRUCTURED,
  "default-adapter": TwinKind.DEFAULT_ADAPTER,
  "custom-adapter": TwinKind.CUSTOM_ADAPTER,
};

/**
 * A twin as Get and List show it. What OCI could not give is shown from KV: the OCIDs, and for an instance OCI no
 * longer has, lifecycle DELETED.
 */
export function twinToProto(s: TwinState): Twin {
  const t = s.twin;
  const gone = !s.instance && (s.error ?? "").includes(`instance ${t.instanceId} no longer exists`);
  return create(TwinSchema, {
    key: t.key,
    iotDomainId: t.iotDomainId,
    kind: KINDS[t.kind],
    instance: s.instance
      ? instanceToProto(s.instance)
      : create(DigitalTwinInstanceSchema, {
          id: t.instanceId,
          iotDomainId: t.iotDomainId,
          externalKey: t.externalKey ?? "",
          lifecycleState: gone ? LifecycleState.DELETED : LifecycleState.UNSPECIFIED,
        }),
    ...(s.adapter
      ? { adapter: adapterToProto(s.adapter) }
      : t.adapterId
        ? { adapter: create(DigitalTwinAdapterSchema, { id: t.adapterId, iotDomainId: t.iotDomainId }) }
        : {}),
    ...(s.model
      ? { model: modelToProto(s.model) }
      : t.modelId
        ? { model: create(DigitalTwinModelSchema, { id: t.modelId, iotDomainId: t.iotDomainId }) }
        : {}),
    ...(t.source ? { source: sourceToProto(t.source) } : {}),
    deviceSecretSet: t.deviceSecret !== undefined,
    error: s.error ?? "",
  });
}

export const DATA_SETS: Record<Exclude<TwinDataSet, TwinDataSet.UNSPECIFIED>, DataSet> = {
  [TwinDataSet.RAW]: "rawData",
  [TwinDataSet.HISTORIZED]: "historizedData",
  [TwinDataSet.REJECTED]: "rejectedData",
  [TwinDataSet.SNAPSHOT]: "snapshotData",
  [TwinDataSet.RAW_COMMAND]: "rawCommandData",
};

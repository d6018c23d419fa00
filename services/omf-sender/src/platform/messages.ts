/**
 * OMF 1.0 / 1.1 / 1.2 message model (type, container, data), headers and JSON body serialisation.
 * Field names are the OMF keywords, so a model object serialises to the wire JSON as is.
 */

export const OMF_VERSIONS = ["1.0", "1.1", "1.2"] as const;
export type OmfVersion = (typeof OMF_VERSIONS)[number];

export type OmfMessageType = "type" | "container" | "data";
export type OmfAction = "create" | "update" | "delete";

export type OmfPropertyType = "integer" | "number" | "string" | "boolean" | "array" | "object";
/** 1.1+: nullable property, e.g. `["number", "null"]` (order free). */
export type OmfPropertyTypeSpec = OmfPropertyType | ReadonlyArray<OmfPropertyType | "null">;
export type OmfIntegerFormat = "int64" | "int32" | "int16" | "uint64" | "uint32" | "uint16";
export type OmfNumberFormat = "float64" | "float32" | "float16";
export type OmfPropertyFormat = OmfIntegerFormat | OmfNumberFormat | "date-time" | "dictionary";
export type OmfInterpolation = "continuous" | "discrete" | "stepwisecontinuousleading" | "stepwisecontinuousfollowing";
export type OmfExtrapolation = "all" | "none" | "forward" | "backward";

export interface OmfTypeProperty {
  type?: OmfPropertyTypeSpec;
  format?: OmfPropertyFormat;
  /** 1.2: reference to another type (PI Web API: enums only). */
  reftypeid?: string;
  items?: OmfTypeProperty;
  additionalProperties?: OmfTypeProperty;
  isindex?: boolean;
  isname?: boolean;
  /** 1.2 */
  isquality?: boolean;
  name?: string;
  description?: string;
  /** 1.1+ */
  uom?: string;
  /** 1.2 */
  minimum?: number;
  /** 1.2 */
  maximum?: number;
  /** 1.2 */
  interpolation?: OmfInterpolation;
  /** JSON-schema style value list, as the reference sample's fixtures use on string/integer properties. */
  enum?: ReadonlyArray<string | number>;
}

export interface OmfEnumDefinition {
  type?: "integer";
  format?: OmfIntegerFormat;
  values: ReadonlyArray<{ name: string; value: number }>;
}

export interface OmfType {
  /** Must not start with `__` (reserved for predefined types such as `__Link`). */
  id: string;
  /** `x.x.x.x`, default 1.0.0.0; informational only in 1.2. */
  version?: string;
  classification?: "dynamic" | "static";
  type?: "object";
  name?: string;
  description?: string;
  tags?: readonly string[];
  metadata?: Readonly<Record<string, string>>;
  /** 1.2: enum type message. */
  enum?: OmfEnumDefinition;
  /** 1.2 */
  extrapolation?: OmfExtrapolation;
  properties?: Readonly<Record<string, OmfTypeProperty>>;
}

export interface OmfPropertyOverride {
  name?: string;
  description?: string;
  uom?: string;
  minimum?: number;
  maximum?: number;
  interpolation?: OmfInterpolation;
}

export interface OmfContainer {
  id: string;
  typeid: string;
  /** 1.0 / 1.1 only (deprecated in 1.2). */
  typeversion?: string;
  name?: string;
  description?: string;
  /** 1.2 */
  datasource?: string;
  tags?: readonly string[];
  metadata?: Readonly<Record<string, string>>;
  /** 1.1+: secondary indexes. */
  indexes?: readonly string[];
  /** 1.2 */
  extrapolation?: OmfExtrapolation;
  /** 1.2: keyed by property id. */
  propertyoverrides?: Readonly<Record<string, OmfPropertyOverride>>;
}

/** One value of a container or static instance: index property + value properties. */
export type OmfValue = Readonly<Record<string, unknown>>;

export interface OmfContainerData {
  containerid: string;
  values: readonly OmfValue[];
}

export interface OmfStaticData {
  typeid: string;
  typeversion?: string;
  /** 1.2: extend a static type per instance. */
  properties?: Readonly<Record<string, OmfTypeProperty>>;
  values: readonly OmfValue[];
}

export interface OmfLinkEndpoint {
  typeid?: string;
  containerid?: string;
  index?: string;
  /** 1.2: property-level link. */
  property?: string;
}

export interface OmfLinkData {
  typeid: "__Link";
  typeversion?: string;
  values: ReadonlyArray<{ source: OmfLinkEndpoint; target: OmfLinkEndpoint }>;
}

/** 1.2: type-less static data. */
export interface OmfTypelessData {
  properties: Readonly<Record<string, OmfTypeProperty>>;
  values: readonly OmfValue[];
}

export type OmfDataItem = OmfContainerData | OmfStaticData | OmfLinkData | OmfTypelessData;

export interface OmfTypeMessage {
  readonly messageType: "type";
  readonly action?: OmfAction;
  readonly body: readonly OmfType[];
}
export interface OmfContainerMessage {
  readonly messageType: "container";
  readonly action?: OmfAction;
  readonly body: readonly OmfContainer[];
}
export interface OmfDataMessage {
  readonly messageType: "data";
  readonly action?: OmfAction;
  readonly body: readonly OmfDataItem[];
}
export type OmfMessage = OmfTypeMessage | OmfContainerMessage | OmfDataMessage;

export function typeMessage(body: readonly OmfType[], action: OmfAction = "create"): OmfTypeMessage {
  return { messageType: "type", action, body };
}

export function containerMessage(body: readonly OmfContainer[], action: OmfAction = "create"): OmfContainerMessage {
  return { messageType: "container", action, body };
}

export function dataMessage(body: readonly OmfDataItem[], action: OmfAction = "create"): OmfDataMessage {
  return { messageType: "data", action, body };
}

/** Bodies serialized while sizing a request (batchMessage), so that sending it does not serialize it again. */
const sizedBodies = new WeakMap<OmfMessage, string>();

/** The HTTP body: a JSON array of objects of one message type. */
export function serializeBody(message: OmfMessage): string {
  return sizedBodies.get(message) ?? JSON.stringify(message.body);
}

/** For batchMessage: `json` is the body of `request`, a message it made and hands out without changing it again. */
export function keepSerializedBody(request: OmfMessage, json: string): void {
  sizedBodies.set(request, json);
}

export type OmfEndpointKind = "pi" | "adh" | "eds";

export interface OmfHeaderOptions {
  messageType: OmfMessageType;
  action?: OmfAction;
  version: OmfVersion;
  kind: OmfEndpointKind;
  compressed: boolean;
  /** 1.0/1.1 only; obsolete in 1.2 and then never sent. */
  producerToken?: string;
  /** PI Web API ≥ 2021 SP2 only. */
  acceptVerbosity?: string;
}

/** OMF headers for one request (authorization is added by the client). */
export function omfHeaders(options: OmfHeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {
    messagetype: options.messageType,
    messageformat: "JSON",
    omfversion: options.version,
    action: options.action ?? "create",
    "content-type": "application/json",
  };
  if (options.compressed) headers["compression"] = "gzip";
  if (options.producerToken !== undefined && options.version !== "1.2") headers["producertoken"] = options.producerToken;
  if (options.kind === "pi") {
    // Not OMF: PI Web API's CSRF defence rejects a POST without it.
    headers["x-requested-with"] = "XMLHttpRequest";
    if (options.acceptVerbosity) headers["accept-verbosity"] = options.acceptVerbosity;
  }
  return headers;
}

const V12_PROPERTY_KEYS = ["reftypeid", "isquality", "minimum", "maximum", "interpolation"] as const;
const V12_CONTAINER_KEYS = ["datasource", "extrapolation", "propertyoverrides"] as const;

/**
 * Checks a message against the OMF version it will be sent as and against what the endpoint kind supports.
 * Returns field-named problems (`body[2].properties.Value.uom: requires OMF 1.1+`); empty when fine.
 */
export function checkMessage(message: OmfMessage, version: OmfVersion, kind?: OmfEndpointKind): string[] {
  const problems: string[] = [];
  const v = Number(version);
  if (!Array.isArray(message.body) || message.body.length === 0) {
    problems.push("body: must be a non-empty array");
    return problems;
  }
  const action = message.action ?? "create";
  if (message.messageType === "type" && action === "update") {
    problems.push("action: update of types is not supported by PI Web API, ADH or EDS (types are immutable)");
  }
  if (action === "update" && kind === "eds") problems.push("action: EDS accepts only create and delete");
  if (message.messageType === "data" && action === "update" && kind === "pi" && v < 1.2) {
    problems.push("action: PI Web API supports data update only with OMF 1.2");
  }
  const checkProps = (path: string, props: Readonly<Record<string, OmfTypeProperty>> | undefined) => {
    if (props === undefined) return;
    for (const [key, prop] of Object.entries(props)) {
      const p = `${path}.${key}`;
      if (v < 1.2) for (const k of V12_PROPERTY_KEYS) if (prop[k] !== undefined) problems.push(`${p}.${k}: requires OMF 1.2`);
      if (v < 1.1 && prop.uom !== undefined) problems.push(`${p}.uom: requires OMF 1.1+`);
      if (v < 1.1 && Array.isArray(prop.type)) problems.push(`${p}.type: nullable types require OMF 1.1+`);
    }
  };
  message.body.forEach((item, i) => {
    const path = `body[${i}]`;
    if (item === null || typeof item !== "object") {
      problems.push(`${path}: must be an object`);
      return;
    }
    if (message.messageType === "type") {
      const t = item as OmfType;
      if (typeof t.id !== "string" || t.id === "") problems.push(`${path}.id: required`);
      else if (t.id.startsWith("__")) problems.push(`${path}.id: must not start with "__" (reserved)`);
      if (action === "delete") return;
      if (t.enum !== undefined && v < 1.2) problems.push(`${path}.enum: enum types require OMF 1.2`);
      if (t.extrapolation !== undefined && v < 1.2) problems.push(`${path}.extrapolation: requires OMF 1.2`);
      if (t.enum === undefined && t.properties === undefined) problems.push(`${path}.properties: required unless an enum type`);
      checkProps(`${path}.properties`, t.properties);
    } else if (message.messageType === "container") {
      const c = item as OmfContainer;
      if (typeof c.id !== "string" || c.id === "") problems.push(`${path}.id: required`);
      if (typeof c.typeid !== "string" || c.typeid === "") problems.push(`${path}.typeid: required`);
      if (c.indexes !== undefined && v < 1.1) problems.push(`${path}.indexes: requires OMF 1.1+`);
      for (const k of V12_CONTAINER_KEYS) if (c[k] !== undefined && v < 1.2) problems.push(`${path}.${k}: requires OMF 1.2`);
    } else {
      const d = item as Partial<OmfContainerData & OmfStaticData>;
      if (!Array.isArray(d.values)) problems.push(`${path}.values: must be an array`);
      const targets = [d.containerid, d.typeid].filter((x) => x !== undefined).length;
      if (d.properties !== undefined && v < 1.2) problems.push(`${path}.properties: type-less/extended static data requires OMF 1.2`);
      if (targets === 0 && d.properties === undefined) problems.push(`${path}: needs containerid, typeid or properties`);
      if (targets > 1) problems.push(`${path}: containerid and typeid are exclusive`);
    }
  });
  return problems;
}

/** Reading a Timeseries API request the way its ASP.NET backend binds one: query keys in any case, repeated keys as lists, bools in any case. */
import { badRequest } from "../errors.js";
import { parseTime } from "../time.js";

export class Query {
  private readonly values = new Map<string, string[]>();

  constructor(params: URLSearchParams) {
    for (const [k, v] of params) {
      const key = k.toLowerCase();
      const list = this.values.get(key);
      if (list) list.push(v);
      else this.values.set(key, [v]);
    }
  }

  /** Every value of a repeated key; comma-separated values are split too. */
  list(name: string): string[] {
    return (this.values.get(name.toLowerCase()) ?? [])
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter((v) => v !== "");
  }

  str(name: string): string | undefined {
    const v = this.values.get(name.toLowerCase());
    return v && v.length > 0 ? v[v.length - 1] : undefined;
  }

  bool(name: string): boolean | undefined {
    const v = this.str(name);
    if (v === undefined || v === "") return undefined;
    const l = v.trim().toLowerCase();
    if (l === "true") return true;
    if (l === "false") return false;
    throw invalid(v, name);
  }

  int(name: string): number | undefined {
    const v = this.str(name);
    if (v === undefined || v === "") return undefined;
    if (!/^-?\d{1,15}$/.test(v.trim())) throw invalid(v, name);
    return Number(v);
  }

  ints(name: string): number[] {
    return this.list(name).map((v) => {
      if (!/^\d{1,10}$/.test(v)) throw invalid(v, name);
      return Number(v);
    });
  }

  time(name: string): bigint | undefined {
    const v = this.str(name);
    if (v === undefined || v === "") return undefined;
    return timeValue(v, name);
  }
}

/** The backend's model-binding refusal. */
export function invalid(value: unknown, name: string) {
  return badRequest(`The value '${String(value)}' is not valid for ${name}.`);
}

export function timeValue(v: unknown, name: string): bigint {
  if (typeof v !== "string") throw invalid(v, name);
  const t = parseTime(v);
  if (t === undefined) throw invalid(v, name);
  return t;
}

export function optTime(v: unknown, name: string): bigint | undefined {
  return v === undefined || v === null || v === "" ? undefined : timeValue(v, name);
}

export function optInt(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw invalid(v, name);
  return v;
}

export function optBool(v: unknown, name: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw invalid(v, name);
  return v;
}

export function optString(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalid(v, name);
  return v;
}

export function intList(v: unknown, name: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid(v, name);
  return v.map((x, i) => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0) throw invalid(x, `${name}[${i}]`);
    return x;
  });
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

const FEDERATION_SOURCES = ["ims", "tsdb", "datalake"];

/** `federationSource`: IMS, TSDB or DataLake (any case); answers carry `federated` when one was named. */
export function federation(q: Query): boolean | undefined {
  const v = q.str("federationSource");
  if (v === undefined || v === "") return undefined;
  if (!FEDERATION_SOURCES.includes(v.toLowerCase())) throw invalid(v, "federationSource");
  return v.toLowerCase() !== "tsdb";
}

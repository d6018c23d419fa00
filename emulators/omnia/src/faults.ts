/**
 * Faults: the kit's HTTP switch (latency, status with or without Retry-After, drop, hang, partial body, path filter)
 * plus what the Timeseries API's callers meet and the switch lacks: `emptyBody` (an injected status with no body at
 * all, as the gateway's 502 on a backend timeout) and scripts — per path, the next N calls answered step by step
 * (`{pass: true}` lets a call through), so a test can say "the 2nd call to /query/data gets 429 with Retry-After 1".
 */
import {
  FaultConfigError,
  type HttpFaultConfig,
  type HttpFaultDecision,
  HttpFaultSwitch,
  intField,
  parseHttpFaultConfig,
} from "@meridian/emulator-kit";

export interface OmniaFaultFields {
  /** The injected status goes out with an empty body (no MessageModel). */
  emptyBody?: boolean;
}

export type FaultConfig = HttpFaultConfig & OmniaFaultFields;

const boolField = (value: unknown, field: string): boolean => {
  if (typeof value !== "boolean") throw new FaultConfigError(field, "must be true or false");
  return value;
};

export function parseFaultConfig(input: unknown): FaultConfig {
  return parseHttpFaultConfig<OmniaFaultFields>(input, { emptyBody: boolField });
}

export interface ScriptStep {
  /** Let the call through (after latencyMs). */
  pass?: boolean;
  status?: number;
  retryAfterSeconds?: number;
  body?: unknown;
  emptyBody?: boolean;
  latencyMs?: number;
}

export interface FaultScript {
  /** Matches a request path starting with it (any case), whole (`/plant/timeseries/v1.7/query/data`) or below the version (`/query/data`). */
  path: string;
  /** Only this method; default any. */
  method?: string;
  steps: ScriptStep[];
}

const MAX_STEPS = 1000;

export function parseScript(input: Record<string, unknown>): FaultScript {
  const { path, method, steps } = input;
  if (typeof path !== "string" || !path.startsWith("/")) throw new FaultConfigError("path", "must be a path starting with /");
  if (method !== undefined && (typeof method !== "string" || !/^[A-Za-z]+$/.test(method)))
    throw new FaultConfigError("method", "must be an HTTP method");
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_STEPS)
    throw new FaultConfigError("steps", `must be an array of 1..${MAX_STEPS} steps`);
  const int = intField(0, 600_000);
  return {
    path,
    method: method?.toUpperCase(),
    steps: steps.map((raw, i) => {
      const f = `steps[${i}]`;
      if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new FaultConfigError(f, "must be an object");
      const s = raw as Record<string, unknown>;
      for (const k of Object.keys(s))
        if (!["pass", "status", "retryAfterSeconds", "body", "emptyBody", "latencyMs"].includes(k))
          throw new FaultConfigError(`${f}.${k}`, "is not a step setting");
      const step: ScriptStep = {};
      if (s.pass !== undefined) step.pass = boolField(s.pass, `${f}.pass`);
      if (s.status !== undefined) step.status = intField(400, 599)(s.status, `${f}.status`);
      if (s.retryAfterSeconds !== undefined) step.retryAfterSeconds = int(s.retryAfterSeconds, `${f}.retryAfterSeconds`);
      if (s.latencyMs !== undefined) step.latencyMs = int(s.latencyMs, `${f}.latencyMs`);
      if (s.emptyBody !== undefined) step.emptyBody = boolField(s.emptyBody, `${f}.emptyBody`);
      if (s.body !== undefined) step.body = s.body;
      if (!step.pass && step.status === undefined) throw new FaultConfigError(f, "needs a status or pass: true");
      return step;
    }),
  };
}

export type FaultDecision = HttpFaultDecision & { emptyBody?: boolean; script?: boolean };

export class Faults {
  private readonly http = new HttpFaultSwitch();
  private emptyBody = false;
  private scripts: FaultScript[] = [];

  get(): FaultConfig & { scripts: FaultScript[] } {
    return { ...this.http.get(), ...(this.emptyBody ? { emptyBody: true } : {}), scripts: this.scripts };
  }

  set(patch: FaultConfig): FaultConfig {
    const { emptyBody, ...http } = patch;
    this.http.set(http);
    if (emptyBody !== undefined) this.emptyBody = emptyBody;
    return this.get();
  }

  addScript(s: FaultScript): FaultScript[] {
    this.scripts.push(s);
    return this.scripts;
  }

  clear(): void {
    this.http.clear();
    this.emptyBody = false;
    this.scripts = [];
  }

  /** One unit of whichever fault applies: a script step first, then the switch. */
  decide(method: string, fullPath: string, apiPath: string): FaultDecision {
    const full = fullPath.toLowerCase();
    const rel = apiPath.toLowerCase();
    for (const s of this.scripts) {
      if (s.method && s.method !== method) continue;
      const p = s.path.toLowerCase().replace(/\/+$/, "");
      if (!full.startsWith(p) && !rel.startsWith(p)) continue;
      const step = s.steps.shift()!;
      if (s.steps.length === 0) this.scripts = this.scripts.filter((x) => x !== s);
      const latencyMs = step.latencyMs ?? 0;
      if (step.pass) return { kind: "none", latencyMs, script: true };
      return {
        kind: "status",
        latencyMs,
        status: step.status!,
        retryAfterSeconds: step.retryAfterSeconds,
        body: step.body,
        emptyBody: step.emptyBody,
        script: true,
      };
    }
    const d = this.http.decide(fullPath);
    const out: FaultDecision = d.kind === "status" && this.emptyBody ? { ...d, emptyBody: true } : d;
    if (this.http.get().status === undefined) this.emptyBody = false;
    return out;
  }
}

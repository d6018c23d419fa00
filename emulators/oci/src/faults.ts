/**
 * Fault switches: the kit's HTTP faults, one switch per listener (control plane, data API with the token endpoint,
 * device ingest), narrowed to one operation if asked, and the OCI error code an injected status answers with
 * (409 → IncorrectState unless told otherwise, 429 → TooManyRequests, 500 → InternalServerError).
 */
import {
  enumField,
  FaultConfigError,
  type FaultFieldParser,
  type HttpFaultConfig,
  HttpFaultSwitch,
  parseHttpFaultConfig,
} from "@meridian/emulator-kit";

export const FAULT_TARGETS = ["control", "data", "device"] as const;
export type FaultTarget = (typeof FAULT_TARGETS)[number];

export interface OciFaultConfig extends HttpFaultConfig {
  /** Which listener; default control. */
  target?: FaultTarget;
  /**
   * Only this operation: a control-plane operation as the SDK names it (`createDigitalTwinModel`, any letter case),
   * a data-API data set (`rawData`) or `token`, or `ingest` on the device listener.
   */
  operation?: string;
  /** The `code` of the injected error body (control plane). */
  code?: string;
}

const stringField =
  (max: number): FaultFieldParser<string> =>
  (value, field) => {
    if (typeof value !== "string" || value.length === 0 || value.length > max)
      throw new FaultConfigError(field, `must be a string of 1..${max} characters`);
    return value;
  };

export function parseOciFaultConfig(input: unknown): OciFaultConfig {
  return parseHttpFaultConfig<Pick<OciFaultConfig, "target" | "operation" | "code">>(input, {
    target: enumField(FAULT_TARGETS),
    operation: stringField(100),
    code: stringField(100),
  });
}

export interface Decision {
  decision: ReturnType<HttpFaultSwitch["decide"]>;
  code?: string;
}

export class OciFaults {
  private readonly switches: Record<FaultTarget, HttpFaultSwitch> = {
    control: new HttpFaultSwitch(),
    data: new HttpFaultSwitch(),
    device: new HttpFaultSwitch(),
  };

  set(config: OciFaultConfig): Record<FaultTarget, HttpFaultConfig> {
    const { target = "control", ...rest } = config;
    this.switches[target].set(rest);
    return this.list();
  }

  replace(config: OciFaultConfig): Record<FaultTarget, HttpFaultConfig> {
    this.clear();
    return this.set(config);
  }

  list(): Record<FaultTarget, HttpFaultConfig> {
    return { control: this.switches.control.get(), data: this.switches.data.get(), device: this.switches.device.get() };
  }

  clear(): void {
    for (const s of Object.values(this.switches)) s.clear();
  }

  /** Takes one unit of whichever fault applies to this request, if its operation filter lets it. */
  decide(target: FaultTarget, operation: string, path: string): Decision {
    const s = this.switches[target];
    const config = s.get() as OciFaultConfig;
    if (config.operation && config.operation.toLowerCase() !== operation.toLowerCase()) return { decision: { kind: "none", latencyMs: 0 } };
    return { decision: s.decide(path), code: config.code };
  }
}

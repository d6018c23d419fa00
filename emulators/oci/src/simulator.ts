/**
 * OCI_EMU_SIMULATE: every interval, each listed device that exists (an ACTIVE instance with that external key)
 * sends an M5 Env-III message on `iot/v1/telemetry`, as the sample devices of manage-dt do.
 */
import type { Logger } from "@meridian/service-kit";
import type { Clock } from "./clock.js";
import { ingest } from "./ingest.js";
import type { OciStore } from "./store.js";

export const SIMULATED_ENDPOINT = "iot/v1/telemetry";

/** The M5 Env-III payload for the n-th message of a device: smooth, plausible values. */
export function m5Payload(n: number, phase = 0): Record<string, number> {
  const t = n / 10 + phase;
  const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;
  return {
    sht_temperature: round(22 + 2 * Math.sin(t), 1),
    qmp_temperature: round(22.5 + 2 * Math.sin(t + 0.2), 1),
    humidity: round(55 + 5 * Math.cos(t), 1),
    pressure: round(1012 + 3 * Math.sin(t / 3), 1),
    count: n,
  };
}

export function startSimulator(store: OciStore, clock: Clock, externalKeys: string[], intervalMs: number, log: Logger): () => void {
  const counts = new Map<string, number>();
  const tick = () => {
    externalKeys.forEach((key, i) => {
      const instance = store.activeInstanceByExternalKey(key);
      if (!instance) return;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      const body = Buffer.from(JSON.stringify(m5Payload(n, i)));
      const result = ingest(store, clock, instance, { endpoint: SIMULATED_ENDPOINT, contentType: "application/json", body });
      log.debug({ externalKey: key, outcome: result.outcome, rawId: result.rawId }, "simulated device message");
    });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

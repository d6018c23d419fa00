import type { PushEngine } from "./push/engine.js";

/**
 * Emits `rate` events per second spread over the subscribed resources, until the returned function is called.
 * One 100 ms tick for everything, carrying fractional events over, so any rate works without a timer per event.
 */
export function startAutoEmit(engine: PushEngine, rate: number): () => void {
  let carry = 0;
  let rr = 0;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    carry += (rate * (now - last)) / 1000;
    last = now;
    const n = Math.floor(carry);
    carry -= n;
    if (n === 0) return;
    // One emit call per resource, round-robin over the resources subscribed at this tick.
    const resources = engine.subscribedResources();
    const per = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const r = resources[rr++ % resources.length]!;
      per.set(r, (per.get(r) ?? 0) + 1);
    }
    for (const [topic, count] of per) engine.emit({ count, topic });
  }, 100);
  timer.unref();
  return () => clearInterval(timer);
}
